import Foundation
import HerdTensor

/// Fitted per-column (min, max) of `minMaxScale`, re-appliable to another table (the test split,
/// serving) so the same raw value always scales to the same number.
public struct MinMaxStats: Sendable, Equatable, Codable {
    public struct Range: Sendable, Equatable, Codable {
        public var min: Double
        public var max: Double
    }

    /// Column → observed (min, max) at fit time.
    public var ranges: [String: Range]
    /// Output range.
    public var outMin: Double
    public var outMax: Double

    /// Scales the columns of `ranges` in `table` (output `double`, nulls stay null). Values outside
    /// the fitted range scale outside `[outMin, outMax]`, as in Spark's `MinMaxScalerModel`.
    public func apply(_ table: FeatureTable) throws -> FeatureTable {
        var out = table
        for name in ranges.keys.sorted() {
            let r = ranges[name]!
            let c = try table.column(name)
            guard c.type.isNumeric else { throw FeatureError.wrongType(column: name, type: c.type, expected: "int64 or double") }
            let span = r.max - r.min
            let scale = outMax - outMin
            let lo = r.min, outMin = outMin, middle = 0.5 * (outMax + outMin)
            // NOTE: a constant column scales to the middle of the output range (Spark's rule).
            @inline(__always) func scaled(_ x: Double) -> Double { span == 0 ? middle : (x - lo) / span * scale + outMin }
            // NOTE: int64 values converted one at a time (no Double copy of the column), rows split across workers.
            let mapped: [Double] = FeatureTable.rowParallel(table.rowCount) { rows, m in
                switch c.data {
                case .int64(let v): v.withUnsafeBufferPointer { v in for i in rows { m[i] = scaled(Double(v[i])) } }
                case .double(let v): v.withUnsafeBufferPointer { v in for i in rows { m[i] = scaled(v[i]) } }
                default: break
                }
            }
            out = try out.with(name, Column(type: .double, data: .double(mapped), validity: c.validity))
        }
        return out
    }
}

/// Fitted per-column mean and standard deviation of `standardScale`.
public struct StandardStats: Sendable, Equatable, Codable {
    public struct Moments: Sendable, Equatable, Codable {
        public var mean: Double
        /// Sample standard deviation (n − 1 in the denominator, as Spark's `StandardScaler`).
        public var std: Double
    }

    public var moments: [String: Moments]

    /// `(x − mean) / std` per column (0 when std is 0); output `double`, nulls stay null.
    public func apply(_ table: FeatureTable) throws -> FeatureTable {
        var out = table
        for name in moments.keys.sorted() {
            let m = moments[name]!
            let (v, validity) = try table.numeric(name)
            let mapped = v.map { m.std == 0 ? 0 : ($0 - m.mean) / m.std }
            out = try out.with(name, Column(type: .double, data: .double(mapped), validity: validity))
        }
        return out
    }
}

extension FeatureTable {
    /// Values of a numeric column as Double, with its validity; throws for other types.
    func numeric(_ name: String) throws -> ([Double], Validity?) {
        let c = try column(name)
        guard let v = c.numericValues else { throw FeatureError.wrongType(column: name, type: c.type, expected: "int64 or double") }
        return (v, c.validity)
    }

    func requireColumns(_ names: [String]) throws {
        for n in names { _ = try index(of: n) }
    }

    // MARK: fillna

    /// Replaces nulls with `value` in `columns` (all columns whose type accepts `value` when nil).
    ///
    /// An `.int` fills int64 and double columns, a `.double` fills double columns (and int64
    /// columns when it is integral), a `.string` fills string columns; an empty list (`.list([])`)
    /// fills list columns. Naming a column whose type does not accept `value` is an error.
    public func fillna(_ value: Value, columns: [String]? = nil) throws -> FeatureTable {
        let targets = columns ?? zip(names, self.columns).filter { accepts($0.1.type, value) }.map(\.0)
        var out = self
        for name in targets {
            out = try out.with(name, try filled(try column(name), value, name))
        }
        return out
    }

    private func accepts(_ type: ColumnType, _ value: Value) -> Bool {
        switch (type, value) {
        case (.int64, .int), (.double, .int), (.double, .double), (.string, .string): return true
        case (.int64, .double(let x)): return x.rounded() == x && Int64(exactly: x) != nil
        case (_, .list(let l)): return type.isList && l.isEmpty
        default: return false
        }
    }

    /// Replaces nulls with a value per column (`column → value`, same rules as above).
    public func fillna(_ values: [String: Value]) throws -> FeatureTable {
        var out = self
        for name in values.keys.sorted() { out = try out.fillna(values[name]!, columns: [name]) }
        return out
    }

