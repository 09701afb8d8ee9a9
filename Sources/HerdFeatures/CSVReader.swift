import CHerdKernels
import Foundation
import HerdData
import HerdTensor

/// What reading a delimited file found.
public struct CSVReadSummary: Sendable, Equatable {
    /// Rows in the table.
    public var rows: Int
    /// Malformed rows skipped (always 0 under `OnError.fail`).
    public var skippedRows: Int
    /// Lines in the file, header and blank lines included.
    public var lines: Int
    /// The first few skipped rows, with file-global line numbers.
    public var skippedSamples: [RowError]

    public init(rows: Int, skippedRows: Int, lines: Int, skippedSamples: [RowError]) {
        self.rows = rows
        self.skippedRows = skippedRows
        self.lines = lines
        self.skippedSamples = skippedSamples
    }
}

/// Reads CSV/TSV/`\x01`-separated text into a `FeatureTable`.
///
/// Format: one row per line (`\n`, an optional `\r` before it is dropped), fields split at a
/// single byte `separator`. Quoting is off by default (NOTE: the click logs Herd targets —
/// Criteo, RecSys 2021 — never quote, and a tweet may start with `"`); with `quote` set, a field
/// that starts with the quote character runs to the matching closing quote, `""` inside stands
/// for one quote, and `""` alone is an empty string rather than null; quoted fields may not
/// contain newlines. An empty field is null. A
/// list field is split at its column's list separator; each element is parsed as the element
/// type. Blank lines are ignored but counted for line numbers. A UTF-8 byte-order mark is
/// skipped.
///
/// Column names and types come from `schema` when given; otherwise names come from the header
/// line (or are `_c0, _c1, …` as in Spark when there is none) and every column is read as
/// strings and then narrowed to `int64` or `double` if every non-null value parses as one
/// (`inferTypes`).
///
/// Parallelism: the file is mapped, cut at newlines into several parts per worker, and the
/// parts are parsed concurrently (`Parallel.forEach`), then concatenated in file order. Line
/// numbers in errors are exact: each part counts its own lines and the reader adds those of the
/// parts before it. A malformed row (wrong field count, unparsable number, list longer than
/// `maxListLength`) stops the read with `HerdDataError.malformedRow` (`file:line: reason`) under
/// `OnError.fail`, or is skipped and counted under `.skip`.
///
/// Projection: columns named in `skipColumns` are scanned past (their fields still count, quoted
/// fields still have to close) but not parsed or stored, and are absent from the table — for
/// columns a pipeline drops before reading them (`Pipeline.unreadColumns`). A skipped list
/// column's length is then not checked against `maxListLength`.
public struct CSVReader: Sendable {
    public var separator: UInt8
    public var header: Bool
    public var schema: CSVSchema?
    public var onError: OnError
    public var maxListLength: Int?
    /// Quote character (usually `"`), or nil (default) to read every byte verbatim.
    public var quote: UInt8?
    public var inferTypes: Bool
    /// Columns to scan past without storing (absent from the table); every name must be a column
    /// of the file.
    public var skipColumns: Set<String> = []
    /// Target bytes per parallel part (tests lower it to exercise part boundaries).
    public var partBytes: Int

    /// Skipped-row samples kept.
    public static let sampleLimit = 10

    public init(
        separator: UInt8 = UInt8(ascii: ","), header: Bool = true, schema: CSVSchema? = nil,
        onError: OnError = .fail, maxListLength: Int? = nil, quote: UInt8? = nil, inferTypes: Bool = true, partBytes: Int = 1 << 20
    ) {
        self.separator = schema?.separator.flatMap { $0.utf8.first } ?? separator
        self.header = schema?.header ?? header
        self.schema = schema
        self.onError = onError
        self.maxListLength = maxListLength ?? schema?.maxListLength
        self.quote = quote ?? schema?.quote.flatMap { $0.utf8.first }
        self.inferTypes = inferTypes
        self.partBytes = max(1, partBytes)
    }

