import Foundation
import HerdTensor

/// The binary columnar cache of transformed Criteo rows, read back with `mmap`.
///
/// ```
/// offset 0     header, 4096 bytes, little-endian:
///              0 magic "HERDCRIT"  8 version u32  12 header bytes u32  16 dense (13) u32
///              20 sparse (26) u32  24 labelled u32  28 requested format code u32
///              32 block rows u64   40 rows u64  48 skipped rows u64  56 source size u64
///              64 source mtime ns i64  72 FeatureState fingerprint u64
/// offset 4096  block 0, block 1, …   block k starts at 4096 + k * blockRows * 160 and holds
///              n = min(blockRows, rows - k*blockRows) rows:
///                labels [n] Float | dense [n, 13] Float row-major | ids [26, n] Int32 feature-major
/// ```
///
/// NOTE: rows are stored in fixed-size blocks (feature-major inside each block) because the row
/// count is unknown until the text pass ends; blocks let the writer stream in one sequential
/// pass with bounded memory, and a row's position is still a division away. The header is
/// written last, into a temporary file that is renamed into place, so a crash never leaves a
/// cache that looks valid.
enum CriteoCacheLayout {
    static let magic: [UInt8] = Array("HERDCRIT".utf8)
    static let version: UInt32 = 1
    static let headerBytes = 4096
    /// Rows per block (10 MiB per block).
    static let defaultBlockRows = 1 << 16
    /// Bytes per row: label + 13 dense + 26 ids, 4 bytes each.
    static let rowBytes = 4 * (1 + Criteo.denseCount + Criteo.sparseCount)

    static func formatCode(_ f: CriteoFormat) -> UInt32 {
        let d: UInt32 = f.delimiter.map { $0 == .tab ? 1 : 2 } ?? 0
        let h: UInt32 = f.hasHeader.map { $0 ? 2 : 1 } ?? 0
        let l: UInt32 = f.labelled.map { $0 ? 2 : 1 } ?? 0
        return d | h << 4 | l << 8
    }
}

/// The header fields of a cache file.
struct CriteoCacheHeader: Equatable {
    var labelled: Bool
    var formatCode: UInt32
    var blockRows: Int
    var rows: Int
    var skippedRows: Int
    var source: SourceFingerprint
    var stateFingerprint: UInt64

    func encode() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: CriteoCacheLayout.headerBytes)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { out[at + i] = b } }
        }
        for (i, b) in CriteoCacheLayout.magic.enumerated() { out[i] = b }
        put(CriteoCacheLayout.version, 8)
        put(UInt32(CriteoCacheLayout.headerBytes), 12)
        put(UInt32(Criteo.denseCount), 16)
        put(UInt32(Criteo.sparseCount), 20)
        put(UInt32(labelled ? 1 : 0), 24)
        put(formatCode, 28)
        put(UInt64(blockRows), 32)
        put(UInt64(rows), 40)
        put(UInt64(skippedRows), 48)
        put(source.size, 56)
        put(source.modifiedNanoseconds, 64)
        put(stateFingerprint, 72)
        return out
    }

    /// Decodes and validates a header; the reason names what is wrong.
    static func decode(_ p: UnsafeRawBufferPointer, fileSize: Int) -> Result<CriteoCacheHeader, CacheProblem> {
        guard p.count >= CriteoCacheLayout.headerBytes else { return .failure(.init("file is shorter than its header")) }
        func get<T: FixedWidthInteger>(_: T.Type, _ at: Int) -> T {
            T(littleEndian: p.loadUnaligned(fromByteOffset: at, as: T.self))
        }
        guard Array(p[0..<8]) == CriteoCacheLayout.magic else { return .failure(.init("bad magic (not a Herd Criteo cache, or incomplete)")) }
        let version = get(UInt32.self, 8)
        guard version == CriteoCacheLayout.version else { return .failure(.init("version \(version), expected \(CriteoCacheLayout.version)")) }
        guard get(UInt32.self, 12) == UInt32(CriteoCacheLayout.headerBytes), get(UInt32.self, 16) == UInt32(Criteo.denseCount),
              get(UInt32.self, 20) == UInt32(Criteo.sparseCount)
        else { return .failure(.init("unexpected header or column counts")) }
        let header = CriteoCacheHeader(
            labelled: get(UInt32.self, 24) != 0, formatCode: get(UInt32.self, 28),
            blockRows: Int(get(UInt64.self, 32)), rows: Int(get(UInt64.self, 40)), skippedRows: Int(get(UInt64.self, 48)),
            source: SourceFingerprint(size: get(UInt64.self, 56), modifiedNanoseconds: get(Int64.self, 64)),
            stateFingerprint: get(UInt64.self, 72))
        guard header.blockRows > 0 else { return .failure(.init("block size is 0")) }
        let expected = CriteoCacheLayout.headerBytes + header.rows * CriteoCacheLayout.rowBytes
        guard fileSize == expected else { return .failure(.init("size \(fileSize) bytes, header implies \(expected)")) }
        return .success(header)
    }
}

