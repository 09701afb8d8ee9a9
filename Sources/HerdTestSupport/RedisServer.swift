import Foundation
#if canImport(XCTest)
import XCTest
#endif

/// A throw-away `redis-server` on a free loopback port, in a temporary directory, with persistence
/// off (`redis-cli SAVE` still writes `directory/dump.rdb`, which a restart on the same directory
/// loads); stopped by `stop()` (and at deinit). Used by the store tests and the CLI's end-to-end
/// Redis test.
public final class RedisServer {
    public let port: Int
    public let directory: URL
    private var process: Process?

    /// Starts one, or throws `XCTSkip` when redis-server is not installed.
    public init() throws {
        guard let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            let why = "redis-server is not installed (scripts/bootstrap installs Debian's redis-server); skipping the Redis tests"
            #if canImport(XCTest)
            throw XCTSkip(why)
            #else
            throw NSError(domain: "RedisServer", code: 3, userInfo: [NSLocalizedDescriptionKey: why])
            #endif
        }
        self.binary = binary
        port = try Self.freePort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("herd-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try start()
    }

    private let binary: String

    /// `redis://127.0.0.1:PORT/test:` (keys prefixed `test:`).
    public var url: String { "redis://127.0.0.1:\(port)/test:" }

    /// The server's unix socket, `directory/redis.sock`.
    public var socketPath: String { directory.appendingPathComponent("redis.sock").path }

    /// `unix://DIR/redis.sock?prefix=test:`: the same server over its unix socket.
    public var unixURL: String { "unix://\(socketPath)?prefix=test:" }

    /// Starts (or restarts, on the same port and directory) the server and waits until it accepts connections.
    public func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.path,
                       "--unixsocket", socketPath, "--unixsocketperm", "700"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        // Wait until it accepts connections.
        for _ in 0..<200 {
            if Self.canConnect(port) { return }
            usleep(20_000)
        }
        throw NSError(domain: "RedisServer", code: 1, userInfo: [NSLocalizedDescriptionKey: "redis-server did not start on port \(port)"])
    }

    /// Stops the server (SIGTERM) and waits for it to exit.
    public func stop() {
        guard let p = process else { return }
        p.terminate()
        p.waitUntilExit()
        process = nil
    }

    /// Runs `redis-cli -p PORT args…` and waits for it.
    public func cli(_ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        p.arguments = ["-p", String(port)] + args
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    public static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A port the kernel just handed out (bind to 0, read it back, close).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw NSError(domain: "RedisServer", code: 2, userInfo: [NSLocalizedDescriptionKey: "no free port"]) }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