    /// Reads `path` into a table.
    public func read(path: String) throws -> (table: FeatureTable, summary: CSVReadSummary) {
        let file = try MappedFile(path: path)
        file.adviseSequential()
        // NOTE: Swift may end `file`'s lifetime after its last use, and its deinit would unmap
        // the bytes that are still being parsed or copied below.
        defer { withExtendedLifetime(file) {} }
        guard file.bytes.count > 0 else { throw HerdDataError.emptyFile(path: path) }
        var body = file.bytes
        if body.count >= 3 && body[0] == 0xEF && body[1] == 0xBB && body[2] == 0xBF {
            body = UnsafeRawBufferPointer(rebasing: body[3...])
        }
        // Header.
        var headerNames: [String]?
        var firstLineLength = body.firstIndex(of: 10).map { $0 } ?? body.count
        let firstLine = UnsafeRawBufferPointer(rebasing: body[0..<firstLineLength])
        var lineBase = 0
        // The first line's fields (the header's names, or just how many columns there are).
        var firstFields = Array(firstLine)
        if firstFields.last == 13 { firstFields.removeLast() }
        let firstSplit = firstFields.split(separator: separator, omittingEmptySubsequences: false)
        if header {
            let q = quote
            headerNames = firstSplit.map { name in
                var bytes = Array(name)
                if let q, bytes.count >= 2, bytes.first == q, bytes.last == q {  // "name", "" → "
                    bytes = Array(bytes.dropFirst().dropLast())
                    var k = 0
                    var unescaped: [UInt8] = []
                    while k < bytes.count {
                        unescaped.append(bytes[k])
                        k += bytes[k] == q ? 2 : 1
                    }
                    bytes = unescaped
                }
                return String(decoding: bytes, as: UTF8.self)
            }
            lineBase = 1
            firstLineLength = min(firstLineLength + 1, body.count)
            body = UnsafeRawBufferPointer(rebasing: body[firstLineLength...])
        }
        // Fields.
        var specs: [FieldSpec]
        if let schema {
            try schema.validate()
            specs = schema.columns.map {
                FieldSpec(name: $0.name, type: $0.type, listSeparator: $0.listSeparator?.utf8.first ?? 0)
            }
        } else if let headerNames {
            specs = headerNames.map { FieldSpec(name: $0, type: .string, listSeparator: 0) }
            var seen = Set<String>()
            for s in specs where !seen.insert(s.name).inserted {
                throw FeatureError.invalidArgument("\(path):1: column '\(s.name)' appears twice in the header")
            }
        } else {
            specs = (0..<firstSplit.count).map { FieldSpec(name: "_c\($0)", type: .string, listSeparator: 0) }
        }
        let unknown = skipColumns.subtracting(specs.map(\.name))
        if !unknown.isEmpty {
            throw FeatureError.invalidArgument("\(path): cannot skip \(unknown.sorted()): no such columns (columns: \(specs.map(\.name).joined(separator: ", ")))")
        }
        for i in specs.indices { specs[i].skip = skipColumns.contains(specs[i].name) }
        guard specs.contains(where: { !$0.skip }) else {
            throw FeatureError.invalidArgument("\(path): skipColumns names every column; nothing would be read")
        }

        // Parts, cut after newlines.
        // NOTE: parts stay under 1 GiB, so their rows (≥ 2 bytes each) number less than 2^31
        // (`ColumnBuilder.nulls` holds Int32 row numbers).
        var parts = cut(body, target: min(max(partBytes, body.count / (64 * Parallel.threads) + 1), 1 << 30))
        if parts.isEmpty { parts = [UnsafeRawBufferPointer(start: nil, count: 0)] }
        // Lines per part (a memchr pass), so every part knows where its rows go in the final
        // per-row arrays before it is parsed.
        let partLines = countLines(parts)
        let partLineBase = prefixSums(partLines)
        // NOTE: each column's per-row array (scalar values; end offsets of strings and lists) is
        // allocated once at the file's line count and written in place by the parsers: no
        // per-part buffer whose pages are faulted in and then copied (see `RowSlots`).
        let slots = specs.map { $0.skip ? nil : RowSlots(type: $0.type, lines: partLineBase.last!) }
        let parser = LineParser(
            specs: specs, separator: separator, quote: quote, maxListLength: maxListLength, stopAtFirstError: onError == .fail)
        var results = [PartResult?](repeating: nil, count: parts.count)
        results.withUnsafeMutableBufferPointer { out in
            let o = UncheckedSendable(out)
            Parallel.forEach(parts.count) { i in
                let builders = specs.indices.map { c in
                    ColumnBuilder(type: specs[c].type, rowSlots: slots[c]?.slot(partLineBase[i]))
                }
                o.value[i] = parser.parse(parts[i], lines: partLines[i], into: builders)
                // NOTE: the part's values are copied out (builders, row slots); its pages of the file
                // need not stay resident (the whole input would otherwise count in the peak RSS).
                file.release(parts[i])
            }
        }
        // Merge in file order.
        var skipped = 0
        var samples: [RowError] = []
        var lines = lineBase
        var parsedRows = 0
        for r in results {
            let r = r!
            if onError == .fail, let e = r.errors.first {
                throw HerdDataError.malformedRow(RowError(file: path, line: lines + e.line + 1, reason: e.reason))
            }
            for e in r.errors where samples.count < Self.sampleLimit {
                samples.append(RowError(file: path, line: lines + e.line + 1, reason: e.reason))
            }
            skipped += r.skipped
            lines += r.lines
            parsedRows += r.rows
        }
        let partRows = results.map { $0!.rows }
        // Builders by column, then by part.
        var built: [[ColumnBuilder]] = (0..<specs.count).map { c in results.map { $0!.columns[c] } }
        results = []
        let narrow = schema == nil && inferTypes
        // NOTE: columns are assembled one at a time, each with its parts' variable-sized values
        // (string bytes, list elements) copied in parallel into arrays allocated once at their
        // final size: one dominant column (RecSys text tokens) would otherwise leave the other
        // core idle, and growing arrays fault in pages twice. A column's builders are freed as
        // soon as it is assembled, so the peak is the parsed data plus one column, not twice the
        // data.
        let kept = specs.indices.filter { !specs[$0].skip }
        let columns = kept.map { c -> Column in
            let merged = ColumnBuilder.assemble(built[c], slots[c]!, lineBase: partLineBase, rows: partRows)
            built[c] = []
            return narrow ? inferType(merged) : merged
        }
        let rows = parsedRows
        if rows == 0 { throw HerdDataError.noRows(path: path, skippedRows: skipped) }
        let table = try FeatureTable(zip(kept.map { specs[$0].name }, columns).map { ($0, $1) })
        return (table, CSVReadSummary(rows: rows, skippedRows: skipped, lines: lines, skippedSamples: samples))
    }

