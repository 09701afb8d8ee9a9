import CHiredis
import Foundation

/// Where and how to reach Redis:
/// `redis://host:port[/prefix][?pool=4&timeout_ms=100&connect_timeout_ms=200]` over TCP, or
/// `unix:///path/redis.sock[?prefix=herd:&pool=4…]` (also `redis+unix://`) over a unix socket;
/// `item_cache=N&item_cache_ttl_ms=T` put a near cache of N item rows in front (`CachedFeatureStore`).
public struct RedisConfig: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 6379
    /// A unix socket path (`unix:///run/redis.sock`): used instead of host and port when set.
    // NOTE: on one machine a unix socket skips the TCP stack on both sides (loopback TCP costs
    // two socket writes, two reads and their softirq work per round trip on each end).
    public var unixSocket: String?
    /// Prepended to every key: `{prefix}user:{id}`, `{prefix}item:{id}`, `{prefix}schema:user`.
    public var prefix = ""
    /// Connections kept open (one request uses one connection at a time).
    public var poolSize = 4
    /// Bound on each command round trip (socket send/receive timeout), milliseconds.
    public var timeoutMilliseconds = 100
    /// Bound on opening a connection, milliseconds.
    public var connectTimeoutMilliseconds = 200
    /// Item rows kept in process in front of Redis (`CachedFeatureStore`); 0 = no near cache.
    public var itemCache = RedisConfig.defaultItemCache
    /// How long a cached item row is used before it is fetched again, milliseconds: the bound on
    /// how stale a row written by another process (`herd nearline`) can be.
    public var itemCacheTTLMilliseconds = RedisConfig.defaultItemCacheTTLMilliseconds

    public static let defaultItemCache = 0
    public static let defaultItemCacheTTLMilliseconds = 30_000

    public init() {}

    /// Whether `spec` names a Redis store (`redis://`, `unix://`, `redis+unix://`).
    public static func isRedisURL(_ spec: String) -> Bool {
        spec.hasPrefix("redis://") || spec.hasPrefix("unix://") || spec.hasPrefix("redis+unix://")
    }

    public init(url: String) throws {
        let usage = "use redis://host:port[/prefix] or unix:///path/to/redis.sock[?prefix=…]"
        guard let c = URLComponents(string: url), let scheme = c.scheme else {
            throw ServingError("'\(url)' is not a Redis URL: \(usage)")
        }
        switch scheme {
        case "redis":
            guard let host = c.host, !host.isEmpty else { throw ServingError("'\(url)' is not a Redis URL: \(usage)") }
            self.host = host
            port = c.port ?? 6379
            prefix = String(c.path.drop { $0 == "/" })
        case "unix", "redis+unix":
            guard c.host?.isEmpty ?? true, c.path.hasPrefix("/"), c.path.count > 1 else {
                throw ServingError("'\(url)': a unix socket URL needs an absolute path, e.g. unix:///run/redis/redis.sock")
            }
            unixSocket = c.path
        default:
            throw ServingError("'\(url)' is not a Redis URL: \(usage)")
        }
        for item in c.queryItems ?? [] {
            if item.name == "prefix", unixSocket != nil {
                prefix = item.value ?? ""
                continue
            }
            guard let v = item.value.flatMap(Int.init), v > 0 || (v == 0 && item.name == "item_cache") else {
                throw ServingError("'\(url)': \(item.name) needs a positive integer")
            }
            switch item.name {
            case "pool": poolSize = v
            case "timeout_ms": timeoutMilliseconds = v
            case "connect_timeout_ms": connectTimeoutMilliseconds = v
            case "item_cache": itemCache = v
            case "item_cache_ttl_ms": itemCacheTTLMilliseconds = v
            default:
                throw ServingError("'\(url)': unknown option '\(item.name)' (pool, timeout_ms, connect_timeout_ms, item_cache, item_cache_ttl_ms\(unixSocket != nil ? ", prefix" : ""))")
            }
        }
    }

    /// `host:port`, or the socket path.
    public var address: String { unixSocket ?? "\(host):\(port)" }

    /// The store spec (`redis://host:port/prefix`, `unix:///path?prefix=…`).
    public var spec: String {
        if let unixSocket { return "unix://\(unixSocket)" + (prefix.isEmpty ? "" : "?prefix=\(prefix)") }
        return "redis://\(address)/\(prefix)"
    }
}

