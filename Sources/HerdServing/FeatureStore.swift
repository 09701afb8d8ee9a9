import Foundation
import HerdFeatures

/// Which table a row belongs to: Redis keys are `{prefix}user:{id}` and `{prefix}item:{id}`.
public enum EntityKind: String, Sendable, CaseIterable, Codable {
    case user, item
}

/// Whether a store can answer now.
public enum StoreHealth: Sendable, Equatable {
    case healthy
    /// The last operation failed (the reason); the store fails fast and reconnects in the background.
    case unhealthy(String)

    public var isHealthy: Bool { self == .healthy }
}

/// The columns of one kind's rows, stored once per kind (`{prefix}schema:user`): every row is
/// encoded against it, and `fingerprint` (in each row) catches rows written with another schema.
public struct FeatureSchema: Codable, Sendable, Equatable {
    public struct Field: Codable, Sendable, Equatable {
        public var name: String
        public var type: ColumnType

        public init(name: String, type: ColumnType) {
            self.name = name
            self.type = type
        }
    }
    /// The id column (`enaging_user_id`, `user_id`, `tweet_id`, …); also one of `fields`.
    public var keyColumn: String
    public var fields: [Field]

    public init(keyColumn: String, fields: [Field]) {
        self.keyColumn = keyColumn
        self.fields = fields
    }

    /// The schema of `table` keyed by `keyColumn` (which must be an int64 column).
    public init(table: FeatureTable, keyColumn: String) throws {
        guard table.contains(keyColumn) else {
            throw ServingError("the table has no key column '\(keyColumn)' (columns: \(table.names.joined(separator: ", "))); pass the right --user-key/--item-key")
        }
        guard table[keyColumn].type == .int64 else {
            throw ServingError("the key column '\(keyColumn)' is \(table[keyColumn].type), the store needs int64 ids")
        }
        self.init(keyColumn: keyColumn, fields: table.schema.map { Field(name: $0.name, type: $0.type) })
    }

    /// FNV-1a of the canonical JSON: equal schemas, equal fingerprints.
    public var fingerprint: UInt32 {
        var h: UInt32 = 2_166_136_261
        for b in (try? canonicalJSON()) ?? Data() { h = (h ^ UInt32(b)) &* 16_777_619 }
        return h
    }

    func canonicalJSON() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return try e.encode(self)
    }
}

/// The answer to a batch get: one entry per requested id, in request order; `nil` = not in the store.
///
/// Held as value rows, or — as the stores decode rows whose fields are all int64 or double — as
/// `ScalarRows` (flat arrays, one allocation per answer instead of one per row); `rows` gives the
/// value rows either way, and equality compares them.
public struct FeatureRows: Sendable, Equatable {
    public let schema: FeatureSchema
    public let ids: [Int64]
    private let valueRows: [[Value]?]?
    /// The rows as flat scalars, when they were decoded so (in-process ranking reads them directly).
    let scalars: ScalarRows?

    /// `rows[i]` holds one value per `schema.fields` entry, or `nil` for a miss.
    public var rows: [[Value]?] { valueRows ?? scalars!.valueRows(schema) }

    /// `rows[i]` for `ids[i]` (nil = a miss); every row has one value per schema field.
    public init(schema: FeatureSchema, ids: [Int64], rows: [[Value]?]) {
        precondition(ids.count == rows.count, "one row (or miss) per id")
        self.schema = schema
        self.ids = ids
        valueRows = rows
        scalars = nil
    }

    /// Rows decoded as flat scalars (`scalars.count == ids.count`, `scalars.fields == schema.fields.count`).
    init(schema: FeatureSchema, ids: [Int64], scalars: ScalarRows) {
        precondition(ids.count == scalars.count && schema.fields.count == scalars.fields, "one row (or miss) per id, one slot per field")
        self.schema = schema
        self.ids = ids
        valueRows = nil
        self.scalars = scalars
    }