    /// Cuts `bytes` into parts of about `target` bytes, each ending after a newline (the last at
    /// the end).
    private func cut(_ bytes: UnsafeRawBufferPointer, target: Int) -> [UnsafeRawBufferPointer] {
        var parts: [UnsafeRawBufferPointer] = []
        var start = 0
        while start < bytes.count {
            var end = min(start + target, bytes.count)
            if end < bytes.count {
                let nl = memchr(bytes.baseAddress! + end - 1, 10, bytes.count - end + 1)
                end = nl.map { bytes.baseAddress!.distance(to: UnsafeRawPointer($0)) + 1 } ?? bytes.count
            }
            parts.append(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
            start = end
        }
        return parts
    }
}

/// The lines of each part as `LineParser.parse` walks them: its newlines, plus one when the part
/// does not end with a newline (the file's last line).
func countLines(_ parts: [UnsafeRawBufferPointer]) -> [Int] {
    var counts = [Int](repeating: 0, count: parts.count)
    counts.withUnsafeMutableBufferPointer { out in
        let o = UncheckedSendable(out)
        Parallel.forEach(parts.count) { i in
            let part = parts[i]
            guard let start = part.baseAddress, part.count > 0 else { return }
            let end = start + part.count
            var n = 0
            var scan = start
            while let nl = memchr(scan, 10, end - scan) {
                n += 1
                scan = UnsafeRawPointer(nl) + 1
            }
            o.value[i] = n + (part[part.count - 1] == 10 ? 0 : 1)
        }
    }
    return counts
}

/// `[0, c0, c0 + c1, …]`: where each count's range starts, then the total.
func prefixSums(_ counts: [Int]) -> [Int] {
    var out = [0]
    out.reserveCapacity(counts.count + 1)
    for c in counts { out.append(out.last! + c) }
    return out
}

/// Narrows a string column to int64 or double when every non-null value parses as one.
func inferType(_ column: Column) -> Column {
    guard case .string(let s) = column.data else { return column }
    /// Every non-null value parsed by `parse` (nulls as 0), or nil when one does not parse.
    func parseAll<T: Numeric>(_ parse: (UnsafePointer<UInt8>, Int) -> T?) -> [T]? {
        var out = [T](repeating: 0, count: s.count)
        let ok = s.bytes.withUnsafeBufferPointer { b -> Bool in
            let base = b.baseAddress ?? UnsafePointer(bitPattern: 1)!
            for i in 0..<s.count where !column.isNull(i) {
                guard let v = parse(base + s.offsets[i], s.offsets[i + 1] - s.offsets[i]) else { return false }
                out[i] = v
            }
            return true
        }
        return ok ? out : nil
    }
    if let ints = parseAll(NumberParsing.int64) { return Column(type: .int64, data: .int64(ints), validity: column.validity) }
    if let doubles = parseAll(NumberParsing.double) { return Column(type: .double, data: .double(doubles), validity: column.validity) }
    return column
}

struct FieldSpec: Sendable {
    var name: String
    var type: ColumnType
    var listSeparator: UInt8
    /// Scanned past, not stored (`CSVReader.skipColumns`).
    var skip = false
}

struct LocalError: Sendable {
    var line: Int
    var reason: String
}

struct PartResult: @unchecked Sendable {
    var columns: [ColumnBuilder]
    /// Rows parsed (lines minus blank and skipped ones).
    var rows: Int
    var lines: Int
    var skipped: Int
    var errors: [LocalError]
}

/// A growable buffer of plain values (the parser's append target).
///
/// NOTE: a class over raw memory instead of an `Array`: the hot loop appends millions of tiny
/// values (tokens of 3–8 bytes), and `Array.append(contentsOf:)` plus the uniqueness check of an
/// array reached through `inout` cost more than the parsing itself.
final class Buffer<T: BitwiseCopyable>: @unchecked Sendable {
    private(set) var base: UnsafeMutablePointer<T>
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 16) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    @inline(__always)
    func append(_ x: T) {
        if count == capacity { grow(count + 1) }
        base[count] = x
        count += 1
    }

