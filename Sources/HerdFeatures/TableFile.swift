import Foundation
import HerdData
import HerdTensor

/// Herd's own binary columnar table file (`.herdtable`).
///
/// ```
/// offset 0        8 bytes   magic "HERDTBL1"
/// offset 8        UInt64 LE header length H
/// offset 16       H bytes   JSON header:
///                   {"rows": n, "columns": [{"name": …, "type": "string_list",
///                     "buffers": [{"kind": "validity", "offset": o, "length": l}, …]}]}
/// then            the buffers, each starting at a multiple of 64 bytes, in header order
/// ```
///
/// Buffers of a column, in order: `validity` (UInt64 bitmap words, only when the column has
/// nulls), then the data: `values` (Int64 or Double) for numbers; `offsets` (Int64, n + 1) and
/// `bytes` for strings; `list_offsets` (Int64, n + 1) followed by the element buffers for lists.
/// Every number is little-endian (NOTE: Herd targets x86-64 and arm64 only; both are
/// little-endian, so buffers are written and read as memory images).
///
/// Reading maps the file and copies each buffer once into the column arrays; every offset and
/// length is checked against the file size first, so a truncated file is refused, not read past.
public enum TableFile {
    static let magic = Array("HERDTBL1".utf8)

    struct BufferRef: Codable {
        var kind: String
        var offset: Int
        var length: Int
    }

    struct ColumnHeader: Codable {
        var name: String
        var type: ColumnType
        var buffers: [BufferRef]
    }

    struct Header: Codable {
        var rows: Int
        var columns: [ColumnHeader]
    }