struct CacheProblem: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// Streams transformed rows into a cache file, one block at a time.
final class CriteoCacheWriter {
    private(set) var finalPath: String
    private let tempPath: String
    private let file: FileWriter
    private let blockRows: Int
    private let labelled: Bool
    private var labels: [Float]
    private var dense: [Float]
    /// `[26, blockRows]`: feature f's pending ids start at `f * blockRows`.
    private var ids: [Int32]
    private var pending = 0
    private(set) var rows = 0

    init(path: String, labelled: Bool, blockRows: Int = CriteoCacheLayout.defaultBlockRows) throws {
        finalPath = path
        tempPath = path + ".tmp-\(getpid())"
        file = try FileWriter(path: tempPath)
        self.blockRows = blockRows
        self.labelled = labelled
        labels = [Float](repeating: 0, count: blockRows)
        dense = [Float](repeating: 0, count: blockRows * Criteo.denseCount)
        ids = [Int32](repeating: 0, count: blockRows * Criteo.sparseCount)
        try file.write([UInt8](repeating: 0, count: CriteoCacheLayout.headerBytes))
    }

    /// Appends transformed rows.
    func append(_ t: TransformedRows) throws {
        let n = t.count
        var done = 0
        while done < n {
            let take = min(n - done, blockRows - pending)
            if t.labelled {
                for i in 0..<take { labels[pending + i] = t.labels[done + i] }
            }
            let fd = Criteo.denseCount
            dense.withUnsafeMutableBufferPointer { dst in
                t.dense.withUnsafeBufferPointer { src in
                    (dst.baseAddress! + pending * fd).update(from: src.baseAddress! + done * fd, count: take * fd)
                }
            }
            ids.withUnsafeMutableBufferPointer { dst in
                t.ids.withUnsafeBufferPointer { src in
                    for f in 0..<Criteo.sparseCount {
                        (dst.baseAddress! + f * blockRows + pending).update(from: src.baseAddress! + f * n + done, count: take)
                    }
                }
            }
            pending += take
            done += take
            if pending == blockRows { try flush() }
        }
    }

    private func flush() throws {
        guard pending > 0 else { return }
        let n = pending
        try labels.withUnsafeBytes { try file.write(UnsafeRawBufferPointer(rebasing: $0[0..<(n * 4)])) }
        try dense.withUnsafeBytes { try file.write(UnsafeRawBufferPointer(rebasing: $0[0..<(n * 4 * Criteo.denseCount)])) }
        try ids.withUnsafeBytes { all in
            for f in 0..<Criteo.sparseCount {
                try file.write(UnsafeRawBufferPointer(rebasing: all[(f * blockRows * 4)..<((f * blockRows + n) * 4)]))
            }
        }
        rows += n
        pending = 0
    }

    /// Rewrites the ids of every categorical column `f` with a table in place: id `i` becomes
    /// `tables[f]![i]` (columns whose table is nil are left alone). Writes the pending block
    /// first; blocks are rewritten in parallel. Every id of a remapped column must be a valid
    /// index into its table.
    ///
    /// NOTE: lets one pass over the text both fit vocabularies and write the cache: rows are
    /// written with provisional ids (order of first appearance), renumbered here once the
    /// vocabularies are known.
    func remapIDs(_ tables: [[Int32]?]) throws {
        precondition(tables.count == Criteo.sparseCount, "one table (or nil) per categorical column")
        try flush()
        let blockCount = (rows + blockRows - 1) / blockRows
        let blockRows = self.blockRows, rows = self.rows, file = self.file
        var failure: Error?
        let lock = NSLock()
        Parallel.forRanges(blockCount) { blocks in
            let buffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: blockRows * Criteo.sparseCount)
            defer { buffer.deallocate() }
            do {
                for k in blocks {
                    let n = min(blockRows, rows - k * blockRows)
                    let position = UInt64(CriteoCacheLayout.headerBytes + k * blockRows * CriteoCacheLayout.rowBytes
                        + n * 4 * (1 + Criteo.denseCount))
                    let ids = UnsafeMutableRawBufferPointer(start: buffer.baseAddress!, count: n * Criteo.sparseCount * 4)
                    try file.read(into: ids, at: position)
                    for f in 0..<Criteo.sparseCount {
                        guard let table = tables[f] else { continue }
                        table.withUnsafeBufferPointer { t in
                            let column = buffer.baseAddress! + f * n
                            for r in 0..<n { column[r] = t[Int(column[r])] }
                        }
                    }
                    try file.write(UnsafeRawBufferPointer(ids), at: position)
                }
            } catch {
                lock.lock()
                failure = failure ?? error
                lock.unlock()
            }
        }
        if let failure { throw failure }
    }

    /// Writes the last block and the header, and renames the file into place (at `path` when
    /// given, else the path the writer was created for).
    func finish(formatCode: UInt32, skippedRows: Int, source: SourceFingerprint, stateFingerprint: UInt64, path: String? = nil) throws {
        if let path { finalPath = path }
        try flush()
        let header = CriteoCacheHeader(
            labelled: labelled, formatCode: formatCode, blockRows: blockRows, rows: rows, skippedRows: skippedRows,
            source: source, stateFingerprint: stateFingerprint)
        try header.encode().withUnsafeBytes { try file.write($0, at: 0) }
        try file.close()
        guard rename(tempPath, finalPath) == 0 else {
            throw HerdDataError.io(path: finalPath, message: "cannot rename cache into place: " + String(cString: strerror(errno)))
        }
    }

    /// Removes the temporary file after a failure.
    func abandon() {
        try? file.close()
        unlink(tempPath)
    }
}