    @inline(__always)
    func append(_ p: UnsafePointer<T>, _ n: Int) {
        if count + n > capacity { grow(count + n) }
        (base + count).update(from: p, count: n)
        count += n
    }

    var last: T { base[count - 1] }

    /// Makes room for `n` values in all (exactly `n`: no doubling past it).
    func reserve(_ n: Int) {
        guard n > capacity else { return }
        let bigger = UnsafeMutablePointer<T>.allocate(capacity: n)
        bigger.update(from: base, count: count)
        base.deallocate()
        base = bigger
        capacity = n
    }

    /// Drops everything after the first `n` values.
    func truncate(_ n: Int) { count = n }

    /// Room before the buffer must grow.
    @inline(__always)
    var capacityLeft: Int { capacity - count }

    /// Counts `n` more values, already written past the end (`n <= capacityLeft`).
    @inline(__always)
    func skip(_ n: Int) { count += n }

    var buffer: UnsafeBufferPointer<T> { UnsafeBufferPointer(start: base, count: count) }

    private func grow(_ needed: Int) {
        var c = capacity * 2
        while c < needed { c *= 2 }
        let bigger = UnsafeMutablePointer<T>.allocate(capacity: c)
        bigger.update(from: base, count: count)
        base.deallocate()
        base = bigger
        capacity = c
    }
}

extension Buffer where T == UInt8 {
    /// Appends `n` bytes from `p`; up to 32 bytes with one unaligned 32-byte load and store
    /// when `p + 32` is still readable (before `limit`) and there is room for 32.
    ///
    /// NOTE: RecSys ids are 32 bytes and flags a few: a `memmove` call per value cost more
    /// than the copy.
    @inline(__always)
    func append(_ p: UnsafePointer<UInt8>, _ n: Int, readableUntil limit: UnsafePointer<UInt8>) {
        if n <= 32 && limit - p >= 32 && capacityLeft >= 32 {
            let v = UnsafeRawPointer(p).loadUnaligned(as: SIMD32<UInt8>.self)
            UnsafeMutableRawPointer(base + count).storeBytes(of: v, as: SIMD32<UInt8>.self)
            skip(n)
        } else {
            append(p, n)
        }
    }
}

/// One column's final per-row array, allocated at the file's line count (an upper bound on its
/// rows) and filled in place by the parsers of all parts, each from the slot of its first line.
///
/// ```
/// int64 / double        ints / doubles [lines]      the row's value (0 for a null)
/// string / list types   offsets        [lines + 1]  offsets[0] = 0; slot 1 + i: the end of row
///                                                   i's bytes (lists: elements), counted from
///                                                   the start of its part until `assemble`
/// ```
///
/// NOTE: the arrays are created with every slot counted as initialized (plain 8-byte values,
/// never read before they are written) so that their pages are first touched by the parser that
/// writes them; `base` is the storage's address, taken at creation. The array is neither copied
/// nor resized until every parser is done, so its storage stays where it was.
final class RowSlots: @unchecked Sendable {
    let type: ColumnType
    var ints: [Int64] = []
    var doubles: [Double] = []
    var offsets: [Int] = []
    private(set) var base: UnsafeMutableRawPointer

    init(type: ColumnType, lines: Int) {
        self.type = type
        var p: UnsafeMutableRawPointer?
        switch type {
        case .int64:
            ints = [Int64](unsafeUninitializedCapacity: max(lines, 1)) { buf, n in
                p = UnsafeMutableRawPointer(buf.baseAddress!)
                n = lines
            }
        case .double:
            doubles = [Double](unsafeUninitializedCapacity: max(lines, 1)) { buf, n in
                p = UnsafeMutableRawPointer(buf.baseAddress!)
                n = lines
            }
        default:
            offsets = [Int](unsafeUninitializedCapacity: lines + 1) { buf, n in
                buf[0] = 0
                p = UnsafeMutableRawPointer(buf.baseAddress! + 1)
                n = lines + 1
            }
        }
        base = p!
    }