    /// Whether row `i` was found (without building the value rows).
    public func isFound(_ i: Int) -> Bool { scalars?.found[i] ?? (valueRows![i] != nil) }

    public static func == (a: FeatureRows, b: FeatureRows) -> Bool {
        a.schema == b.schema && a.ids == b.ids && a.rows == b.rows
    }

    public var found: [Bool] { scalars?.found ?? valueRows!.map { $0 != nil } }
    public var missCount: Int { found.reduce(0) { $0 + ($1 ? 0 : 1) } }

    /// The rows as a table with the schema's columns; a miss is a row of nulls except for its key.
    public func table() throws -> FeatureTable {
        let rows = self.rows
        var columns: [(String, Column)] = []
        for (c, field) in schema.fields.enumerated() {
            let values: [Value] = rows.enumerated().map { i, row in
                if let row { return row[c] }
                return field.name == schema.keyColumn ? .int(ids[i]) : .null
            }
            columns.append((field.name, try FeatureRows.column(field.type, values)))
        }
        return try FeatureTable(columns)
    }

    static func column(_ type: ColumnType, _ values: [Value]) throws -> Column {
        func scalar(_ v: Value) -> Value? { v == .null ? nil : v }
        switch type {
        case .int64: return Column(int64s: values.map { if case .int(let x) = $0 { return x } else { return nil } })
        case .double: return Column(doubles: values.map { if case .double(let x) = $0 { return x } else { return nil } })
        case .string: return Column(strings: values.map { if case .string(let x) = $0 { return x } else { return nil } })
        case .int64List:
            return Column(int64Lists: values.map {
                if case .list(let l) = $0 { return l.map { if case .int(let x) = $0 { return x } else { return 0 } } } else { return nil }
            })
        case .stringList:
            return Column(stringLists: values.map {
                if case .list(let l) = $0 { return l.map { if case .string(let x) = $0 { return x } else { return "" } } } else { return nil }
            })
        case .doubleList:
            var offsets = [0], flat: [Double] = []
            for v in values {
                if case .list(let l) = v { for e in l { if case .double(let x) = e { flat.append(x) } else { flat.append(0) } } }
                offsets.append(flat.count)
            }
            return Column(type: .doubleList, data: .list(offsets: offsets, values: .double(flat)),
                          validity: Validity(values.map { $0 != .null }))
        }
    }
}

/// Per-entity feature rows for online serving, behind one protocol (`makeFeatureStore(spec:)`):
/// the in-process `EmbeddedFeatureStore` or `RedisFeatureStore`.
///
/// Thread safety: every method may be called from any thread concurrently.
public protocol FeatureStore: AnyObject, Sendable {
    /// The spec it was made from (`embedded:/w/serving/features.store`, `redis://127.0.0.1:6379/herd:`).
    var spec: String { get }
    /// Current health; `.unhealthy` stores fail fast until they recover by themselves.
    var health: StoreHealth { get }

    /// Writes (inserts or replaces) every row of `table` under `kind`, keyed by the int64 column
    /// `keyColumn` — or by `ids` (one per row) when given, the key column then being a feature like
    /// any other (e.g. 0 for entities out of the training vocabulary, stored under their row key) —
    /// and stores the schema. `progress(done, total)` is called as rows are written.
    func put(_ table: FeatureTable, kind: EntityKind, keyColumn: String, ids: [Int64]?, progress: ((Int, Int) -> Void)?) throws

    /// The rows of `ids` in request order, misses marked. Throws when the kind has no schema yet,
    /// or the store is unavailable (within its deadline).
    func get(kind: EntityKind, ids: [Int64]) throws -> FeatureRows

    /// The schema stored for `kind`, or nil if nothing was put.
    func schema(kind: EntityKind) throws -> FeatureSchema?

