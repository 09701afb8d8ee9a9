import Foundation
import HerdFeatures
import HerdTraining

/// One item to add to a live recommender: its id (the item key column's value, as in the item
/// table and the index), its two-tower embedding, and optionally its feature row.
public struct NewItem: Sendable, Equatable {
    public var id: Int64
    /// `[D]`, the index's dimension.
    public var embedding: [Float]
    /// Column → value for the item rows' columns; nil = leave the store as it is (an item
    /// without a row ranks with nulls = unknown ids / zeros).
    public var features: [String: Value]?

    public init(id: Int64, embedding: [Float], features: [String: Value]? = nil) {
        self.id = id
        self.embedding = embedding
        self.features = features
    }
}

/// Adding items to a running recommender's index and feature store: what `herd nearline` does
/// for a whole table, for a few items, without a restart (`POST /admin/items`).
public enum ItemsUpdate {
    /// The largest number of items one call may add.
    public static let maxItems = 10_000

    /// Parses `{"items": [{"id": 123, "embedding": [..D floats..], "features": {"col": value, …}}, …]}`
    /// against the index dimension and the item rows' schema (a value of the column's type: an
    /// integer, a number, a string, or a list of them; `null` = missing).
    public static func parse(_ body: Data, dimension: Int, schema: FeatureSchema) throws -> [NewItem] {
        guard let object = try? JSONSerialization.jsonObject(with: body), let root = object as? [String: Any],
              let list = root["items"] as? [[String: Any]] else {
            throw RecommenderError.invalidArgument(#"the body must be {"items": [{"id": ID, "embedding": [floats], "features": {column: value}}, …]}"#)
        }
        guard !list.isEmpty else { throw RecommenderError.invalidArgument("no items to add") }
        guard list.count <= maxItems else { throw RecommenderError.invalidArgument("\(list.count) items in one call; at most \(maxItems)") }
        let fields = Dictionary(schema.fields.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
        var seen = Set<Int64>()
        return try list.enumerated().map { i, o in
            guard let n = o["id"] as? NSNumber, let id = Int64(exactly: n.doubleValue), id > 0 else {
                throw RecommenderError.invalidArgument("items[\(i)]: \"id\" must be a positive integer (the \(schema.keyColumn) value), got \(o["id"].map { "\($0)" } ?? "nothing")")
            }
            guard seen.insert(id).inserted else { throw RecommenderError.invalidArgument("items[\(i)]: id \(id) is listed twice") }
            guard let e = o["embedding"] as? [Any], e.count == dimension else {
                throw RecommenderError.invalidArgument("items[\(i)]: \"embedding\" must be a list of \(dimension) numbers (the index dimension)")
            }
            let embedding = try e.map { v -> Float in
                guard let x = (v as? NSNumber)?.doubleValue, x.isFinite else { throw RecommenderError.invalidArgument("items[\(i)]: embedding values must be finite numbers, got \(v)") }
                return Float(x)
            }
            var features: [String: Value]?
            if let f = o["features"], !(f is NSNull) {
                guard let f = f as? [String: Any] else { throw RecommenderError.invalidArgument("items[\(i)]: \"features\" must be an object {column: value}") }
                var row: [String: Value] = [:]
                for (name, v) in f {
                    guard let type = fields[name] else {
                        throw RecommenderError.invalidArgument("items[\(i)]: unknown column '\(name)' (the item rows have: \(schema.fields.map(\.name).joined(separator: ", ")))")
                    }
                    guard let value = Self.value(v, type) else {
                        throw RecommenderError.invalidArgument("items[\(i)]: column '\(name)' is \(type), got \(v)")
                    }
                    row[name] = value
                }
                if let key = row[schema.keyColumn], key != .int(id) {
                    throw RecommenderError.invalidArgument("items[\(i)]: features.\(schema.keyColumn) = \(key) differs from the id \(id)")
                }
                features = row
            }
            return NewItem(id: id, embedding: embedding, features: features)
        }
    }

    /// A JSON value as a `Value` of `type`, or nil when it does not fit.
    static func value(_ v: Any, _ type: ColumnType) -> Value? {
        if v is NSNull { return .null }
        func int(_ x: Any) -> Value? { (x as? NSNumber).flatMap { Int64(exactly: $0.doubleValue) }.map { .int($0) } }
        func double(_ x: Any) -> Value? { (x as? NSNumber).map(\.doubleValue).flatMap { $0.isFinite ? .double($0) : nil } }
        func string(_ x: Any) -> Value? { (x as? String).map { .string($0) } }
        func list(_ element: (Any) -> Value?) -> Value? {
            guard let l = v as? [Any] else { return nil }
            var out: [Value] = []
            for x in l {
                guard let e = element(x) else { return nil }
                out.append(e)
            }
            return .list(out)
        }
        switch type {
        case .int64: return int(v)
        case .double: return double(v)
        case .string: return string(v)
        case .int64List: return list(int)
        case .doubleList: return list(double)
        case .stringList: return list(string)
        }
    }

    /// Writes the items' feature rows to `store` (those that carry one), then their embeddings to
    /// `index` (so an item is never recalled before its row is there), then saves the index to
    /// `indexFile` if given (as `herd nearline` does, so a restart or reload keeps them).
    public static func add(_ items: [NewItem], index: any ANNIndex, store: any FeatureStore, schema: FeatureSchema, indexFile: URL?) throws {
        let rows = items.filter { $0.features != nil }
        if !rows.isEmpty {
            var columns: [(String, Column)] = []
            for field in schema.fields {
                let values: [Value] = rows.map { item in
                    field.name == schema.keyColumn ? .int(item.id) : item.features?[field.name] ?? .null
                }
                columns.append((field.name, try FeatureRows.column(field.type, values)))
            }
            try store.put(try FeatureTable(columns), kind: .item, keyColumn: schema.keyColumn)
        }
        try index.add(ids: items.map(\.id), vectors: items.flatMap(\.embedding))
        if let indexFile { try index.save(to: indexFile) }
    }
}