    /// The slot of line `line` (row slots of a part start at its first line).
    func slot(_ line: Int) -> UnsafeMutableRawPointer { base + 8 * line }

    /// Moves each part's rows (written from slot `lineBase[p]`) down to row `rowBase[p]` and
    /// drops the slots left over (blank lines, skipped rows).
    func compact(lineBase: [Int], rows: [Int]) {
        let rowBase = prefixSums(rows)
        let total = rowBase.last!
        for p in rows.indices where rowBase[p] != lineBase[p] && rows[p] > 0 {
            memmove(base + 8 * rowBase[p], base + 8 * lineBase[p], 8 * rows[p])  // down: in file order
        }
        switch type {
        case .int64: ints.removeLast(ints.count - total)
        case .double: doubles.removeLast(doubles.count - total)
        default: offsets.removeLast(offsets.count - 1 - total)
        }
    }
}

/// One column of one part: its rows go straight into the column's `RowSlots`; the
/// variable-sized values (string bytes, list elements) grow here. Rolls back to the start of a
/// bad row.
///
/// ```
/// row slots      [rows]          scalar values, or the end offset (in this part) of each row's
///                                bytes / elements
/// nulls          [null rows]     the rows (in this part) whose field was empty
/// ints/doubles   [elements]      int64 / double list elements
/// stringOffsets  [elements + 1]  string list elements in `bytes`
/// bytes          [bytes]         string values, or string list elements, back to back
/// ```
final class ColumnBuilder: @unchecked Sendable {
    let type: ColumnType
    /// Slot of this part's first row in the column's `RowSlots` (8 bytes per row).
    let slots: UnsafeMutableRawPointer
    /// Rows written.
    private(set) var rows = 0
    let ints = Buffer<Int64>()
    let doubles = Buffer<Double>()
    let bytes = Buffer<UInt8>(capacity: 256)
    let stringOffsets = Buffer<Int>()
    let nulls = Buffer<Int32>()
    /// The end of this part's bytes: string values copied from before `readLimit - 32` may be
    /// read 32 bytes at a time (`Buffer.append(_:_:readableUntil:)`).
    var readLimit = UnsafePointer<UInt8>(bitPattern: 1)!
    /// Where a skipped column's (never written) slots point.
    private let own: UnsafeMutableRawPointer?

    /// `rowSlots` nil: a skipped column, never written.
    init(type: ColumnType, rowSlots: UnsafeMutableRawPointer?) {
        self.type = type
        own = rowSlots == nil ? .allocate(byteCount: 8, alignment: 8) : nil
        slots = rowSlots ?? own!
        stringOffsets.append(0)
    }

    deinit { own?.deallocate() }

    /// Lines parsed before `reserveLike` extrapolates a part's sizes from them.
    static let sampleLines = 64

    /// Reserves room for `rows` rows' variable-sized values (string bytes, list elements),
    /// extrapolated from the first `sampleRows` rows with a 25 % margin; a wrong guess only
    /// costs the regrowth it would have cost anyway.
    func reserveLike(sampleRows: Int, rows: Int) {
        guard sampleRows > 0, rows > sampleRows else { return }
        func scaled(_ n: Int) -> Int { n * rows / sampleRows + n * rows / (4 * sampleRows) + 16 }
        if type == .string || type.element == .string { bytes.reserve(scaled(bytes.count)) }
        if type.isList {
            switch type.element! {
            case .int64: ints.reserve(scaled(ints.count))
            case .double: doubles.reserve(scaled(doubles.count))
            default: stringOffsets.reserve(scaled(stringOffsets.count - 1) + 1)
            }
        }
    }

    /// Drops everything appended since row `row` began (a malformed row): the row slots are
    /// simply overwritten by the next row, and the variable-sized values end where row
    /// `row - 1` ended (its slot).
    ///
    /// NOTE: derived from the slots instead of a saved mark per column per line (24 columns ×
    /// 6 counters saved on every RecSys line cost more than the rare rollback).
    func rollback(toRow row: Int) {
        rows = row
        if nulls.count > 0 && nulls.last == Int32(truncatingIfNeeded: row) { nulls.truncate(nulls.count - 1) }
        guard type != .int64 && type != .double else { return }
        let end = row == 0 ? 0 : slots.load(fromByteOffset: 8 * (row - 1), as: Int.self)
        switch type {
        case .string: bytes.truncate(end)
        case .int64List: ints.truncate(end)
        case .doubleList: doubles.truncate(end)
        default:
            stringOffsets.truncate(end + 1)
            bytes.truncate(stringOffsets.last)
        }
    }

    /// List elements appended.
    @inline(__always)
    var elements: Int {
        switch type.element {
        case .int64: return ints.count
        case .double: return doubles.count
        default: return stringOffsets.count - 1
        }
    }