/// A cache file mapped read-only into memory; gathers rows into batches.
final class MappedCriteoCache: @unchecked Sendable {
    let path: String
    let header: CriteoCacheHeader
    private let base: UnsafeRawPointer
    private let length: Int

    /// Maps and validates `path`; `CacheProblem` says why it is unusable.
    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw CacheProblem("cannot open: " + String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CacheProblem("cannot stat: " + String(cString: strerror(errno))) }
        let length = Int(st.st_size)
        guard length >= CriteoCacheLayout.headerBytes else { throw CacheProblem("file is shorter than its header") }
        guard let p = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw CacheProblem("mmap failed: " + String(cString: strerror(errno)))
        }
        switch CriteoCacheHeader.decode(UnsafeRawBufferPointer(start: p, count: length), fileSize: length) {
        case .success(let h):
            header = h
        case .failure(let problem):
            munmap(p, length)
            throw problem
        }
        self.path = path
        self.base = UnsafeRawPointer(p)
        self.length = length
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), length) }

    var rows: Int { header.rows }

    /// Block `k`: its row count and section pointers.
    @inline(__always)
    private func block(_ k: Int) -> (n: Int, labels: UnsafePointer<Float>, dense: UnsafePointer<Float>, ids: UnsafePointer<Int32>) {
        let start = k * header.blockRows
        let n = min(header.blockRows, header.rows - start)
        let p = base + CriteoCacheLayout.headerBytes + start * CriteoCacheLayout.rowBytes
        let labels = p.assumingMemoryBound(to: Float.self)
        let dense = labels + n
        let ids = UnsafeRawPointer(dense + n * Criteo.denseCount).assumingMemoryBound(to: Int32.self)
        return (n, labels, dense, ids)
    }

    /// Rows `indices` (any order) as one batch.
    func batch(rows indices: [Int]) -> Batch {
        let m = indices.count, fd = Criteo.denseCount
        let dense = Tensor(shape: [m, fd])
        var labels = [Float](repeating: 0, count: header.labelled ? m : 0)
        var ids = [Int32](repeating: 0, count: m * Criteo.sparseCount)
        labels.withUnsafeMutableBufferPointer { lab in
            ids.withUnsafeMutableBufferPointer { out in
                for (b, r) in indices.enumerated() {
                    precondition(r >= 0 && r < header.rows, "row \(r) outside 0..<\(header.rows)")
                    let k = r / header.blockRows
                    let i = r - k * header.blockRows
                    let blk = block(k)
                    if header.labelled { lab[b] = blk.labels[i] }
                    (dense.data + b * fd).update(from: blk.dense + i * fd, count: fd)
                    for f in 0..<Criteo.sparseCount { out[f * m + b] = blk.ids[f * blk.n + i] }
                }
            }
        }
        return Batch(dense: dense, sparse: KeyedJagged(oneHot: ids, features: Criteo.sparseCount, batchSize: m), labels: labels)
    }

    /// Contiguous rows as one batch, copied block segment by block segment.
    func batch(range: Range<Int>) -> Batch {
        precondition(range.lowerBound >= 0 && range.upperBound <= header.rows, "rows \(range) outside 0..<\(header.rows)")
        let m = range.count, fd = Criteo.denseCount
        let dense = Tensor(shape: [m, fd])
        var labels = [Float](repeating: 0, count: header.labelled ? m : 0)
        var ids = [Int32](repeating: 0, count: m * Criteo.sparseCount)
        labels.withUnsafeMutableBufferPointer { lab in
            ids.withUnsafeMutableBufferPointer { out in
                var r = range.lowerBound
                while r < range.upperBound {
                    let k = r / header.blockRows
                    let i = r - k * header.blockRows
                    let blk = block(k)
                    let take = min(blk.n - i, range.upperBound - r)
                    let b = r - range.lowerBound
                    if header.labelled { (lab.baseAddress! + b).update(from: blk.labels + i, count: take) }
                    (dense.data + b * fd).update(from: blk.dense + i * fd, count: take * fd)
                    for f in 0..<Criteo.sparseCount {
                        (out.baseAddress! + f * m + b).update(from: blk.ids + f * blk.n + i, count: take)
                    }
                    r += take
                }
            }
        }
        return Batch(dense: dense, sparse: KeyedJagged(oneHot: ids, features: Criteo.sparseCount, batchSize: m), labels: labels)
    }
}
