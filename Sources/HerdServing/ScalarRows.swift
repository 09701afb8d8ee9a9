import HerdFeatures

/// Feature rows whose fields are all int64 or double, decoded into flat arrays: `count` rows ×
/// `fields` slots, row-major. A slot holds the int64 value, or the double's IEEE bits; `present`
/// marks non-null slots; `found` marks rows the store had (a miss has no present slot).
///
/// NOTE: the per-request answer of the feature store. Decoding each row into `[Value]` allocated
/// an array per row (and freed it after assembly); here a request's rows share three arrays, and
/// the ranking batch reads its columns straight from them (`RankingInput.batch`).
struct ScalarRows: Sendable, Equatable {
    let count: Int
    let fields: Int
    var found: [Bool]
    var bits: [UInt64]
    var present: [Bool]

    /// `count` rows of `fields` slots, every row a miss.
    init(count: Int, fields: Int) {
        self.count = count
        self.fields = fields
        found = [Bool](repeating: false, count: count)
        bits = [UInt64](repeating: 0, count: count * fields)
        present = [Bool](repeating: false, count: count * fields)
    }

    /// Runs `body` on the arrays' storage (`found[count]`, `bits[count * fields]`, `present[count * fields]`).
    mutating func withBuffers<T>(_ body: (UnsafeMutablePointer<Bool>, UnsafeMutablePointer<UInt64>, UnsafeMutablePointer<Bool>) throws -> T) rethrows -> T {
        precondition(count > 0 && fields > 0, "no rows or no fields to decode into")
        return try found.withUnsafeMutableBufferPointer { f in
            try bits.withUnsafeMutableBufferPointer { b in
                try present.withUnsafeMutableBufferPointer { p in try body(f.baseAddress!, b.baseAddress!, p.baseAddress!) }
            }
        }
    }

    /// Whether rows of `schema` can be held so (every field int64 or double).
    static func fits(_ schema: FeatureSchema) -> Bool {
        schema.fields.allSatisfy { $0.type == .int64 || $0.type == .double }
    }

    /// The value rows (`FeatureRows.rows`): `.int` / `.double` by the schema's field types, `.null`
    /// for absent slots, nil for misses.
    func valueRows(_ schema: FeatureSchema) -> [[Value]?] {
        let isDouble = schema.fields.map { $0.type == .double }
        return (0..<count).map { i -> [Value]? in
            guard found[i] else { return nil }
            return (0..<fields).map { f -> Value in
                let k = i * fields + f
                guard present[k] else { return .null }
                return isDouble[f] ? .double(Double(bitPattern: bits[k])) : .int(Int64(bitPattern: bits[k]))
            }
        }
    }
}
