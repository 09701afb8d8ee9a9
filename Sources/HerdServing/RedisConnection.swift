import CHiredis
import Foundation

/// Where and how to reach Redis: `redis://host:port[/prefix][?pool=4&timeout_ms=100&connect_timeout_ms=200]`.
public struct RedisConfig: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 6379
    /// Prepended to every key: `{prefix}user:{id}`, `{prefix}item:{id}`, `{prefix}schema:user`.
    public var prefix = ""
    /// Connections kept open (one request uses one connection at a time).
    public var poolSize = 4
    /// Bound on each command round trip (socket send/receive timeout), milliseconds.
    public var timeoutMilliseconds = 100
    /// Bound on opening a connection, milliseconds.
    public var connectTimeoutMilliseconds = 200

    public init() {}

    public init(url: String) throws {
        guard let c = URLComponents(string: url), c.scheme == "redis", let host = c.host, !host.isEmpty else {
            throw ServingError("'\(url)' is not a Redis URL: use redis://host:port[/prefix]")
        }
        self.host = host
        port = c.port ?? 6379
        prefix = String(c.path.drop { $0 == "/" })
        for item in c.queryItems ?? [] {
            guard let v = item.value.flatMap(Int.init), v > 0 else {
                throw ServingError("'\(url)': \(item.name) needs a positive integer")
            }
            switch item.name {
            case "pool": poolSize = v
            case "timeout_ms": timeoutMilliseconds = v
            case "connect_timeout_ms": connectTimeoutMilliseconds = v
            default: throw ServingError("'\(url)': unknown option '\(item.name)' (pool, timeout_ms, connect_timeout_ms)")
            }
        }
    }

    public var address: String { "\(host):\(port)" }
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

/// One blocking hiredis connection with connect and command timeouts. Not thread-safe: the pool
/// hands it to one caller at a time.
final class RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>

    /// NOTE: hiredis writes with plain `write(2)`: a write to a connection the server has reset
    /// (Redis stopped or restarted) raises SIGPIPE, whose default action ends the process. It is
    /// ignored once, process-wide, before the first connection, so the write fails with EPIPE and
    /// the store handles it as any other broken connection.
    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    init(_ config: RedisConfig) throws {
        Self.ignoreSIGPIPE
        func tv(_ ms: Int) -> timeval { timeval(tv_sec: ms / 1000, tv_usec: __suseconds_t((ms % 1000) * 1000)) }
        guard let c = redisConnectWithTimeout(config.host, Int32(config.port), tv(config.connectTimeoutMilliseconds)) else {
            throw RedisConnectionError(description: "cannot allocate a hiredis context")
        }
        if c.pointee.err != 0 {
            let reason = Self.message(c)
            redisFree(c)
            throw RedisConnectionError(description: reason)
        }
        redisSetTimeout(c, tv(config.timeoutMilliseconds))
        context = c
    }

    deinit { redisFree(context) }

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
        for command in commands {
            var flat: [UInt8] = []
            var offsets: [Int] = []
            var lengths: [Int] = []
            for arg in command {
                offsets.append(flat.count)
                lengths.append(arg.count)
                flat.append(contentsOf: arg)
            }
            flat.append(0)  // so an empty last argument still has a valid address
            let status = flat.withUnsafeBufferPointer { f -> Int32 in
                let base = UnsafeRawPointer(f.baseAddress!).assumingMemoryBound(to: CChar.self)
                var argv: [UnsafePointer<CChar>?] = offsets.map { base + $0 }
                return argv.withUnsafeMutableBufferPointer { a in
                    lengths.withUnsafeBufferPointer { l in redisAppendCommandArgv(context, Int32(command.count), a.baseAddress, l.baseAddress) }
                }
            }
            guard status == REDIS_OK else { throw RedisConnectionError(description: Self.message(context)) }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                throw RedisConnectionError(description: Self.message(context))
            }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            replies.append(Self.convert(reply))
            freeReplyObject(raw)
        }
        return replies
    }

    private static func convert(_ r: UnsafeMutablePointer<redisReply>) -> RedisReply {
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
            return .array((0..<Int(p.elements)).map { i in p.element[i].map(convert) ?? .null })
        default: return .error("unknown reply type \(p.type)")
        }
    }
}
