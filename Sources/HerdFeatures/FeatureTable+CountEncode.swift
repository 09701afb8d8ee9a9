import Foundation
import HerdTensor

/// Fitted value counts of `countEncode`, re-appliable: each value is replaced by how often it
/// occurred in the fitting table (unknown and null → 0).
public struct CountEncoding: Sendable, Equatable, Codable {
    public struct Counts: Sendable, Equatable, Codable {
        public var column: String
        public var outColumn: String
        /// Distinct values (text form) and their counts, most frequent first.
        public var values: [String]
        public var counts: [Int]

        enum CodingKeys: String, CodingKey {
            case column, values, counts
            case outColumn = "out_column"
        }

        public init(column: String, outColumn: String, values: [String], counts: [Int]) {
            self.column = column
            self.outColumn = outColumn
            self.values = values
            self.counts = counts
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            column = try c.decode(String.self, forKey: .column)
            outColumn = try c.decode(String.self, forKey: .outColumn)
            values = try c.decodeStrings(forKey: .values, userInfo: decoder.userInfo)
            counts = try c.decode([Int].self, forKey: .counts)
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(column, forKey: .column)
            try c.encode(outColumn, forKey: .outColumn)
            try c.encodeStrings(values, forKey: .values, userInfo: encoder.userInfo)
            try c.encode(counts, forKey: .counts)
        }
    }

    public var columns: [Counts]

    public func apply(_ table: FeatureTable) throws -> FeatureTable {
        var out = table
        for c in columns {
            guard c.values.count == c.counts.count else { throw FeatureError.invalidArgument("count encoding of '\(c.column)': values and counts differ in length") }
            let index = try StringIndex(columns: [c.column], values: c.values, freqLimit: 1)
            let col = try table.requireIndexable(c.column)
            guard !col.type.isList else { throw FeatureError.wrongType(column: c.column, type: col.type, expected: "a scalar column") }
            var result = [Int64](repeating: 0, count: table.rowCount)
            let counts = c.counts
            forEachText(col, rows: 0..<table.rowCount) { r, bytes in
                let id = index.id(bytes)
                result[r] = id == 0 ? 0 : Int64(counts[Int(id) - 1])
            }
            out = try out.with(c.outColumn, Column(type: .int64, data: .int64(result)))
        }
        return out
    }
}

extension FeatureTable {
    /// Count encoding: a new int64 column per column (default name `<column>_count`) holding how
    /// often the row's value occurs in the column (null → 0). Returns the counts for
    /// re-application to other tables.
    public func countEncode(_ columns: [String], outColumns: [String]? = nil) throws -> (FeatureTable, CountEncoding) {
        if let o = outColumns, o.count != columns.count {
            throw FeatureError.invalidArgument("countEncode: \(o.count) output columns for \(columns.count) columns")
        }
        var encodings: [CountEncoding.Counts] = []
        for (k, name) in columns.enumerated() {
            let c = try requireIndexable(name)
            guard !c.type.isList else { throw FeatureError.wrongType(column: name, type: c.type, expected: "a scalar column") }
            let counted = countValues([c])
            let (table, counts) = (counted.table, counted.counts)
            var order = Array(0..<table.count)
            order.sort { a, b in counts[a] != counts[b] ? counts[a] > counts[b] : table.key(a).lexicographicallyPrecedes(table.key(b)) }
            encodings.append(.init(column: name, outColumn: outColumns?[k] ?? name + "_count",
                                   values: order.map { String(decoding: table.key($0), as: UTF8.self) }, counts: order.map { counts[$0] }))
        }
        let encoding = CountEncoding(columns: encodings)
        return (try encoding.apply(self), encoding)
    }
}
