import Foundation
import HerdTensor

/// Synthetic Criteo click logs with a known answer: Kaggle-format TSV files drawn from a planted
/// click model (see `PlantedClickModel`) plus an `oracle.json` holding the true model's test AUC
/// and logloss.
///
/// Rows are generated in blocks of `blockRows`, each from its own seed derived from `(seed,
/// block)`, on all cores; output bytes depend only on `(seed, rows, testFraction)`, not on the
/// thread count. The train split is the first `rows − testRows` rows, the test split the rest.
public struct CriteoGenerator: Sendable {
    static let blockRows = 8192

    public let seed: UInt64
    public let rows: Int
    let model: PlantedClickModel

    /// A generator of `rows` rows for `seed`.
    public init(rows: Int, seed: UInt64) throws {
        guard rows >= 2 else { throw HerdDataError.invalidArgument("--rows must be at least 2, got \(rows)") }
        self.rows = rows
        self.seed = seed
        model = PlantedClickModel(seed: seed, rows: rows)
    }

    /// Rows of each categorical column's value space, C1…C26.
    public var cardinalities: [Int] { model.categorical.map(\.cardinality) }

    /// Test rows for a fraction (at least one each for train and test).
    public func testRows(fraction: Double) -> Int { GenerationOutput.testRows(rows: rows, fraction: fraction) }

    /// Writes `train.txt`, `test.txt` (Kaggle TSV) and `oracle.json` into `directory` (created if
    /// needed) and returns the oracle.
    @discardableResult
    public func write(to directory: String, testFraction: Double = 0.1) throws -> CriteoOracle {
        let output = try GenerationOutput(directory: directory, rows: rows, testFraction: testFraction, blockRows: Self.blockRows)
        let (dir, train, test, trainCount, testCount, blocks) = (output.directory, output.train, output.test, output.trainCount, output.testCount, output.blocks)
        var trainPositives = 0
        var testProbabilities: [Double] = [], testLabels: [Bool] = [], testMainEffects: [Double] = []
        testProbabilities.reserveCapacity(testCount)
        testLabels.reserveCapacity(testCount)
        /// Writes one finished block (blocks arrive in order) and accumulates the oracle's inputs.
        func writeBlock(_ block: GeneratedBlock, isTest: Bool) throws {
            let positives = block.labels.reduce(0) { $0 + ($1 ? 1 : 0) }
            if isTest {
                try test.write(block.text)
                testProbabilities += block.probabilities
                testMainEffects += block.mainEffectLogits
                testLabels += block.labels
            } else {
                try train.write(block.text)
                trainPositives += positives
            }
        }

        try generatePipelined(blocks, generate: { index, block in generate(block: index, rows: block.range) },
                              consume: { output, block in try writeBlock(output, isTest: block.test) })
        try train.close()
        try test.close()

        let oracle = CriteoOracle(
            scores: OracleScores(testProbabilities: testProbabilities, mainEffectScores: testMainEffects, testLabels: testLabels,
                                 trainRows: trainCount, trainPositives: trainPositives),
            seed: seed, cardinalities: cardinalities)
        try oracle.writeJSON(to: dir.appendingPathComponent("oracle.json").path)
        return oracle
    }

    struct GeneratedBlock: Sendable {
        var text: [UInt8]
        var probabilities: [Double]
        /// The logit without the pair interactions (a score only main effects can explain).
        var mainEffectLogits: [Double]
        var labels: [Bool]
    }

    /// The rows `rows` (global indices) of block number `block`, as TSV text.
    func generate(block: Int, rows: Range<Int>) -> GeneratedBlock {
        var rng = SplitMix64(seed: mix64(seed ^ mix64(0x5EED_0000 &+ UInt64(block))))
        var text: [UInt8] = []
        text.reserveCapacity(rows.count * 240)
        var probabilities: [Double] = []
        var labels: [Bool] = []
        var mainEffectLogits: [Double] = []
        mainEffectLogits.reserveCapacity(rows.count)
        probabilities.reserveCapacity(rows.count)
        labels.reserveCapacity(rows.count)
        var row = PlantedClickModel.Row()
        for _ in rows {
            model.draw(&rng, into: &row)
            let p = 1 / (1 + exp(-(row.logit + model.bias)))
            let y = rng.nextDouble() < p
            probabilities.append(p)
            mainEffectLogits.append(row.logit - row.interaction)
            labels.append(y)
            text.append(y ? 49 : 48)
            for value in row.dense {
                text.append(9)
                if let value { appendDecimal(value, to: &text) }
            }
            for id in row.ids {
                text.append(9)
                if let id { appendHex(id, to: &text) }
            }
            text.append(10)
        }
        return GeneratedBlock(text: text, probabilities: probabilities, mainEffectLogits: mainEffectLogits, labels: labels)
    }
}

@inline(__always)
private func appendDecimal(_ value: Int, to out: inout [UInt8]) {
    var v = value
    if v < 0 {
        out.append(45)
        v = -v
    }
    var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var n = 0
    withUnsafeMutableBytes(of: &digits) { buf in
        repeat {
            buf[n] = UInt8(48 + v % 10)
            v /= 10
            n += 1
        } while v > 0
        for i in stride(from: n - 1, through: 0, by: -1) { out.append(buf[i]) }
    }
}

@inline(__always)
private func appendHex(_ value: UInt32, to out: inout [UInt8]) {
    for shift in stride(from: 28, through: 0, by: -4) {
        let d = UInt8((value >> UInt32(shift)) & 0xf)
        out.append(d < 10 ? 48 + d : 87 + d)
    }
}
