import CHiredis
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
    /// Each kind's schema and its fingerprint (computing it encodes the schema as JSON: once).
    private var schemas: [EntityKind: (schema: FeatureSchema, fingerprint: UInt32)] = [:]
    private let keyPrefixes: [EntityKind: [UInt8]]
    /// When a command last went through.
    private var lastSuccess = ContinuousClock.now
    /// `health` checks with a PING when nothing went through for this long.
    static let probeInterval: Duration = .seconds(1)

    public init(config: RedisConfig) throws {
        self.config = config
        keyPrefixes = Dictionary(uniqueKeysWithValues: EntityKind.allCases.map { ($0, Array("\(config.prefix)\($0.rawValue):".utf8)) })
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

    public var spec: String { config.spec }
    /// Every socket wait is bounded by what is left of the deadline.
    public var answersWithinDeadline: Bool { true }

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

    /// Runs `body` on a pooled connection; fails fast while unhealthy. Waits for a free connection
    /// at most the command timeout, or until `deadline` if sooner.
    private func withConnection<T>(deadline requestDeadline: ContinuousClock.Instant? = nil, _ body: (RedisConnection) throws -> T) throws -> T {
        var waitUntil: Date?
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
            } else {
                if waitUntil == nil {
                    var wait = Duration.milliseconds(config.timeoutMilliseconds)
                    if let requestDeadline { wait = min(wait, requestDeadline - ContinuousClock.now) }
                    waitUntil = Date().addingTimeInterval(max(0, seconds(wait)))
                }
                if !state.wait(until: waitUntil!) {
                    state.unlock()
                    throw ServingError("Redis at \(config.address): all \(config.poolSize) connections stayed busy for \(config.timeoutMilliseconds) ms (or past the request's deadline)")
                }
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
        } catch is RedisDeadlineError {
            // NOTE: its replies are still in flight: the connection is closed, the store stays healthy.
            state.lock()
            open -= 1
            state.signal()
            state.unlock()
            throw ServingError("Redis at \(config.address) did not answer within the deadline")
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

    public func schema(kind: EntityKind) throws -> FeatureSchema? { try cachedSchema(kind, deadline: nil)?.schema }

    /// The schema of `kind` and its fingerprint, from the cache or Redis.
    private func cachedSchema(_ kind: EntityKind, deadline: ContinuousClock.Instant?) throws -> (schema: FeatureSchema, fingerprint: UInt32)? {
        state.lock()
        if let s = schemas[kind] {
            state.unlock()
            return s
        }
        state.unlock()
        let reply = try withConnection(deadline: deadline) { try $0.pipeline([[Array("GET".utf8), schemaKey(kind)]]) }[0]
        try check(reply, "GET schema")
        guard case .string(let bytes) = reply else { return nil }
        let schema: FeatureSchema
        do {
            schema = try JSONDecoder().decode(FeatureSchema.self, from: Data(bytes))
        } catch {
            throw ServingError("Redis key \(config.prefix)schema:\(kind.rawValue) is not a Herd schema (\(error)); re-run `herd nearline`")
        }
        let entry = (schema: schema, fingerprint: schema.fingerprint)
        state.lock()
        schemas[kind] = entry
        state.unlock()
        return entry
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
        schemas[kind] = (schema, fingerprint)
        state.unlock()
    }

    public func get(kind: EntityKind, ids: [Int64]) throws -> FeatureRows {
        try get([FeatureQuery(kind, ids)], deadline: nil)[0]
    }

    /// Every query's `MGET`s (chunks of `mgetChunk` keys) in one pipelined round trip; each value
    /// is decoded straight from hiredis's reply (no copy of the bytes, no intermediate reply tree).
    public func get(_ queries: [FeatureQuery], deadline: ContinuousClock.Instant?) throws -> [FeatureRows] {
        do {
            return try getOnce(queries, deadline: deadline)
        } catch let error as ServingError where error.description.contains("different schema") {
            // The schema may have changed since it was cached (another nearline run): reload once.
            state.lock()
            for q in queries { schemas[q.kind] = nil }
            state.unlock()
            return try getOnce(queries, deadline: deadline)
        }
    }

    private func getOnce(_ queries: [FeatureQuery], deadline: ContinuousClock.Instant?) throws -> [FeatureRows] {
        var kinds: [(schema: FeatureSchema, fingerprint: UInt32)] = []
        for q in queries {
            guard let s = try cachedSchema(q.kind, deadline: deadline) else {
                throw ServingError("Redis at \(config.address) holds no \(q.kind) schema (\(config.prefix)schema:\(q.kind.rawValue)): run `herd nearline --redis …` first")
            }
            kinds.append(s)
        }
        // Which query and first id each MGET answers.
        var commands: [(query: Int, start: Int, count: Int)] = []
        var resp = RESPBuffer(capacity: 32 + queries.reduce(0) { $0 + $1.ids.count * 32 })
        let mget = Array("MGET".utf8)
        for (qi, q) in queries.enumerated() {
            let prefix = keyPrefixes[q.kind]!
            var start = 0
            while start < q.ids.count {
                let end = min(q.ids.count, start + Self.mgetChunk)
                resp.command(1 + end - start)
                resp.argument(mget)
                for id in q.ids[start..<end] { resp.key(prefix, id) }
                commands.append((qi, start, end - start))
                start = end
            }
        }
        // NOTE: rows whose fields are all int64/double are decoded into flat arrays (`ScalarRows`),
        // the others into value rows.
        var scalars: [ScalarRows?] = queries.indices.map { qi in
            ScalarRows.fits(kinds[qi].schema) ? ScalarRows(count: queries[qi].ids.count, fields: kinds[qi].schema.fields.count) : nil
        }
        let isDouble = kinds.map { k in k.schema.fields.map { $0.type == .double } }
        var rows: [[[Value]?]] = queries.indices.map { scalars[$0] == nil ? [[Value]?](repeating: nil, count: queries[$0].ids.count) : [] }
        let address = config.address, prefix = config.prefix
        try withConnection(deadline: deadline) { c in
            try c.send(resp, deadline: deadline) { i, reply in
                let (qi, start, count) = commands[i]
                let r = reply.pointee
                if r.type == REDIS_REPLY_ERROR {
                    throw ServingError("Redis at \(address) refused MGET: \(String(decoding: UnsafeRawBufferPointer(start: r.str, count: Int(r.len)), as: UTF8.self))")
                }
                guard r.type == REDIS_REPLY_ARRAY, Int(r.elements) == count else {
                    throw ServingError("Redis at \(address): MGET of \(count) keys did not answer an array of \(count) values")
                }
                let (schema, fingerprint) = kinds[qi]
                let kind = queries[qi].kind
                if scalars[qi] != nil {
                    let fields = schema.fields.count
                    try isDouble[qi].withUnsafeBufferPointer { types in
                        try scalars[qi]!.withBuffers { found, bits, present in
                            for e in 0..<count {
                                guard let v = r.element[e], v.pointee.type == REDIS_REPLY_STRING else { continue }
                                let row = start + e
                                try FeatureRowCodec.decodeScalars(
                                    UnsafeRawBufferPointer(start: v.pointee.str, count: Int(v.pointee.len)), isDouble: types, fingerprint: fingerprint,
                                    bits: bits + row * fields, present: present + row * fields,
                                    what: "Redis key \(prefix)\(kind.rawValue):\(queries[qi].ids[row])")
                                found[row] = true
                            }
                        }
                    }
                    return
                }
                for e in 0..<count {
                    guard let v = r.element[e], v.pointee.type == REDIS_REPLY_STRING else { continue }
                    let id = queries[qi].ids[start + e]
                    rows[qi][start + e] = try FeatureRowCodec.decode(
                        UnsafeRawBufferPointer(start: v.pointee.str, count: Int(v.pointee.len)), schema: schema, fingerprint: fingerprint,
                        what: "Redis key \(prefix)\(kind.rawValue):\(id)")
                }
            }
        }
        return queries.indices.map { qi in
            scalars[qi].map { FeatureRows(schema: kinds[qi].schema, ids: queries[qi].ids, scalars: $0) }
                ?? FeatureRows(schema: kinds[qi].schema, ids: queries[qi].ids, rows: rows[qi])
        }
    }
}