    /// Several batch gets at once (a request's user row and its candidates' rows), one
    /// `FeatureRows` per query in order; a remote store answers them in one round trip. With a
    /// `deadline`, a store whose `answersWithinDeadline` is true gives up (throws) when it passes.
    func get(_ queries: [FeatureQuery], deadline: ContinuousClock.Instant?) throws -> [FeatureRows]

    /// Whether `get(_:deadline:)` returns or throws by its deadline by itself (in memory, or with
    /// bounded socket waits); otherwise callers wait for it on another thread.
    var answersWithinDeadline: Bool { get }
}

/// One batch get of `get(_:deadline:)`: the rows of `ids` of `kind`.
public struct FeatureQuery: Sendable, Equatable {
    public var kind: EntityKind
    public var ids: [Int64]

    public init(_ kind: EntityKind, _ ids: [Int64]) {
        self.kind = kind
        self.ids = ids
    }
}

extension FeatureStore {
    /// One `get(kind:ids:)` per query; the deadline is not enforced.
    public func get(_ queries: [FeatureQuery], deadline: ContinuousClock.Instant?) throws -> [FeatureRows] {
        try queries.map { try get(kind: $0.kind, ids: $0.ids) }
    }

    public var answersWithinDeadline: Bool { false }

    public func put(_ table: FeatureTable, kind: EntityKind, keyColumn: String) throws {
        try put(table, kind: kind, keyColumn: keyColumn, ids: nil, progress: nil)
    }

    public func put(_ table: FeatureTable, kind: EntityKind, keyColumn: String, progress: ((Int, Int) -> Void)?) throws {
        try put(table, kind: kind, keyColumn: keyColumn, ids: nil, progress: progress)
    }

    /// The store keys of `table`'s rows: `ids` when given (one per row), else the key column's values.
    func storeKeys(_ table: FeatureTable, keyColumn: String, ids: [Int64]?) throws -> [Int64] {
        if let ids {
            guard ids.count == table.rowCount else {
                throw ServingError("\(ids.count) store keys for \(table.rowCount) rows; give one per row")
            }
            return ids
        }
        let keys = table[keyColumn]
        guard keys.nullCount == 0, let values = keys.int64Values else {
            throw ServingError("the key column '\(keyColumn)' has \(keys.nullCount) null ids; every row needs an id")
        }
        return values
    }
}

/// Makes a store from its spec:
///
/// | spec | store |
/// |---|---|
/// | `embedded` | in-process, in memory only |
/// | `embedded:PATH` | in-process, loaded from PATH at start (if present) and saved to it atomically after each put |
/// | `redis://host:port[/prefix][?pool=4&timeout_ms=100&connect_timeout_ms=200]` | Redis through hiredis |
/// | `unix:///path/redis.sock[?prefix=P&pool=4…]` (or `redis+unix://`) | Redis over a unix socket |
/// | either with `item_cache=N[&item_cache_ttl_ms=T]` | Redis behind a near cache of N item rows (`CachedFeatureStore`) |
public func makeFeatureStore(spec: String) throws -> any FeatureStore {
    if spec == "embedded" { return try EmbeddedFeatureStore(path: nil) }
    if spec.hasPrefix("embedded:") {
        let path = String(spec.dropFirst("embedded:".count))
        guard !path.isEmpty else { throw ServingError("feature store '\(spec)': give a file after 'embedded:'") }
        return try EmbeddedFeatureStore(path: URL(fileURLWithPath: path))
    }
    if RedisConfig.isRedisURL(spec) {
        let config = try RedisConfig(url: spec)
        let redis = try RedisFeatureStore(config: config)
        guard config.itemCache > 0 else { return redis }
        return CachedFeatureStore(redis, kind: .item, capacity: config.itemCache, ttl: .milliseconds(config.itemCacheTTLMilliseconds))
    }
    throw ServingError("unknown feature store '\(spec)': use embedded, embedded:PATH, redis://host:port[/prefix] or unix:///path/redis.sock")
}