/// One Redis reply.
enum RedisReply: Equatable {
    case string([UInt8])
    case integer(Int64)
    case array([RedisReply])
    case status(String)
    case error(String)
    case null
}

/// The connection broke (refused, reset, timed out): the store marks itself unhealthy.
struct RedisConnectionError: Error, CustomStringConvertible {
    let description: String
}

/// The caller's deadline passed before the replies came: the connection is dropped (its replies
/// are still in flight), the store stays healthy.
struct RedisDeadlineError: Error, CustomStringConvertible {
    var description: String { "no answer within the request's deadline" }
}

/// Commands in RESP, the Redis wire format (`*argc\r\n` then `$len\r\narg\r\n` per argument),
/// written straight into one buffer: a pipeline of MGETs costs one buffer, not an array per key.
struct RESPBuffer {
    var bytes: [UInt8] = []
    /// Commands written so far.
    private(set) var count = 0

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    /// Starts a command of `argc` arguments (the command name is the first).
    mutating func command(_ argc: Int) {
        bytes.append(UInt8(ascii: "*"))
        decimal(argc)
        crlf()
        count += 1
    }

    mutating func argument<C: Collection>(_ arg: C) where C.Element == UInt8 {
        bytes.append(UInt8(ascii: "$"))
        decimal(arg.count)
        crlf()
        bytes.append(contentsOf: arg)
        crlf()
    }

    /// The key `prefix` + `id` in decimal (`herd:item:123`) as one argument.
    mutating func key(_ prefix: [UInt8], _ id: Int64) {
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes of scratch
        let n = withUnsafeMutableBytes(of: &digits) { Self.format(id, into: $0) }
        bytes.append(UInt8(ascii: "$"))
        decimal(prefix.count + n)
        crlf()
        bytes.append(contentsOf: prefix)
        withUnsafeBytes(of: &digits) { bytes.append(contentsOf: $0.prefix(n)) }
        crlf()
    }

    private mutating func crlf() {
        bytes.append(13)
        bytes.append(10)
    }

    private mutating func decimal(_ v: Int) {
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        let n = withUnsafeMutableBytes(of: &digits) { Self.format(Int64(v), into: $0) }
        withUnsafeBytes(of: &digits) { bytes.append(contentsOf: $0.prefix(n)) }
    }

    /// Writes `v` in decimal at the start of `out` (≥ 20 bytes); returns the length.
    static func format(_ v: Int64, into out: UnsafeMutableRawBufferPointer) -> Int {
        var m = v.magnitude
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes, reversed digits
        var n = 0
        withUnsafeMutableBytes(of: &tmp) { t in
            repeat {
                t[n] = UInt8(ascii: "0") + UInt8(m % 10)
                m /= 10
                n += 1
            } while m > 0
        }
        var o = 0
        if v < 0 {
            out[0] = UInt8(ascii: "-")
            o = 1
        }
        withUnsafeBytes(of: &tmp) { t in for i in 0..<n { out[o + i] = t[n - 1 - i] } }
        return o + n
    }
}