    private func filled(_ c: Column, _ value: Value, _ name: String) throws -> Column {
        guard let validity = c.validity else { return c }
        func wrong(_ what: String) -> FeatureError {
            .invalidArgument("fillna: cannot fill column '\(name)' of type \(c.type) with \(what) \(value)")
        }
        switch (c.data, value) {
        case (.int64(var v), .int(let x)):
            for i in 0..<v.count where !validity[i] { v[i] = x }
            return Column(type: .int64, data: .int64(v))
        case (.int64(var v), .double(let x)):
            guard x.rounded() == x, let xi = Int64(exactly: x) else { throw wrong("non-integral") }
            for i in 0..<v.count where !validity[i] { v[i] = xi }
            return Column(type: .int64, data: .int64(v))
        case (.double(var v), .int(let x)):
            for i in 0..<v.count where !validity[i] { v[i] = Double(x) }
            return Column(type: .double, data: .double(v))
        case (.double(var v), .double(let x)):
            for i in 0..<v.count where !validity[i] { v[i] = x }
            return Column(type: .double, data: .double(v))
        case (.string(let s), .string(let x)):
            var out = StringData()
            out.bytes.reserveCapacity(s.bytes.count)
            for i in 0..<s.count {
                if validity[i] { out.bytes += s.bytes[s.offsets[i]..<s.offsets[i + 1]] } else { out.bytes += x.utf8 }
                out.offsets.append(out.bytes.count)
            }
            return Column(type: .string, data: .string(out))
        case (.list, .list(let l)) where l.isEmpty:
            return Column(type: c.type, data: c.data)
        default:
            throw wrong("value")
        }
    }

    // MARK: clip, log

    /// Clips numeric columns into `[min, max]` (either bound optional); types are kept (an int64
    /// column is clipped to the integers inside the bounds); nulls stay null.
    public func clip(_ columns: [String], min: Double? = nil, max: Double? = nil) throws -> FeatureTable {
        guard min != nil || max != nil else { throw FeatureError.invalidArgument("clip: give min, max or both") }
        if let lo = min, let hi = max, lo > hi { throw FeatureError.invalidArgument("clip: min \(lo) is greater than max \(hi)") }
        var out = self
        for name in columns {
            let c = try column(name)
            switch c.data {
            case .int64(let v):
                let lo = min.map { clampToInt64($0.rounded(.up)) } ?? .min
                let hi = max.map { clampToInt64($0.rounded(.down)) } ?? .max
                out = try out.with(name, Column(type: .int64, data: .int64(v.map { Swift.min(Swift.max($0, lo), hi) }), validity: c.validity))
            case .double(let v):
                let lo = min ?? -.infinity, hi = max ?? .infinity
                out = try out.with(name, Column(type: .double, data: .double(v.map { Swift.min(Swift.max($0, lo), hi) }), validity: c.validity))
            default:
                throw FeatureError.wrongType(column: name, type: c.type, expected: "int64 or double")
            }
        }
        return out
    }

    /// Natural log of numeric columns, output `double`. With `clipping` (Friesian's default)
    /// negative values become 0 and the result is `log(x + 1)`; without, `log(x)`.
    public func log(_ columns: [String], clipping: Bool = true) throws -> FeatureTable {
        var out = self
        for name in columns {
            let (v, validity) = try numeric(name)
            let mapped = clipping ? v.map { Foundation.log1p(Swift.max($0, 0)) } : v.map { Foundation.log($0) }
            out = try out.with(name, Column(type: .double, data: .double(mapped), validity: validity))
        }
        return out
    }

    // MARK: Scaling

    /// Fits (min, max) of each column over its non-null values and rescales to `[outMin, outMax]`.
    public func minMaxScale(_ columns: [String], outMin: Double = 0, outMax: Double = 1) throws -> (FeatureTable, MinMaxStats) {
        var ranges: [String: MinMaxStats.Range] = [:]
        for name in columns {
            var (lo, hi) = try range(name)
            if lo > hi { lo = 0; hi = 0 }  // all null
            ranges[name] = .init(min: lo, max: hi)
        }
        let stats = MinMaxStats(ranges: ranges, outMin: outMin, outMax: outMax)
        return (try stats.apply(self), stats)
    }