    @inline(__always)
    func appendInt(_ v: Int64) {
        slots.storeBytes(of: v, toByteOffset: 8 * rows, as: Int64.self)
        rows += 1
    }

    @inline(__always)
    func appendDouble(_ v: Double) {
        slots.storeBytes(of: v, toByteOffset: 8 * rows, as: Double.self)
        rows += 1
    }

    /// Ends a row of a string or list column at `end` (bytes or elements of this part).
    @inline(__always)
    func endRow(_ end: Int) {
        slots.storeBytes(of: end, toByteOffset: 8 * rows, as: Int.self)
        rows += 1
    }

    /// A string value (one row of a string column).
    @inline(__always)
    func appendString(_ p: UnsafePointer<UInt8>, _ n: Int) {
        bytes.append(p, n, readableUntil: readLimit)
        endRow(bytes.count)
    }

    /// A string list element.
    @inline(__always)
    func appendElement(_ p: UnsafePointer<UInt8>, _ n: Int) {
        bytes.append(p, n, readableUntil: readLimit)
        stringOffsets.append(bytes.count)
    }

    /// A null row: value 0, empty string or empty list.
    @inline(__always)
    func appendNull() {
        nulls.append(Int32(truncatingIfNeeded: rows))
        switch type {
        case .int64: appendInt(0)
        case .double: appendDouble(0)
        case .string: endRow(bytes.count)
        default: endRow(elements)
        }
    }

    /// The column made of `parts` in order (all of one type, `rows[p]` rows each, written to
    /// `slots` from line `lineBase[p]`); variable-sized values copied in parallel.
    static func assemble(_ parts: [ColumnBuilder], _ slots: RowSlots, lineBase: [Int], rows: [Int]) -> Column {
        let type = parts[0].type
        let rowBase = prefixSums(rows)
        let totalRows = rowBase.last!
        slots.compact(lineBase: lineBase, rows: rows)
        var validity: Validity?
        if parts.contains(where: { $0.nulls.count > 0 }) {
            var v = Validity(count: totalRows, valid: true)
            for (p, part) in parts.enumerated() {
                for i in part.nulls.buffer { v[rowBase[p] + Int(i)] = false }
            }
            validity = v
        }
        switch type {
        case .int64: return Column(type: type, data: .int64(slots.ints), validity: validity)
        case .double: return Column(type: type, data: .double(slots.doubles), validity: validity)
        default: break
        }
        let byteBase = prefixSums(parts.map(\.bytes.count))
        var flat: ColumnData?
        var valueBase = byteBase
        if type.isList {
            valueBase = prefixSums(parts.map(\.elements))
            switch type.element! {
            case .int64: flat = .int64(gatherParts(parts.map(\.ints), valueBase))
            case .double: flat = .double(gatherParts(parts.map(\.doubles), valueBase))
            default:
                let bytes = gatherParts(parts.map(\.bytes), byteBase)
                let offsets = gatherOffsets(parts.map(\.stringOffsets), valueBase, byteBase)
                flat = .string(StringData(offsets: offsets, bytes: bytes))
            }
        }
        // Row offsets: shifted in place from part-relative to column-relative.
        var offsets = slots.offsets
        slots.offsets = []
        offsets.withUnsafeMutableBufferPointer { o in
            let out = UncheckedSendable(o)
            Parallel.forEach(parts.count) { p in
                let shift = valueBase[p]
                guard shift != 0 else { return }
                for i in (rowBase[p] + 1)..<(rowBase[p + 1] + 1) { out.value[i] += shift }
            }
        }
        if let flat { return Column(type: type, data: .list(offsets: offsets, values: flat), validity: validity) }
        let bytes = gatherParts(parts.map(\.bytes), byteBase)
        return Column(type: type, data: .string(StringData(offsets: offsets, bytes: bytes)), validity: validity)
    }

    /// `parts` back to back (`base[p]` = where part p starts; `base.last` = total).
    private static func gatherParts<T>(_ parts: [Buffer<T>], _ base: [Int]) -> [T] {
        [T](unsafeUninitializedCapacity: base.last!) { buf, n in
            let out = UncheckedSendable(buf)
            Parallel.forEach(parts.count) { p in
                let src = parts[p].buffer
                guard let s = src.baseAddress, src.count > 0 else { return }
                (out.value.baseAddress! + base[p]).initialize(from: s, count: src.count)
            }
            n = base.last!
        }
    }

