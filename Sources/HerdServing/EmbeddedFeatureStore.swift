import Foundation
import HerdFeatures
import HerdTraining

/// The in-process feature store (`embedded`, `embedded:PATH`): encoded rows in hash maps, one per
/// kind, behind a reader/writer lock.
///
/// With a path, the store loads the file at start (verifying its checksum) and rewrites it
/// atomically after every put, so a crash leaves the previous complete version.
///
/// File layout (checksummed like the ANN index files): magic `HERDFS01`, a JSON header with each
/// kind's schema and row count, then per kind (user, item order) `count` × (id Int64, length
/// UInt32, encoded row), then a SHA-256 of everything before.
public final class EmbeddedFeatureStore: FeatureStore, @unchecked Sendable {
    public let path: URL?
    private let lock = ReadWriteLock()
    private var kinds: [EntityKind: Rows] = [:]
    static let magic = Array("HERDFS01".utf8)

    struct Rows {
        var schema: FeatureSchema
        var fingerprint: UInt32
        var rows: [Int64: [UInt8]] = [:]
    }

    struct Header: ChecksummedHeader {
        static var currentVersion: Int { 1 }
        var formatVersion: Int
        var payloadBytes: Int
        var kinds: [Kind]
        struct Kind: Codable { var kind: EntityKind; var schema: FeatureSchema; var count: Int }
        enum CodingKeys: String, CodingKey { case formatVersion = "format_version", payloadBytes = "payload_bytes", kinds }
    }

    public init(path: URL?) throws {
        self.path = path
        if let path, FileManager.default.fileExists(atPath: path.path) { try load(path) }
    }

    public var spec: String { path.map { "embedded:\($0.path)" } ?? "embedded" }
    public var health: StoreHealth { .healthy }
    /// In memory: a get waits at most for a put's write lock.
    public var answersWithinDeadline: Bool { true }

    /// The number of rows of `kind`.
    public func count(kind: EntityKind) -> Int { lock.read { kinds[kind]?.rows.count ?? 0 } }

    public func schema(kind: EntityKind) throws -> FeatureSchema? { lock.read { kinds[kind]?.schema } }

    public func put(_ table: FeatureTable, kind: EntityKind, keyColumn: String, ids rowIDs: [Int64]?, progress: ((Int, Int) -> Void)?) throws {
        let schema = try FeatureSchema(table: table, keyColumn: keyColumn)
        let fingerprint = schema.fingerprint
        let ids = try storeKeys(table, keyColumn: keyColumn, ids: rowIDs)
        var encoded: [(Int64, [UInt8])] = []
        encoded.reserveCapacity(table.rowCount)
        var buffer: [UInt8] = []
        for r in 0..<table.rowCount {
            FeatureRowCodec.encode(table.columns, row: r, fingerprint: fingerprint, into: &buffer)
            encoded.append((ids[r], buffer))
            if r % 10_000 == 9_999 { progress?(r + 1, table.rowCount) }
        }
        try lock.write {
            // NOTE: a new schema makes the old rows unreadable, so they are dropped with it.
            if kinds[kind]?.fingerprint != fingerprint { kinds[kind] = Rows(schema: schema, fingerprint: fingerprint) }
            for (id, row) in encoded { kinds[kind]!.rows[id] = row }
            if let path { try save(path) }
        }
        progress?(table.rowCount, table.rowCount)
    }

    public func get(kind: EntityKind, ids: [Int64]) throws -> FeatureRows {
        try lock.read {
            guard let k = kinds[kind] else {
                throw ServingError("the feature store \(spec) holds no \(kind) features: run `herd nearline` first")
            }
            if ScalarRows.fits(k.schema), !ids.isEmpty {
                // NOTE: all-scalar rows decode into flat arrays (`ScalarRows`): no array per row.
                let fields = k.schema.fields.count, isDouble = k.schema.fields.map { $0.type == .double }
                var scalars = ScalarRows(count: ids.count, fields: fields)
                try isDouble.withUnsafeBufferPointer { types in
                    try scalars.withBuffers { found, bits, present in
                        for (i, id) in ids.enumerated() {
                            guard let bytes = k.rows[id] else { continue }
                            try bytes.withUnsafeBytes {
                                try FeatureRowCodec.decodeScalars($0, isDouble: types, fingerprint: k.fingerprint, bits: bits + i * fields,
                                                                  present: present + i * fields, what: "\(spec) \(kind) \(id)")
                            }
                            found[i] = true
                        }
                    }
                }
                return FeatureRows(schema: k.schema, ids: ids, scalars: scalars)
            }
            let rows: [[Value]?] = try ids.map { id in
                guard let bytes = k.rows[id] else { return nil }
                return try bytes.withUnsafeBytes {
                    try FeatureRowCodec.decode($0, schema: k.schema, fingerprint: k.fingerprint, what: "\(spec) \(kind) \(id)")
                }
            }
            return FeatureRows(schema: k.schema, ids: ids, rows: rows)
        }
    }

    // MARK: Persistence

    private func save(_ url: URL) throws {
        let order = EntityKind.allCases.filter { kinds[$0] != nil }
        var bytes = 0
        for k in order { for (_, row) in kinds[k]!.rows { bytes += 12 + row.count } }
        let header = Header(formatVersion: 1, payloadBytes: bytes,
                            kinds: order.map { Header.Kind(kind: $0, schema: kinds[$0]!.schema, count: kinds[$0]!.rows.count) })
        try ANNIndexFile.write(to: url, magic: Self.magic, header: header) { w in
            for k in order {
                for (id, row) in kinds[k]!.rows {
                    try w.scalar(id)
                    try w.scalar(UInt32(row.count))
                    try w.bytes(row)
                }
            }
        }
    }

    private func load(_ url: URL) throws {
        let (header, payload): (Header, ANNIndexFile.PayloadReader) = try ANNIndexFile.read(
            url, magic: Self.magic, what: "Herd feature store file", rebuild: "re-run `herd nearline` to rewrite it")
        for k in header.kinds {
            var rows = Rows(schema: k.schema, fingerprint: k.schema.fingerprint)
            rows.rows.reserveCapacity(k.count)
            for _ in 0..<k.count {
                let id = try payload.scalar(Int64.self)
                let n = Int(try payload.scalar(UInt32.self))
                rows.rows[id] = Array(try payload.rawBytes(n))
            }
            kinds[k.kind] = rows
        }
        guard payload.isAtEnd else {
            throw ServingError("\(url.path): bytes left over after the rows (corrupt file); re-run `herd nearline` to rewrite it")
        }
    }
}