    /// The smallest and largest non-null value of a numeric column (as Double; `(+inf, -inf)` when
    /// every row is null), rows split across workers.
    ///
    /// NOTE: min and max are exact whatever the split; int64 values are converted one at a time
    /// (no Double copy of the column).
    func range(_ name: String) throws -> (Double, Double) {
        let c = try column(name)
        guard c.type.isNumeric else { throw FeatureError.wrongType(column: name, type: c.type, expected: "int64 or double") }
        let parts = Parallel.ranges(rowCount, parts: Swift.max(1, Swift.min(Parallel.threads, rowCount / FeatureTable.rowParallelMinimum)))
        var found = [(Double, Double)](repeating: (.infinity, -.infinity), count: parts.count)
        found.withUnsafeMutableBufferPointer { f in
            let out = UncheckedSendable(f)
            Parallel.forEach(parts.count) { p in
                var lo = Double.infinity, hi = -Double.infinity
                @inline(__always) func see(_ x: Double) {
                    lo = Swift.min(lo, x)
                    hi = Swift.max(hi, x)
                }
                switch c.data {
                case .int64(let v): v.withUnsafeBufferPointer { v in for i in parts[p] where !c.isNull(i) { see(Double(v[i])) } }
                case .double(let v): v.withUnsafeBufferPointer { v in for i in parts[p] where !c.isNull(i) { see(v[i]) } }
                default: break
                }
                out.value[p] = (lo, hi)
            }
        }
        return found.reduce((Double.infinity, -Double.infinity)) { (Swift.min($0.0, $1.0), Swift.max($0.1, $1.1)) }
    }

    /// Fits mean and sample standard deviation of each column and standardises.
    public func standardScale(_ columns: [String]) throws -> (FeatureTable, StandardStats) {
        var moments: [String: StandardStats.Moments] = [:]
        for name in columns {
            let (v, validity) = try numeric(name)
            var n = 0.0, mean = 0.0, m2 = 0.0
            for i in 0..<v.count where validity?[i] ?? true {  // Welford
                n += 1
                let d = v[i] - mean
                mean += d / n
                m2 += d * (v[i] - mean)
            }
            moments[name] = .init(mean: mean, std: n > 1 ? (m2 / (n - 1)).squareRoot() : 0)
        }
        let stats = StandardStats(moments: moments)
        return (try stats.apply(self), stats)
    }

    // MARK: Bins

    /// Friesian `cut_bins` with a list of boundaries: `bins` (strictly increasing) define
    /// `bins.count + 1` bins and each value is replaced by its bin index, as an int64:
    /// `x < bins[0]` → 0, `bins[i-1] ≤ x < bins[i]` → i, `x ≥ bins.last` → `bins.count`.
    /// Nulls stay null.
    ///
    /// Output names as Friesian: `outColumns`, else `<column>_bin`; `drop` (default true) removes
    /// the input column. An output named like its input replaces it in place.
    public func cutBins(_ columns: [String], bins: [Double], outColumns: [String]? = nil, drop: Bool = true) throws -> FeatureTable {
        guard !bins.isEmpty, zip(bins, bins.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw FeatureError.invalidArgument("cutBins: bins must be non-empty and strictly increasing")
        }
        return try cutBins(columns, edges: Dictionary(uniqueKeysWithValues: columns.map { ($0, bins) }), outColumns: outColumns, drop: drop)
    }

    /// Friesian `cut_bins` with a bin count: `binCount` equal-width bins between each column's
    /// min and max (boundaries `min + i·(max − min)/binCount`, i = 0…binCount), so
    /// `binCount + 2` buckets counting those below min and from max on. Returns the fitted
    /// boundaries per column, to re-apply with `cutBins(_:edges:…)`.
    public func cutBins(_ columns: [String], binCount: Int, outColumns: [String]? = nil, drop: Bool = true) throws -> (FeatureTable, [String: [Double]]) {
        guard binCount >= 1 else { throw FeatureError.invalidArgument("cutBins: the bin count must be >= 1, got \(binCount)") }
        var edges: [String: [Double]] = [:]
        for name in columns {
            let (v, validity) = try numeric(name)
            var lo = Double.infinity, hi = -Double.infinity
            for i in 0..<v.count where validity?[i] ?? true {
                lo = Swift.min(lo, v[i])
                hi = Swift.max(hi, v[i])
            }
            guard lo < hi else {
                throw FeatureError.invalidArgument("cutBins: column '\(name)' has no range to split (min \(lo), max \(hi)); give explicit bins")
            }
            edges[name] = (0...binCount).map { $0 == binCount ? hi : lo + Double($0) * (hi - lo) / Double(binCount) }
        }
        return (try cutBins(columns, edges: edges, outColumns: outColumns, drop: drop), edges)
    }

    /// Boundaries up to which `cutBins` counts instead of searching.
    static let linearBinLimit = 16

