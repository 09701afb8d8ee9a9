import Foundation
import HerdTensor

/// What a full pass over a file found.
public struct ReadSummary: Sendable, Equatable {
    /// The format used (detected fields filled in).
    public var format: CriteoFormat
    /// Rows delivered.
    public var rows: Int
    /// Malformed rows skipped (always 0 under `OnError.fail`).
    public var skippedRows: Int
    /// Lines in the file, header included.
    public var lines: Int
    /// The first few skipped rows, with file-global line numbers.
    public var skippedSamples: [RowError]
}

/// Streams a Criteo text file in large chunks and parses them on all cores.
///
/// Memory is bounded by `chunkBytes × chunksPerRound` plus the parsed chunks of one round, so a
/// file larger than RAM streams through. Chunks are cut after their last newline (the partial
/// line is carried into the next chunk; a line longer than a chunk grows the buffer), parsed in
/// parallel, and handed to the caller strictly in file order. Line numbers in errors are exact:
/// each chunk reports lines relative to its start and the reader adds the preceding lines.
public struct CriteoReader: Sendable {
    /// Default chunk size: 8 MiB.
    public static let defaultChunkBytes = 8 << 20

    public let path: String
    public var format: CriteoFormat
    public var onError: OnError
    /// Bytes per chunk (one unit of parallel work).
    public var chunkBytes: Int
    /// Chunks parsed in parallel per round (default: two per worker, for load balance).
    public var chunksPerRound: Int

    public init(
        path: String, format: CriteoFormat = .auto, onError: OnError = .fail,
        chunkBytes: Int = CriteoReader.defaultChunkBytes, chunksPerRound: Int? = nil
    ) {
        precondition(chunkBytes > 0, "chunkBytes must be positive")
        self.path = path
        self.format = format
        self.onError = onError
        self.chunkBytes = chunkBytes
        self.chunksPerRound = max(1, chunksPerRound ?? 2 * Parallel.threads)
    }

    /// Parses the whole file, calling `body` with each chunk's rows in file order (one call at a
    /// time, possibly on a worker thread; see `read(map:consume:)`).
    @discardableResult
    public func forEachChunk(_ body: (RawChunk) throws -> Void) throws -> ReadSummary {
        try read(map: { $0 }, consume: body)
    }

    /// Parses the whole file into memory (tests, small files, `herd predict`).
    public func readAll() throws -> (rows: RawChunk, summary: ReadSummary) {
        var all: RawChunk?
        let summary = try forEachChunk { chunk in
            if all == nil { all = chunk } else { all!.append(chunk) }
        }
        return (all ?? .empty(labelled: summary.format.labelled ?? true), summary)
    }

