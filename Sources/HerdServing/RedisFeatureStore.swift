import Foundation
import HerdFeatures

/// The Redis feature store (`redis://host:port[/prefix]`), on hiredis.
///
/// Keys follow BigDL Friesian's feature service: `{prefix}user:{id}` and `{prefix}item:{id}` hold one
/// encoded row each (`FeatureRowCodec`), `{prefix}schema:user` / `{prefix}schema:item` the schema as
/// JSON. A batch get is one pipelined round trip of `MGET`s of `mgetChunk` keys; a put pipelines
/// `SET`s in chunks of `setChunk`.
///
/// Failure handling: every command is bounded by the connect/command timeouts. A connection error
/// marks the store unhealthy and starts one background thread that reconnects (PING) with
/// back-off; until it succeeds, calls fail at once with the reason (the server answers from its
/// fallback instead of waiting), after it they go through again. `health` itself PINGs when no
/// command went through for `probeInterval`, so a Redis that went away while no request came is
/// noticed by a readiness probe too.
public final class RedisFeatureStore: FeatureStore, @unchecked Sendable {
    public let config: RedisConfig
    static let mgetChunk = 256
    static let setChunk = 1000

    private let state = NSCondition()
    private var idle: [RedisConnection] = []
    private var open = 0
    private var failure: String?
    private var reconnecting = false
    private var schemas: [EntityKind: FeatureSchema] = [:]
    /// When a command last went through.
    private var lastSuccess = ContinuousClock.now
    /// `health` checks with a PING when nothing went through for this long.
    static let probeInterval: Duration = .seconds(1)

    public init(config: RedisConfig) throws {
        self.config = config
        do {
            let c = try RedisConnection(config)
            state.lock()
            idle.append(c)
            open = 1
            state.unlock()
        } catch {
            markUnhealthy("\(error)")
        }
    }

    deinit {
        state.lock()
        failure = "closed"
        state.unlock()
    }

    public var spec: String { "redis://\(config.address)/\(config.prefix)" }

    /// Healthy unless a call failed (and reconnecting has not succeeded yet). When no command went
    /// through for `probeInterval`, a PING (bounded by the command timeout) checks first; it may
    /// block that long, so callers on an event loop should offload it.
    public var health: StoreHealth {
        state.lock()
        let stale = failure == nil && ContinuousClock.now - lastSuccess > Self.probeInterval
        state.unlock()
        if stale { _ = try? withConnection { try $0.pipeline([[Array("PING".utf8)]]) } }
        state.lock()
        defer { state.unlock() }
        return failure.map { .unhealthy($0) } ?? .healthy
    }

    func key(_ kind: EntityKind, _ id: Int64) -> [UInt8] { Array("\(config.prefix)\(kind.rawValue):\(id)".utf8) }
    func schemaKey(_ kind: EntityKind) -> [UInt8] { Array("\(config.prefix)schema:\(kind.rawValue)".utf8) }

    // MARK: Connections

    /// Runs `body` on a pooled connection; fails fast while unhealthy.
    private func withConnection<T>(_ body: (RedisConnection) throws -> T) throws -> T {
        let deadline = Date().addingTimeInterval(Double(config.timeoutMilliseconds) / 1000)
        state.lock()
        var connection: RedisConnection?
        while connection == nil {
            if let failure {
                state.unlock()
                throw ServingError("Redis at \(config.address) is unavailable (\(failure)); reconnecting in the background")
            }
            if let c = idle.popLast() {
                connection = c
            } else if open < config.poolSize {
                open += 1
                state.unlock()
                do {
                    connection = try RedisConnection(config)
                } catch {
                    state.lock()
                    open -= 1
                    state.unlock()
                    markUnhealthy("\(error)")
                    throw ServingError("Redis at \(config.address) is unavailable (\(error)); reconnecting in the background")
                }
                state.lock()
            } else if !state.wait(until: deadline) {
                state.unlock()
                throw ServingError("Redis at \(config.address): all \(config.poolSize) connections stayed busy for \(config.timeoutMilliseconds) ms")
            }
        }
        state.unlock()
        do {
            let result = try body(connection!)
            state.lock()
            lastSuccess = ContinuousClock.now
            idle.append(connection!)
            state.signal()
            state.unlock()
            return result
        } catch let error as RedisConnectionError {
            state.lock()
            open -= 1
            state.unlock()
            markUnhealthy(error.description)
            throw ServingError("Redis at \(config.address) failed (\(error.description)); reconnecting in the background")
        } catch {
            state.lock()
            idle.append(connection!)
            state.signal()
            state.unlock()
            throw error
        }
    }