/// One blocking hiredis connection with connect and command timeouts. Not thread-safe: the pool
/// hands it to one caller at a time.
final class RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>
    private let timeout: Duration
    /// The socket timeout set now (shortened for a call whose deadline comes sooner).
    private var socketTimeout: Duration

    /// NOTE: hiredis writes with plain `write(2)`: a write to a connection the server has reset
    /// (Redis stopped or restarted) raises SIGPIPE, whose default action ends the process. It is
    /// ignored once, process-wide, before the first connection, so the write fails with EPIPE and
    /// the store handles it as any other broken connection.
    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    init(_ config: RedisConfig) throws {
        Self.ignoreSIGPIPE
        let connectTimeout = Self.timeval(.milliseconds(config.connectTimeoutMilliseconds))
        let made = config.unixSocket.map { redisConnectUnixWithTimeout($0, connectTimeout) }
            ?? redisConnectWithTimeout(config.host, Int32(config.port), connectTimeout)
        guard let c = made else {
            throw RedisConnectionError(description: "cannot allocate a hiredis context")
        }
        if c.pointee.err != 0 {
            let reason = Self.message(c)
            redisFree(c)
            throw RedisConnectionError(description: reason)
        }
        timeout = .milliseconds(config.timeoutMilliseconds)
        socketTimeout = timeout
        redisSetTimeout(c, Self.timeval(timeout))
        context = c
    }

    deinit { redisFree(context) }

    private static func timeval(_ d: Duration) -> Glibc.timeval {
        let us = max(1, d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000)
        return Glibc.timeval(tv_sec: Int(us / 1_000_000), tv_usec: __suseconds_t(us % 1_000_000))
    }

    private static func message(_ c: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: &c.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            let text = String(decoding: bytes, as: UTF8.self)
            return text.isEmpty ? "connection error \(c.pointee.err)" : text
        }
    }

    /// Sends every command at once (pipelining: one round trip), then reads one reply per command.
    /// Each command is its arguments as raw bytes.
    func pipeline(_ commands: [[[UInt8]]]) throws -> [RedisReply] {
        var resp = RESPBuffer()
        for command in commands {
            resp.command(command.count)
            for arg in command { resp.argument(arg) }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        try send(resp, deadline: nil) { _, reply in replies.append(Self.convert(reply)) }
        return replies
    }

    /// Sends the commands of `resp` in one write and hands each reply, in order, to `body` while it
    /// is still in hiredis's buffer (the reply is freed after `body` returns: copy what you keep).
    /// If `body` throws, the remaining replies are still read (the connection stays in step) and the
    /// first error is rethrown. With a `deadline`, no socket wait outlasts it (`RedisDeadlineError`).
    func send(_ resp: RESPBuffer, deadline: ContinuousClock.Instant?,
              _ body: (Int, UnsafePointer<redisReply>) throws -> Void) throws {
        let appended = resp.bytes.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
        }
        guard appended == REDIS_OK else { throw RedisConnectionError(description: Self.message(context)) }
        var done: Int32 = 0
        while done == 0 {
            let bound = try boundSocketWait(deadline)
            if redisBufferWrite(context, &done) != REDIS_OK { throw failure(bound) }
        }
        var firstError: (any Error)?
        for i in 0..<resp.count {
            var raw: UnsafeMutableRawPointer?
            while true {
                guard redisGetReplyFromReader(context, &raw) == REDIS_OK else {
                    throw RedisConnectionError(description: Self.message(context))
                }
                if raw != nil { break }
                let bound = try boundSocketWait(deadline)
                if redisBufferRead(context) != REDIS_OK { throw failure(bound) }
            }
            defer { freeReplyObject(raw) }
            if firstError == nil {
                do { try body(i, UnsafePointer(raw!.assumingMemoryBound(to: redisReply.self))) } catch { firstError = error }
            }
        }
        if let firstError { throw firstError }
    }

    /// Shortens the socket timeout to what is left before `deadline` (throws when nothing is);
    /// returns whether the deadline, not the configured timeout, bounds the next wait.
    private func boundSocketWait(_ deadline: ContinuousClock.Instant?) throws -> Bool {
        var wanted = timeout
        if let deadline {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { throw RedisDeadlineError() }
            wanted = min(timeout, left)
        }
        // NOTE: two setsockopt calls, only when the deadline is nearer than the timeout (the
        // default request deadline, 1 s, is ten times the default timeout).
        if wanted != socketTimeout {
            redisSetTimeout(context, Self.timeval(wanted))
            socketTimeout = wanted
        }
        return wanted < timeout
    }

    private func failure(_ deadlineBound: Bool) -> any Error {
        let io = context.pointee.err == REDIS_ERR_IO
        if deadlineBound && io && (errno == EAGAIN || errno == EWOULDBLOCK) { return RedisDeadlineError() }
        return RedisConnectionError(description: Self.message(context))
    }

    static func convert(_ r: UnsafePointer<redisReply>) -> RedisReply {
        let p = r.pointee
        func bytes() -> [UInt8] {
            guard let s = p.str, p.len > 0 else { return [] }
            return Array(UnsafeRawBufferPointer(start: s, count: Int(p.len)))
        }
        switch p.type {
        case REDIS_REPLY_STRING: return .string(bytes())
        case REDIS_REPLY_INTEGER: return .integer(Int64(p.integer))
        case REDIS_REPLY_NIL: return .null
        case REDIS_REPLY_STATUS: return .status(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ARRAY:
            return .array((0..<Int(p.elements)).map { i in p.element[i].map { convert(UnsafePointer($0)) } ?? .null })
        default: return .error("unknown reply type \(p.type)")
        }
    }
}