    /// Offset arrays (each `count + 1` long, from 0) joined: part p's offsets shifted by
    /// `valueBase[p]`, placed after `countBase[p]`.
    private static func gatherOffsets(_ parts: [Buffer<Int>], _ countBase: [Int], _ valueBase: [Int]) -> [Int] {
        [Int](unsafeUninitializedCapacity: countBase.last! + 1) { buf, n in
            buf[0] = 0
            let out = UncheckedSendable(buf)
            Parallel.forEach(parts.count) { p in
                let shift = valueBase[p]
                let dst = out.value.baseAddress! + countBase[p]
                let src = parts[p].buffer
                for i in 1..<src.count { (dst + i).initialize(to: src[i] + shift) }
            }
            n = countBase.last! + 1
        }
    }
}

/// Parses the lines of one part into column builders.
struct LineParser: Sendable {
    let specs: [FieldSpec]
    let separator: UInt8
    let quote: UInt8?
    let maxListLength: Int?
    let stopAtFirstError: Bool
    // NOTE: the hot loop reads these plain arrays, not `specs` (whose `String` names would be
    // retained and released per field).
    private let types: [ColumnType]
    private let listSeparators: [UInt8]
    private let skips: [Bool]

    init(specs: [FieldSpec], separator: UInt8, quote: UInt8? = nil, maxListLength: Int?, stopAtFirstError: Bool) {
        self.specs = specs
        self.separator = separator
        self.quote = quote
        self.maxListLength = maxListLength
        self.stopAtFirstError = stopAtFirstError
        types = specs.map(\.type)
        listSeparators = specs.map(\.listSeparator)
        skips = specs.map(\.skip)
    }