    /// Drops the idle connections (they share the broken server) and starts the reconnect thread.
    private func markUnhealthy(_ reason: String) {
        state.lock()
        failure = reason
        open -= idle.count
        idle.removeAll()
        state.broadcast()
        let start = !reconnecting
        reconnecting = true
        state.unlock()
        guard start else { return }
        let config = self.config
        Thread.detachNewThread { [weak self] in
            var delay = 0.05
            while true {
                Thread.sleep(forTimeInterval: delay)
                guard self != nil else { return }
                if let c = try? RedisConnection(config), let reply = try? c.pipeline([[Array("PING".utf8)]]), reply == [.status("PONG")] {
                    guard let store = self else { return }
                    store.state.lock()
                    store.failure = nil
                    store.lastSuccess = ContinuousClock.now
                    store.reconnecting = false
                    store.schemas.removeAll()
                    store.idle.append(c)
                    store.open += 1
                    store.state.broadcast()
                    store.state.unlock()
                    return
                }
                delay = min(delay * 2, 1.0)
            }
        }
    }

    private func check(_ reply: RedisReply, _ what: String) throws {
        if case .error(let e) = reply { throw ServingError("Redis at \(config.address) refused \(what): \(e)") }
    }

    // MARK: FeatureStore

    public func schema(kind: EntityKind) throws -> FeatureSchema? {
        state.lock()
        if let s = schemas[kind] {
            state.unlock()
            return s
        }
        state.unlock()
        let reply = try withConnection { try $0.pipeline([[Array("GET".utf8), schemaKey(kind)]]) }[0]
        try check(reply, "GET schema")
        guard case .string(let bytes) = reply else { return nil }
        let schema: FeatureSchema
        do {
            schema = try JSONDecoder().decode(FeatureSchema.self, from: Data(bytes))
        } catch {
            throw ServingError("Redis key \(config.prefix)schema:\(kind.rawValue) is not a Herd schema (\(error)); re-run `herd nearline`")
        }
        state.lock()
        schemas[kind] = schema
        state.unlock()
        return schema
    }

    public func put(_ table: FeatureTable, kind: EntityKind, keyColumn: String, ids rowIDs: [Int64]?, progress: ((Int, Int) -> Void)?) throws {
        let schema = try FeatureSchema(table: table, keyColumn: keyColumn)
        let fingerprint = schema.fingerprint
        let ids = try storeKeys(table, keyColumn: keyColumn, ids: rowIDs)
        let json = Array(try schema.canonicalJSON())
        let set = Array("SET".utf8)
        try withConnection { c in
            try check(try c.pipeline([[set, schemaKey(kind), json]])[0], "SET schema")
            var buffer: [UInt8] = []
            var start = 0
            while start < table.rowCount {
                let end = min(table.rowCount, start + Self.setChunk)
                var commands: [[[UInt8]]] = []
                commands.reserveCapacity(end - start)
                for r in start..<end {
                    FeatureRowCodec.encode(table.columns, row: r, fingerprint: fingerprint, into: &buffer)
                    commands.append([set, key(kind, ids[r]), buffer])
                }
                for reply in try c.pipeline(commands) { try check(reply, "SET") }
                start = end
                progress?(end, table.rowCount)
            }
        }
        state.lock()
        schemas[kind] = schema
        state.unlock()
    }

    public func get(kind: EntityKind, ids: [Int64]) throws -> FeatureRows {
        guard var schema = try schema(kind: kind) else {
            throw ServingError("Redis at \(config.address) holds no \(kind) schema (\(config.prefix)schema:\(kind.rawValue)): run `herd nearline --redis …` first")
        }
        let mget = Array("MGET".utf8)
        let replies = try withConnection { c -> [RedisReply] in
            var commands: [[[UInt8]]] = []
            var start = 0
            while start < ids.count {
                let end = min(ids.count, start + Self.mgetChunk)
                commands.append([mget] + ids[start..<end].map { key(kind, $0) })
                start = end
            }
            return try c.pipeline(commands)
        }
        var values: [RedisReply] = []
        values.reserveCapacity(ids.count)
        for reply in replies {
            try check(reply, "MGET")
            guard case .array(let part) = reply else { throw ServingError("Redis at \(config.address): MGET did not answer an array") }
            values += part
        }
        guard values.count == ids.count else { throw ServingError("Redis at \(config.address): MGET answered \(values.count) values for \(ids.count) keys") }
        func decodeAll(_ schema: FeatureSchema) throws -> [[Value]?] {
            let fp = schema.fingerprint
            return try zip(ids, values).map { id, v in
                guard case .string(let bytes) = v else { return nil }
                return try bytes.withUnsafeBytes {
                    try FeatureRowCodec.decode($0, schema: schema, fingerprint: fp, what: "Redis key \(config.prefix)\(kind.rawValue):\(id)")
                }
            }
        }
        do {
            return FeatureRows(schema: schema, ids: ids, rows: try decodeAll(schema))
        } catch {
            // The schema may have changed since it was cached (another nearline run): reload once.
            state.lock()
            schemas[kind] = nil
            state.unlock()
            guard let fresh = try self.schema(kind: kind), fresh != schema else { throw error }
            schema = fresh
            return FeatureRows(schema: schema, ids: ids, rows: try decodeAll(schema))
        }
    }
}
