import Foundation
import HerdTensor

extension FeatureTable {
    /// The text Friesian hashes for row `r` of a scalar column: Python's `str(x)` — strings as
    /// they are, int64 in decimal, doubles in shortest round-trip form (`1.0`, `0.25`), null as
    /// `None`.
    func appendHashText(_ c: Column, _ r: Int, to out: inout [UInt8]) {
        if c.isNull(r) {
            out += "None".utf8
            return
        }
        switch c.data {
        case .string(let s): out += s.bytes[s.offsets[r]..<s.offsets[r + 1]]
        case .int64(let v): withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { out += decimal(v[r], $0) }
        case .double(let v): out += String(v[r]).utf8
        case .list: preconditionFailure("list columns are rejected before hashing")
        }
    }

    func requireScalar(_ name: String) throws -> Column {
        let c = try column(name)
        guard !c.type.isList else { throw FeatureError.wrongType(column: name, type: c.type, expected: "a scalar column") }
        return c
    }

    /// Friesian `hash_encode(columns, bins, method="md5")`: each value becomes
    /// `int(md5(str(x)).hexdigest(), 16) % bins` (int64 in `0..<bins`; null hashes as `None`).
    public func hashEncode(_ columns: [String], bins: Int) throws -> FeatureTable {
        guard bins >= 1, bins < 1 << 55 else { throw FeatureError.invalidArgument("hashEncode: bins must be in 1..<2^55, got \(bins)") }
        var out = self
        for name in columns {
            let c = try requireScalar(name)
            out = try out.with(name, hashed([c], bins: bins))
        }
        return out
    }

    /// Friesian `cross_hash_encode(columns, bins, cross_col_name)`: the values' texts
    /// concatenated (Spark `concat`, no separator; a null anywhere makes the whole text `None`)
    /// and MD5-hashed into `bins` buckets, as a new int64 column named `name` (default
    /// `crossed_<c1>_<c2>…`).
    public func crossHashEncode(_ columns: [String], bins: Int, name: String? = nil) throws -> FeatureTable {
        guard columns.count >= 2 else { throw FeatureError.invalidArgument("crossHashEncode: needs at least 2 columns, got \(columns.count)") }
        guard bins >= 1, bins < 1 << 55 else { throw FeatureError.invalidArgument("crossHashEncode: bins must be in 1..<2^55, got \(bins)") }
        let cs = try columns.map { try requireScalar($0) }
        return try with(name ?? "crossed_" + columns.joined(separator: "_"), hashed(cs, bins: bins))
    }

    /// Friesian `cross_columns(crossed_columns, bucket_sizes)`: one `crossHashEncode` per group,
    /// named `<c1>_<c2>…`.
    public func crossColumns(_ groups: [[String]], sizes: [Int]) throws -> FeatureTable {
        guard groups.count == sizes.count else {
            throw FeatureError.invalidArgument("crossColumns: \(groups.count) column groups but \(sizes.count) sizes")
        }
        var out = self
        for (g, size) in zip(groups, sizes) { out = try out.crossHashEncode(g, bins: size, name: g.joined(separator: "_")) }
        return out
    }

    /// Texts whose bucket each worker remembers (see `hashed`).
    static let hashCacheLimit = 1 << 16

    /// Hashes the text of every row into `bins`, in parallel: the texts of `columns` at the row
    /// (`appendHashText`) concatenated, or `None` when any of them is null.
    ///
    /// NOTE: each worker remembers the buckets of the first `hashCacheLimit` distinct texts: a
    /// cross of low-cardinality columns (tweet type × language) repeats a few hundred texts over
    /// millions of rows, and a table lookup costs a fraction of an MD5. The row loop reads the
    /// columns through pointers taken once (`withTextSources`): reading them through `Column`
    /// per row retained and released their arrays for every value.
    private func hashed(_ columns: [Column], bins: Int) -> Column {
        var ids = [Int64](repeating: 0, count: rowCount)
        FeatureTable.withTextSources(columns[...], []) { sources in
            let src = UncheckedSendable(sources)
            ids.withUnsafeMutableBufferPointer { buf in
                let b = UncheckedSendable(buf)
                Parallel.forRanges(rowCount, minPerWorker: 1024) { range in
                    var scratch: [UInt8] = []
                    var seen = KeyTable(capacity: 256)
                    var buckets: [Int64] = []
                    for r in range {
                        scratch.removeAll(keepingCapacity: true)
                        if src.value.contains(where: { $0.isNull(r) }) {
                            scratch += "None".utf8
                        } else {
                            for s in src.value { s.append(r, to: &scratch) }
                        }
                        b.value[r] = scratch.withUnsafeBytes { t in
                            if let k = seen.find(t) { return buckets[k] }
                            let id = Int64(MD5.bucket(t, UInt64(bins)))
                            if buckets.count < FeatureTable.hashCacheLimit {
                                _ = seen.insert(t)
                                buckets.append(id)
                            }
                            return id
                        }
                    }
                }
            }
        }
        return Column(type: .int64, data: .int64(ids))
    }

    /// A scalar column read through pointers (valid while the column's arrays are borrowed by
    /// `withTextSources`).
    struct TextSource {
        enum Values {
            case string(offsets: UnsafePointer<Int>, bytes: UnsafePointer<UInt8>)
            case int64(UnsafePointer<Int64>)
            case double(UnsafePointer<Double>)
        }
        var values: Values
        /// Validity words (`nil`: no nulls).
        var valid: UnsafePointer<UInt64>?

        @inline(__always)
        func isNull(_ r: Int) -> Bool { valid.map { $0[r >> 6] & (1 << UInt64(r & 63)) == 0 } ?? false }

        /// Appends the text of (non-null) row `r`, as `appendHashText` does.
        @inline(__always)
        func append(_ r: Int, to out: inout [UInt8]) {
            switch values {
            case .string(let o, let b): out.append(contentsOf: UnsafeBufferPointer(start: b + o[r], count: o[r + 1] - o[r]))
            case .int64(let v): withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 24) { out += decimal(v[r], $0) }
            case .double(let v): out += String(v[r]).utf8
            }
        }
    }

    /// Calls `body` with a `TextSource` for each of `columns` (after `done`), their arrays
    /// borrowed for the call.
    static func withTextSources<R>(_ columns: ArraySlice<Column>, _ done: [TextSource], _ body: ([TextSource]) -> R) -> R {
        guard let c = columns.first else { return body(done) }
        let rest = columns.dropFirst()
        func withValid(_ values: TextSource.Values) -> R {
            guard let v = c.validity else { return withTextSources(rest, done + [TextSource(values: values, valid: nil)], body) }
            return v.words.withUnsafeBufferPointer { w in
                withTextSources(rest, done + [TextSource(values: values, valid: w.baseAddress!)], body)
            }
        }
        // NOTE: an empty array has no base address; a dangling one is never read (no rows, or
        // only empty strings).
        switch c.data {
        case .string(let s):
            return s.offsets.withUnsafeBufferPointer { o in
                s.bytes.withUnsafeBufferPointer { b in
                    withValid(.string(offsets: o.baseAddress!, bytes: b.baseAddress ?? UnsafePointer(bitPattern: 1)!))
                }
            }
        case .int64(let v):
            return v.withUnsafeBufferPointer { withValid(.int64($0.baseAddress ?? UnsafePointer(bitPattern: 8)!)) }
        case .double(let v):
            return v.withUnsafeBufferPointer { withValid(.double($0.baseAddress ?? UnsafePointer(bitPattern: 8)!)) }
        case .list:
            preconditionFailure("list columns are rejected before hashing")
        }
    }
}