    /// Parses `bytes` (`lines` lines, see `countLines`) into `builders` (one per spec).
    func parse(_ bytes: UnsafeRawBufferPointer, lines lineCount: Int, into builders: [ColumnBuilder]) -> PartResult {
        // NOTE: unretained references: the hot loop would otherwise retain and release a
        // builder for every field (a fifth of the parse time). `builders` keeps them alive.
        let refs = builders.map { Unmanaged.passUnretained($0) }
        let scratch = Buffer<UInt8>(capacity: 256)  // unescaped quoted fields (≥ 32: read 32 bytes at a time)
        let seps = Buffer<UInt32>(capacity: specs.count)  // a line's separator offsets (unquoted)
        var lines = 0, skipped = 0, rows = 0
        var errors: [LocalError] = []
        guard let start = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else {
            return PartResult(columns: builders, rows: 0, lines: 0, skipped: 0, errors: [])
        }
        let end = start + bytes.count
        for b in builders { b.readLimit = end }
        var p = start
        var sized = lineCount <= 2 * ColumnBuilder.sampleLines
        while p < end {
            if !sized && lines == ColumnBuilder.sampleLines {
                // NOTE: sized from the first lines (see `ColumnBuilder.reserveLike`): string
                // bytes and list elements would otherwise grow by doubling, copying and faulting
                // their pages in about twice.
                sized = true
                for c in builders.indices where !skips[c] { builders[c].reserveLike(sampleRows: lines, rows: lineCount) }
            }
            let nl: UnsafePointer<UInt8>
            var found = 0
            if quote == nil {
                nl = p + herd_csv_split_line(p, end, separator, seps.base, specs.count, &found)
            } else {
                nl = memchr(p, 10, end - p).map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) } ?? end
            }
            var e = nl
            if e > p && e[-1] == 13 { e -= 1 }
            let line = lines
            lines += 1
            if e > p {
                let failure = quote == nil ? parseSplitLine(p, e, seps.base, found, refs) : parseLine(p, e, refs, scratch)
                if let reason = failure {
                    for c in builders.indices where !skips[c] { builders[c].rollback(toRow: rows) }
                    skipped += 1
                    if errors.count < CSVReader.sampleLimit { errors.append(LocalError(line: line, reason: reason)) }
                    if stopAtFirstError { break }
                } else {
                    rows += 1
                }
            }
            p = nl + 1
        }
        return PartResult(columns: builders, rows: rows, lines: lines, skipped: skipped, errors: errors)
    }

    /// Parses one unquoted line (without its newline) whose separators `herd_csv_split_line`
    /// found (`found` of them, the first `specs.count` offsets in `seps`); returns the reason
    /// when it is malformed (the same reason, for the same first problem, as `parseLine`).
    @inline(__always)
    private func parseSplitLine(
        _ lineStart: UnsafePointer<UInt8>, _ lineEnd: UnsafePointer<UInt8>, _ seps: UnsafeMutablePointer<UInt32>, _ found: Int,
        _ builders: [Unmanaged<ColumnBuilder>]
    ) -> String? {
        let n = specs.count
        var start = lineStart
        for c in 0..<n {
            if c == found && c < n - 1 { return "expected \(n) fields, found \(c + 1)" }
            let next = c < found ? lineStart + Int(seps[c]) : lineEnd
            if !skips[c] {
                let reason = builders[c]._withUnsafeGuaranteedRef { parseField(c, start, next - start, $0) }
                if let reason { return reason }
            }
            start = next + 1
        }
        if found > n - 1 { return "expected \(n) fields, found \(found + 1)" }
        return nil
    }

    /// Parses one line (without its newline); returns the reason when it is malformed.
    @inline(__always)
    private func parseLine(
        _ lineStart: UnsafePointer<UInt8>, _ lineEnd: UnsafePointer<UInt8>, _ builders: [Unmanaged<ColumnBuilder>], _ scratch: Buffer<UInt8>
    ) -> String? {
        var p = lineStart
        let n = specs.count
        for c in 0..<n {
            // The field's value is `start ..< start + len`; `next` is the separator (or line end) after it.
            var start = p, len: Int, next: UnsafePointer<UInt8>
            var quotedEmpty = false
            if let quote, p < lineEnd, p.pointee == quote {
                // Quoted: find the closing quote ("" is an escaped quote).
                var r = p + 1
                var escaped = false
                while true {
                    while r < lineEnd && r.pointee != quote { r += 1 }
                    if r >= lineEnd { return "column '\(specs[c].name)': unterminated quoted field (quoted fields cannot span lines)" }
                    if r + 1 < lineEnd && r[1] == quote {
                        escaped = true
                        r += 2
                        continue
                    }
                    break
                }
                next = r + 1
                if next < lineEnd && next.pointee != separator { return "column '\(specs[c].name)': text after the closing quote" }
                start = p + 1
                len = r - start
                if escaped && !skips[c] {
                    scratch.truncate(0)
                    var k = start
                    while k < r {
                        scratch.append(k.pointee)
                        k += k.pointee == quote ? 2 : 1
                    }
                    start = UnsafePointer(scratch.base)
                    len = scratch.count
                }
                quotedEmpty = len == 0  // "" is an empty string, not null
            } else {
                next = memchr(p, Int32(separator), lineEnd - p).map { UnsafePointer($0.assumingMemoryBound(to: UInt8.self)) } ?? lineEnd
                len = next - p
            }
            if next == lineEnd && c < n - 1 { return "expected \(n) fields, found \(c + 1)" }
            if !skips[c] {
                let reason = builders[c]._withUnsafeGuaranteedRef { b -> String? in
                    if quotedEmpty && types[c] == .string {
                        b.endRow(b.bytes.count)
                        return nil
                    }
                    return parseField(c, start, len, b)
                }
                if let reason { return reason }
            }
            p = next + 1
        }
        if p <= lineEnd {  // a separator followed the last field
            var found = n + 1
            var q = p
            while q < lineEnd {
                if q.pointee == separator { found += 1 }
                q += 1
            }
            return "expected \(n) fields, found \(found)"
        }
        return nil
    }

    @inline(__always)
    private func parseField(_ c: Int, _ p: UnsafePointer<UInt8>, _ len: Int, _ b: ColumnBuilder) -> String? {
        let type = types[c]
        if len == 0 {
            b.appendNull()
            return nil
        }
        switch type {
        case .int64:
            guard let v = NumberParsing.int64(p, len) else { return cannotParse(c, p, len, as: "int64") }
            b.appendInt(v)
        case .double:
            guard let v = NumberParsing.double(p, len) else { return cannotParse(c, p, len, as: "double") }
            b.appendDouble(v)
        case .string:
            b.appendString(p, len)
        default:
            let sep = listSeparators[c]
            let element = type.element!
            var count = 0
            var s = p
            let end = p + len
            while true {
                var q = s
                while q < end && q.pointee != sep { q += 1 }
                count += 1
                switch element {
                case .int64:
                    guard let v = NumberParsing.int64(s, q - s) else { return cannotParse(c, s, q - s, as: "int64 list element") }
                    b.ints.append(v)
                case .double:
                    guard let v = NumberParsing.double(s, q - s) else { return cannotParse(c, s, q - s, as: "double list element") }
                    b.doubles.append(v)
                default:
                    b.appendElement(s, q - s)
                }
                if q >= end { break }
                s = q + 1
            }
            if let m = maxListLength, count > m {
                return "column '\(specs[c].name)': list of \(count) elements exceeds the maximum list length \(m)"
            }
            b.endRow(b.elements)
        }
        return nil
    }

    private func cannotParse(_ c: Int, _ p: UnsafePointer<UInt8>, _ len: Int, as what: String) -> String {
        var text = String(decoding: UnsafeBufferPointer(start: p, count: min(len, 40)), as: UTF8.self)
        if len > 40 { text += "…" }
        return "column '\(specs[c].name)': cannot parse '\(text)' as \(what)"
    }
}