    /// Parses the file; `map` runs on worker threads, one call per chunk, right after that
    /// chunk is parsed (e.g. transform or count); `consume` runs one call at a time, in file
    /// order, while the next chunks are parsed — so possibly on a worker thread, never concurrently
    /// with itself, and always before `read` returns. Throws `malformedRow` (under `.fail`),
    /// `fileNotFound`, `emptyFile`, `noRows`, `io`.
    public func read<T>(map: (RawChunk) -> T, consume: (T) throws -> Void) throws -> ReadSummary {
        let file = try FileReader(path: path)
        let chunks: [ChunkBuffer] = (0..<chunksPerRound).map { _ in ChunkBuffer(capacity: chunkBytes) }
        var carry: [UInt8] = []
        var atEOF = false
        var lineBase = 0
        var rows = 0, skipped = 0
        var samples: [RowError] = []

        /// Fills up to `chunksPerRound` chunks, each ending after a newline (or at end of file).
        func fillRound() throws -> Int {
            var filled = 0
            while filled < chunks.count && !atEOF {
                atEOF = try chunks[filled].fill(from: file, carry: &carry)
                if chunks[filled].length > 0 { filled += 1 }
            }
            return filled
        }

        var filled = try fillRound()
        guard filled > 0 else { throw HerdDataError.emptyFile(path: path) }
        // NOTE: spreadsheet exports may start with a UTF-8 byte-order mark; it is not data.
        let bomBytes = hasByteOrderMark(chunks[0].bytes) ? 3 : 0
        let firstBytes = UnsafeRawBufferPointer(rebasing: chunks[0].bytes[bomBytes...])
        let firstLineLength = firstBytes.firstIndex(of: 10) ?? firstBytes.count
        let resolved = format.resolved(firstLine: UnsafeRawBufferPointer(rebasing: firstBytes[0..<firstLineLength]))
        let parser = CriteoParser(format: resolved, onError: onError)
        let onError = self.onError

        /// Checks and hands over one parsed round, in file order.
        func consumeRound(_ results: RoundResults<T>) throws {
            for i in 0..<results.count {
                let (parsed, mapped) = results.take(i)
                if onError == .fail, let e = parsed.errors.first {
                    throw HerdDataError.malformedRow(RowError(file: path, line: lineBase + e.line + 1, reason: e.reason))
                }
                for e in parsed.errors where samples.count < CriteoParser.sampleLimit {
                    samples.append(RowError(file: path, line: lineBase + e.line + 1, reason: e.reason))
                }
                lineBase += parsed.lines
                rows += parsed.rows.count
                skipped += parsed.skipped
                try consume(mapped!)
            }
        }

        // NOTE: pipelined: one parallel step both consumes round k (e.g. writes the cache; task 0)
        // and parses round k+1 (the other tasks), so the serial consumer overlaps parsing. Chunk
        // buffers are refilled only after the round that used them is parsed (its rows live in
        // the results), so one set of buffers suffices.
        var pending: RoundResults<T>?
        var skipHeader = resolved.hasHeader!
        var skipBOM = bomBytes
        while pending != nil || filled > 0 {
            let previous = pending
            let results = RoundResults<T>(count: filled)
            let offset = previous == nil ? 0 : 1
            let header = skipHeader
            let bom = skipBOM
            var failure: Error?
            Parallel.forEach(filled + offset) { task in
                if let previous, task == 0 {
                    do { try consumeRound(previous) } catch { failure = error }
                    return
                }
                let i = task - offset
                let bytes = chunks[i].bytes
                let parsed = parser.parse(
                    i == 0 ? UnsafeRawBufferPointer(rebasing: bytes[bom...]) : bytes, skipFirstLine: header && i == 0)
                let mapped = parsed.errors.isEmpty || onError == .skip ? map(parsed.rows) : nil
                results.slots[i] = (parsed, mapped)
            }
            if let failure { throw failure }
            skipHeader = false
            skipBOM = 0
            pending = filled > 0 ? results : nil
            filled = atEOF ? 0 : try fillRound()
        }
        if rows == 0 { throw HerdDataError.noRows(path: path, skippedRows: skipped) }
        return ReadSummary(format: resolved, rows: rows, skippedRows: skipped, lines: lineBase, skippedSamples: samples)
    }
}

/// True when `bytes` starts with the UTF-8 byte-order mark EF BB BF.
func hasByteOrderMark(_ bytes: UnsafeRawBufferPointer) -> Bool {
    bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF
}

/// The parsed (and mapped) chunks of one round, one slot per chunk, written by workers.
private final class RoundResults<T>: @unchecked Sendable {
    let slots: UnsafeMutablePointer<(ParsedChunk, T?)?>
    let count: Int

    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        slots.initialize(repeating: nil, count: count)
    }

    /// Moves slot `i` out.
    func take(_ i: Int) -> (ParsedChunk, T?) {
        let value = slots[i]!
        slots[i] = nil
        return value
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }
}

/// One reusable chunk buffer: whole lines only, the partial last line moved to `carry`.
private final class ChunkBuffer: @unchecked Sendable {
    private var storage: UnsafeMutableRawBufferPointer
    private(set) var length = 0

    init(capacity: Int) {
        storage = .allocate(byteCount: capacity, alignment: 64)
    }

    deinit { storage.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<length]) }

    /// Fills from `carry` then the file, cuts after the last newline, and leaves the remainder in
    /// `carry`. Returns true at end of file (then the chunk holds everything left).
    func fill(from file: FileReader, carry: inout [UInt8]) throws -> Bool {
        length = 0
        if carry.count > storage.count { grow(to: carry.count * 2) }
        carry.withUnsafeBytes { storage.baseAddress!.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, byteCount: $0.count) }
        length = carry.count
        carry.removeAll(keepingCapacity: true)
        while true {
            let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: storage[length...]))
            length += n
            if length < storage.count { return true }  // short read: end of file
            // Full: cut after the last newline; a chunk without one holds part of a long line.
            if let cut = lastNewline() {
                carry.append(contentsOf: storage[(cut + 1)..<length])
                length = cut + 1
                return false
            }
            grow(to: storage.count * 2)
        }
    }

    private func lastNewline() -> Int? {
        let bytes = storage.baseAddress!.assumingMemoryBound(to: UInt8.self)
        var i = length - 1
        while i >= 0 && bytes[i] != 10 { i -= 1 }
        return i >= 0 ? i : nil
    }

    private func grow(to capacity: Int) {
        let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 64)
        bigger.baseAddress!.copyMemory(from: storage.baseAddress!, byteCount: length)
        storage.deallocate()
        storage = bigger
    }
}
