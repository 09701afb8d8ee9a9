import Foundation
import HerdTensor

/// Rows of a generated data set, in blocks that never straddle the train/test split: train blocks
/// first, then test blocks.
struct GenerationBlock: Sendable {
    var range: Range<Int>
    var test: Bool

    /// Blocks of at most `blockRows` rows covering `0..<trainCount` (train) and
    /// `trainCount..<rows` (test).
    static func split(rows: Int, trainCount: Int, blockRows: Int) -> [GenerationBlock] {
        var blocks: [GenerationBlock] = []
        for start in stride(from: 0, to: trainCount, by: blockRows) {
            blocks.append(GenerationBlock(range: start..<min(start + blockRows, trainCount), test: false))
        }
        for start in stride(from: trainCount, to: rows, by: blockRows) {
            blocks.append(GenerationBlock(range: start..<min(start + blockRows, rows), test: true))
        }
        return blocks
    }
}

/// Generates `blocks` in parallel rounds and hands each finished block, in order, to `consume`.
///
/// NOTE: pipelined like `CriteoReader`: task 0 of each parallel step consumes (writes) the
/// previous round while the other tasks generate the next one, so writing overlaps generation.
/// Output is identical for any worker count: blocks are generated from their index alone and
/// consumed in order.
func generatePipelined<Output: Sendable>(
    _ blocks: [GenerationBlock],
    generate: (_ index: Int, _ block: GenerationBlock) -> Output,
    consume: (_ output: Output, _ block: GenerationBlock) throws -> Void
) throws {
    let perRound = 4 * Parallel.threads
    var pending: (outputs: [Output], blocks: [GenerationBlock])?
    var roundStart = 0
    while pending != nil || roundStart < blocks.count {
        let round = Array(blocks[roundStart..<min(roundStart + perRound, blocks.count)])
        let previous = pending
        let offset = previous == nil ? 0 : 1
        var outputs = [Output?](repeating: nil, count: round.count)
        var failure: Error?
        outputs.withUnsafeMutableBufferPointer { out in
            let out = UncheckedSendable(out)
            Parallel.forEach(round.count + offset) { task in
                if let previous, task == 0 {
                    do { for (o, b) in zip(previous.outputs, previous.blocks) { try consume(o, b) } } catch { failure = error }
                    return
                }
                let i = task - offset
                out.value[i] = generate(roundStart + i, round[i])
            }
        }
        if let failure { throw failure }
        pending = round.isEmpty ? nil : (outputs.map { $0! }, round)
        roundStart += round.count
    }
}

/// Where a generator writes: the directory (created), `train.txt` and `test.txt` writers, and
/// the split into blocks.
struct GenerationOutput {
    let directory: URL
    let train: FileWriter
    let test: FileWriter
    let trainCount: Int
    let testCount: Int
    let blocks: [GenerationBlock]

    /// Test rows for a fraction (at least one each for train and test).
    static func testRows(rows: Int, fraction: Double) -> Int {
        min(rows - 1, max(1, Int((Double(rows) * fraction).rounded())))
    }

    init(directory path: String, rows: Int, testFraction: Double, blockRows: Int) throws {
        guard testFraction > 0 && testFraction < 1 else {
            throw HerdDataError.invalidArgument("--test-fraction must be in (0, 1), got \(testFraction)")
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw HerdDataError.io(path: path, message: "cannot create directory: \(error.localizedDescription)")
        }
        testCount = Self.testRows(rows: rows, fraction: testFraction)
        trainCount = rows - testCount
        directory = URL(fileURLWithPath: path)
        train = try FileWriter(path: directory.appendingPathComponent("train.txt").path)
        test = try FileWriter(path: directory.appendingPathComponent("test.txt").path)
        blocks = GenerationBlock.split(rows: rows, trainCount: trainCount, blockRows: blockRows)
    }
}