    /// `cutBins` with boundaries per column (fitted by `cutBins(_:binCount:…)`).
    public func cutBins(_ columns: [String], edges: [String: [Double]], outColumns: [String]? = nil, drop: Bool = true) throws -> FeatureTable {
        if let o = outColumns, o.count != columns.count {
            throw FeatureError.invalidArgument("cutBins: \(o.count) output columns for \(columns.count) columns")
        }
        var out = self
        for (k, name) in columns.enumerated() {
            guard let bins = edges[name] else { throw FeatureError.invalidArgument("cutBins: no boundaries for column '\(name)'") }
            let c = try column(name)
            guard c.type.isNumeric else { throw FeatureError.wrongType(column: name, type: c.type, expected: "int64 or double") }
            // NOTE: rows split across workers, int64 values converted one at a time (no Double copy
            // of the column); nulls hold 0 and are binned like 0, as before.
            var ids = [Int64](repeating: 0, count: rowCount)
            ids.withUnsafeMutableBufferPointer { buf in
                let b = UncheckedSendable(buf)
                bins.withUnsafeBufferPointer { edges in
                    /// Number of boundaries ≤ x: counted without branches for a few
                    /// boundaries (NOTE: a binary search mispredicts about every other step on
                    /// spread-out values), else a binary search.
                    @inline(__always) func bin(_ x: Double) -> Int64 {
                        if edges.count <= FeatureTable.linearBinLimit {
                            var n: Int64 = 0
                            for e in edges { n &+= Int64(unsafeBitCast(e <= x, to: UInt8.self)) }  // setcc, no jump
                            return n
                        }
                        var lo = 0, hi = edges.count
                        while lo < hi {
                            let mid = (lo + hi) / 2
                            if edges[mid] <= x { lo = mid + 1 } else { hi = mid }
                        }
                        return Int64(lo)
                    }
                    Parallel.forRanges(rowCount, minPerWorker: 1 << 15) { rows in
                        switch c.data {
                        case .int64(let v): for i in rows { b.value[i] = bin(Double(v[i])) }
                        case .double(let v): for i in rows { b.value[i] = bin(v[i]) }
                        default: break
                        }
                    }
                }
            }
            let target = outColumns?[k] ?? name + "_bin"
            out = try out.with(target, Column(type: .int64, data: .int64(ids), validity: c.validity))
            if drop && target != name { out = try out.drop([name]) }
        }
        return out
    }

    // MARK: cast

    /// Converts columns to `type`: between int64 and double (double → int64 truncates toward
    /// zero; non-finite or out-of-range values become null), numbers to strings, strings to
    /// numbers (a value that does not parse becomes null, as Spark's `cast`).
    public func cast(_ columns: [String], to type: ColumnType) throws -> FeatureTable {
        var out = self
        for name in columns {
            let c = try column(name)
            if c.type == type { continue }
            var valid = (0..<c.count).map { !c.isNull($0) }
            let data: ColumnData
            switch (c.data, type) {
            case (.int64(let v), .double): data = .double(v.map { Double($0) })
            case (.double(let v), .int64):
                data = .int64(v.enumerated().map { i, x in
                    if let y = Int64(exactly: x.rounded(.towardZero)) { return y }
                    valid[i] = false
                    return 0
                })
            case (.int64, .string), (.double, .string):
                var s = StringData()
                for i in 0..<c.count {
                    if valid[i] { s.bytes += c[i].description.utf8 }
                    s.offsets.append(s.bytes.count)
                }
                data = .string(s)
            case (.string(let s), .int64), (.string(let s), .double):
                var ints: [Int64] = [], doubles: [Double] = []
                s.bytes.withUnsafeBufferPointer { b in
                    let base = b.baseAddress ?? UnsafePointer(bitPattern: 1)!
                    for i in 0..<s.count {
                        let p = base + s.offsets[i], n = s.offsets[i + 1] - s.offsets[i]
                        if type == .int64 {
                            let x = valid[i] ? NumberParsing.int64(p, n) : nil
                            if x == nil { valid[i] = false }
                            ints.append(x ?? 0)
                        } else {
                            let x = valid[i] ? NumberParsing.double(p, n) : nil
                            if x == nil { valid[i] = false }
                            doubles.append(x ?? 0)
                        }
                    }
                }
                data = type == .int64 ? .int64(ints) : .double(doubles)
            default:
                throw FeatureError.invalidArgument("cast: cannot cast column '\(name)' from \(c.type) to \(type)")
            }
            out = try out.with(name, Column(type: type, data: data, validity: Validity(valid)))
        }
        return out
    }
}

/// `x` (integral) as Int64, saturating at the bounds.
func clampToInt64(_ x: Double) -> Int64 {
    if x >= 9.223372036854775807e18 { return .max }
    if x <= -9.223372036854775808e18 { return .min }
    return Int64(x)
}