    /// Writes `table` to `path` atomically (a temporary file renamed into place): readers see
    /// the old file or the whole new one. `durable` also waits until the data is on disk before
    /// the rename (`fsync`), so a power loss cannot leave a partly written file behind.
    ///
    /// NOTE: `durable: false` is for outputs a rerun recreates (`herd preprocess`): the fsync of
    /// a 200 MB table costs 0.1 s or more on these machines, and dataframe writers (polars'
    /// `write_ipc`) do not sync either.
    public static func write(_ table: FeatureTable, to path: String, durable: Bool = true) throws {
        // Lay out the buffers.
        // NOTE: buffers are written straight from the column arrays (no staging copy); `Int`
        // offsets are written as Int64, the same bytes on 64-bit platforms.
        var blobs: [(kind: String, bytes: Blob)] = []
        var columnBlobs: [[Int]] = []
        func add(_ kind: String, _ bytes: Blob) -> Int {
            blobs.append((kind, bytes))
            return blobs.count - 1
        }
        func addData(_ data: ColumnData, into ids: inout [Int]) {
            switch data {
            case .int64(let v): ids.append(add("values", .int64(v)))
            case .double(let v): ids.append(add("values", .double(v)))
            case .string(let s):
                ids.append(add("offsets", .int(s.offsets)))
                ids.append(add("bytes", .bytes(s.bytes)))
            case .list(let o, let inner):
                ids.append(add("list_offsets", .int(o)))
                addData(inner, into: &ids)
            }
        }
        for c in table.columns {
            var ids: [Int] = []
            if let v = c.validity { ids.append(add("validity", .words(v.words))) }
            addData(c.data, into: &ids)
            columnBlobs.append(ids)
        }
        // Header needs the offsets, which depend on the header length: iterate to a fixed point.
        func align(_ x: Int) -> Int { (x + 63) / 64 * 64 }
        var headerLength = 0
        var header = Header(rows: table.rowCount, columns: [])
        var json: [UInt8] = []
        for _ in 0..<4 {
            var offset = align(16 + headerLength)
            var offsets: [Int] = []
            for b in blobs {
                offsets.append(offset)
                offset = align(offset + b.bytes.byteCount)
            }
            header.columns = zip(table.names, table.columns).enumerated().map { (i, nc) in
                ColumnHeader(name: nc.0, type: nc.1.type, buffers: columnBlobs[i].map {
                    BufferRef(kind: blobs[$0].kind, offset: offsets[$0], length: blobs[$0].bytes.byteCount)
                })
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            json = Array(try encoder.encode(header))
            if json.count <= headerLength { break }
            headerLength = json.count + 64  // room for digits growing
        }
        json += [UInt8](repeating: 32, count: headerLength - json.count)  // pad with spaces

        // Where each buffer goes.
        var placement: [Int] = []
        var size = align(16 + headerLength)
        for b in blobs {
            placement.append(size)
            size = align(size + b.bytes.byteCount)
        }
        let fileSize = blobs.isEmpty ? 16 + headerLength : placement.last! + blobs.last!.bytes.byteCount

        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw HerdDataError.io(path: path, message: String(cString: strerror(errno))) }
        var ok = false
        defer {
            close(fd)
            if !ok { unlink(tmp) }
        }
        /// Writes `b` at file offset `at`; returns errno on failure, 0 on success.
        func put(_ b: UnsafeRawBufferPointer, at: Int) -> Int32 {
            var done = 0
            while done < b.count {
                let n = pwrite(fd, b.baseAddress! + done, b.count - done, off_t(at + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                done += n
            }
            return 0
        }
        func fail(_ code: Int32) -> HerdDataError { .io(path: path, message: "write failed: " + String(cString: strerror(code))) }
        // NOTE: the file is set to its final size first; the padding between buffers is never
        // written and reads back as zeros. The buffers are written by one thread, in order:
        // Linux file systems (ext4, XFS) hold the inode lock for the whole of a buffered write, so
        // a second thread writing the same file only waited — spinning on the lock
        // (`rwsem_spin_on_owner`, ≈6 % of the CPU of `herd preprocess` on 900k RecSys rows) —
        // and the wall time was the same. The caller may use the other core meanwhile.
        guard ftruncate(fd, off_t(fileSize)) == 0 else { throw fail(errno) }
        var head = magic
        withUnsafeBytes(of: UInt64(headerLength).littleEndian) { head += $0 }
        head += json
        let headError = head.withUnsafeBytes { put($0, at: 0) }
        if headError != 0 { throw fail(headError) }
        for (i, b) in blobs.enumerated() {
            let code = b.bytes.withUnsafeBytes { put($0, at: placement[i]) }
            if code != 0 { throw fail(code) }
        }
        guard !durable || fsync(fd) == 0, rename(tmp, path) == 0 else {
            throw HerdDataError.io(path: path, message: String(cString: strerror(errno)))
        }
        ok = true
    }

    /// One buffer to write, still in its column array.
    enum Blob {
        case int64([Int64]), double([Double]), int([Int]), words([UInt64]), bytes([UInt8])

        var byteCount: Int { withUnsafeBytes { $0.count } }

        func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            switch self {
            case .int64(let a): return try a.withUnsafeBytes(body)
            case .double(let a): return try a.withUnsafeBytes(body)
            case .int(let a): return try a.withUnsafeBytes(body)
            case .words(let a): return try a.withUnsafeBytes(body)
            case .bytes(let a): return try a.withUnsafeBytes(body)
            }
        }
    }

    /// Reads a table written by `write`; with `columns`, only those (in that order) — the other
    /// columns' pages are never touched.
    public static func read(path: String, columns: [String]? = nil) throws -> FeatureTable {
        let file = try MappedFile(path: path)
        file.adviseSequential()
        // NOTE: Swift may end `file`'s lifetime after its last use, and its deinit would unmap
        // the bytes that are still being parsed or copied below.
        defer { withExtendedLifetime(file) {} }
        let bytes = file.bytes
        func bad(_ reason: String) -> FeatureError { .invalidTableFile(path: path, reason: reason) }
        let header = try readHeader(bytes, path: path)
        var wanted = header.columns
        if let columns {
            wanted = try columns.map { name in
                guard let c = header.columns.first(where: { $0.name == name }) else {
                    throw FeatureError.unknownColumn(name, available: header.columns.map(\.name))
                }
                return c
            }
        }
        // Columns are copied out of the mapping in parallel, one task per column.
        var results = [Result<Column, Error>?](repeating: nil, count: wanted.count)
        let rows = header.rows
        results.withUnsafeMutableBufferPointer { out in
            let o = UncheckedSendable(out)
            Parallel.forEach(wanted.count) { i in
                o.value[i] = Result { try readColumn(wanted[i], rows: rows, bytes: bytes, bad: bad) }
            }
        }
        return try FeatureTable(zip(wanted, results).map { ($0.name, try $1!.get()) })
    }

    /// The column names of the table at `path`, in order (only its header is read).
    public static func columnNames(path: String) throws -> [String] {
        let file = try MappedFile(path: path)
        return try withExtendedLifetime(file) { try readHeader(file.bytes, path: path).columns.map(\.name) }
    }

    private static func readHeader(_ bytes: UnsafeRawBufferPointer, path: String) throws -> Header {
        func bad(_ reason: String) -> FeatureError { .invalidTableFile(path: path, reason: reason) }
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else { throw bad("missing HERDTBL1 magic") }
        let headerLength = Int(bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian)
        guard headerLength <= bytes.count - 16 else { throw bad("header runs past the end of the file (truncated?)") }
        do {
            return try JSONDecoder().decode(Header.self, from: Data(bytes[16..<(16 + headerLength)]))
        } catch {
            throw bad("unreadable header")
        }
    }

    private static func readColumn(
        _ ch: ColumnHeader, rows: Int, bytes: UnsafeRawBufferPointer, bad: (String) -> FeatureError
    ) throws -> Column {
        var queue = ch.buffers[...]
        func take(_ kind: String) throws -> UnsafeRawBufferPointer {
            guard let b = queue.popFirst(), b.kind == kind else { throw bad("column '\(ch.name)': expected a \(kind) buffer") }
            guard b.offset >= 0, b.length >= 0, b.offset <= bytes.count - b.length else {
                throw bad("column '\(ch.name)': \(kind) buffer runs past the end of the file (truncated?)")
            }
            return UnsafeRawBufferPointer(rebasing: bytes[b.offset..<(b.offset + b.length)])
        }
        func array<T>(_ b: UnsafeRawBufferPointer, _: T.Type) throws -> [T] {
            guard b.count % MemoryLayout<T>.stride == 0 else { throw bad("column '\(ch.name)': buffer size") }
            return [T](unsafeUninitializedCapacity: b.count / MemoryLayout<T>.stride) { out, n in
                if b.count > 0 { UnsafeMutableRawPointer(out.baseAddress!).copyMemory(from: b.baseAddress!, byteCount: b.count) }
                n = b.count / MemoryLayout<T>.stride
            }
        }
        func offsets(_ b: UnsafeRawBufferPointer, count: Int, limit: Int?) throws -> [Int] {
            let o = try array(b, Int64.self).map { Int($0) }
            guard o.count == count + 1, o.first == 0,
                  zip(o, o.dropFirst()).allSatisfy({ $0 <= $1 }), limit.map({ o.last! == $0 }) ?? true
            else { throw bad("column '\(ch.name)': inconsistent offsets") }
            return o
        }
        func readData(_ type: ColumnType, count: Int) throws -> ColumnData {
            switch type {
            case .int64:
                let v = try array(try take("values"), Int64.self)
                guard v.count == count else { throw bad("column '\(ch.name)': \(v.count) values, expected \(count)") }
                return .int64(v)
            case .double:
                let v = try array(try take("values"), Double.self)
                guard v.count == count else { throw bad("column '\(ch.name)': \(v.count) values, expected \(count)") }
                return .double(v)
            case .string:
                let ob = try take("offsets")
                let by = try take("bytes")
                let o = try offsets(ob, count: count, limit: by.count)
                return .string(StringData(offsets: o, bytes: Array(by)))
            default:
                let o = try offsets(try take("list_offsets"), count: count, limit: nil)
                return .list(offsets: o, values: try readData(type.element!, count: o.last!))
            }
        }
        var validity: Validity?
        if ch.buffers.first?.kind == "validity" {
            let words = try array(try take("validity"), UInt64.self)
            guard words.count == (rows + 63) / 64 else { throw bad("column '\(ch.name)': validity size") }
            validity = Validity(words: words, count: rows)
        }
        let data = try readData(ch.type, count: rows)
        return Column(type: ch.type, data: data, validity: validity)
    }
}
