import Foundation
import HerdData
import HerdTensor

extension PredictRequest {
    /// TF Serving's predict body → a `Batch`, for a Criteo-file export (`herd train --train FILE
    /// --out DIR`): the rows are raw Criteo rows, transformed by the export's `FeatureState`
    /// exactly as `herd predict` transforms the lines of a file.
    ///
    /// Row form `{"instances": [{"I1": 5, …, "I13": 0, "C1": "68fd1e64", …, "C26": ""}, …]}` or
    /// columnar `{"inputs": {"I1": [5, …], …, "C26": [""…]}}`:
    ///
    /// - `I1`…`I13`: a number (or a string holding one, as in the file); missing, `null` or `""`
    ///   is a missing value (dense 0 after `log(max(x, 0) + 1)`);
    /// - `C1`…`C26`: the raw hex id of up to 8 digits (a string, as in the file, or a
    ///   non-negative integer = that id's value); missing, `null` or `""` is an empty field;
    /// - `label` is allowed and ignored (so rows copied from a labelled file can be sent as is).
    ///
    /// Returns the `[B, 13]` dense, 26 one-hot sparse features batch and whether the body was
    /// columnar.
    public static func criteoBatch(body: Data, state: FeatureState) throws -> (batch: Batch, columnar: Bool) {
        let (rows, columnar) = try rows(body: body)
        let known = Set(Criteo.columnNames)
        let b = rows.count
        var dense = [Float](repeating: .nan, count: b * Criteo.denseCount)
        var cats = [UInt64](repeating: RawChunk.missing, count: b * Criteo.sparseCount)
        for (r, row) in rows.enumerated() {
            if let unknown = row.keys.sorted().first(where: { !known.contains($0) }) {
                throw RecommenderError.invalidArgument("row \(r): unknown column '\(unknown)' (a Criteo model reads I1…I13 and C1…C26; label is ignored)")
            }
            for j in 0..<Criteo.denseCount {
                let name = "I\(j + 1)"
                dense[r * Criteo.denseCount + j] = try denseValue(row[name], row: r, column: name)
            }
            for c in 0..<Criteo.sparseCount {
                let name = "C\(c + 1)"
                cats[r * Criteo.sparseCount + c] = try categoricalValue(row[name], row: r, column: name)
            }
        }
        let raw = RawChunk(labels: [], dense: dense, categorical: cats, labelled: false)
        return (state.transform(raw), columnar)
    }

    /// The request's rows, from `instances` or `inputs` (checked for count and shape).
    static func rows(body: Data) throws -> (rows: [[String: Any]], columnar: Bool) {
        guard let object = try? JSONSerialization.jsonObject(with: body), let root = object as? [String: Any] else {
            throw RecommenderError.invalidArgument("the body must be a JSON object with \"instances\" or \"inputs\"")
        }
        var rows: [[String: Any]]
        let columnar: Bool
        if let instances = root["instances"] {
            guard let list = instances as? [[String: Any]] else { throw RecommenderError.invalidArgument("\"instances\" must be a list of objects {column: value}") }
            rows = list
            columnar = false
        } else if let inputs = root["inputs"] {
            guard let columns = inputs as? [String: [Any]] else { throw RecommenderError.invalidArgument("\"inputs\" must be an object {column: [values]}") }
            let n = columns.values.first?.count ?? 0
            guard columns.values.allSatisfy({ $0.count == n }) else { throw RecommenderError.invalidArgument("every \"inputs\" column must have the same length") }
            rows = (0..<n).map { r in columns.mapValues { $0[r] } }
            columnar = true
        } else {
            throw RecommenderError.invalidArgument("the body needs \"instances\" (rows) or \"inputs\" (columns)")
        }
        guard !rows.isEmpty else { throw RecommenderError.invalidArgument("no rows to score") }
        guard rows.count <= maxRows else { throw RecommenderError.invalidArgument("\(rows.count) rows in one request; at most \(maxRows)") }
        return (rows, columnar)
    }

    /// A raw dense value: `nan` for missing (the parser's empty field).
    static func denseValue(_ v: Any?, row: Int, column: String) throws -> Float {
        switch v {
        case nil, is NSNull: return .nan
        case let s as String:
            if s.isEmpty { return .nan }
            guard let x = Double(s), x.isFinite else { throw RecommenderError.invalidArgument("row \(row): \(column) must be a number, got \"\(s)\"") }
            return Float(x)
        case let n as NSNumber:
            guard n.doubleValue.isFinite else {
                throw RecommenderError.invalidArgument("row \(row): \(column) must be a number, got \(n)")
            }
            return Float(n.doubleValue)
        case let other?:
            throw RecommenderError.invalidArgument("row \(row): \(column) must be a number, got \(other)")
        }
    }

    /// A raw categorical id: `RawChunk.missing` for an empty field, else the hex id's value.
    static func categoricalValue(_ v: Any?, row: Int, column: String) throws -> UInt64 {
        switch v {
        case nil, is NSNull: return RawChunk.missing
        case let s as String:
            if s.isEmpty { return RawChunk.missing }
            guard s.utf8.count <= 8, s.utf8.allSatisfy({ $0 < 128 && Character(Unicode.Scalar($0)).isHexDigit }), let x = UInt64(s, radix: 16) else {
                throw RecommenderError.invalidArgument("row \(row): \(column) must be a hex id of up to 8 digits (as in the Criteo file), got \"\(s)\"")
            }
            return x
        case let n as NSNumber:
            guard let x = UInt64(exactly: n.doubleValue), x <= 0xFFFF_FFFF else {
                throw RecommenderError.invalidArgument("row \(row): \(column) must be a hex id string (or its value in 0…4294967295), got \(n)")
            }
            return x
        case let other?:
            throw RecommenderError.invalidArgument("row \(row): \(column) must be a hex id string, got \(other)")
        }
    }
}
