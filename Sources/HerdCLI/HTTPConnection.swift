import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A request target: `http://host:port/path?query`, where `{id}` in the path, query or body is
/// replaced per request.
struct HTTPTarget: Sendable, Equatable {
    let host: String
    let port: UInt16
    /// Path and query, starting with `/`.
    let pathTemplate: String

    init(url: String) throws {
        guard url.hasPrefix("http://") else {
            if url.hasPrefix("https://") { throw LoadTestError("\(url): https is not supported; point the load test at the plain-HTTP port (TLS belongs to the proxy in front)") }
            throw LoadTestError("\(url): the URL must start with http://")
        }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        pathTemplate = slash == rest.endIndex ? "/" : String(rest[slash...])
        if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = UInt16(authority[authority.index(after: colon)...]), p > 0 else {
                throw LoadTestError("\(url): the port must be a number in 1…65535")
            }
            port = p
        } else {
            host = String(authority)
            port = 80
        }
        guard !host.isEmpty else { throw LoadTestError("\(url): no host") }
    }
}

struct LoadTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One keep-alive HTTP/1.1 connection over a blocking socket: the load client's hot loop.
///
/// NOTE: blocking sockets with one thread per connection instead of an event loop: the client
/// must cost far less than the server it measures, and a thread blocked in `recv` costs nothing;
/// with C connections the client is exactly C requests in flight (a closed loop).
final class HTTPConnection {
    let target: HTTPTarget
    let timeout: Double
    private var fd: Int32 = -1
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)
    private var start = 0, end = 0
    /// When set, the body of the last response is kept in `lastBody` (tests, small answers).
    var keepBody = false
    private(set) var lastBody: [UInt8] = []

    init(target: HTTPTarget, timeout: Double) {
        self.target = target
        self.timeout = timeout
    }

    deinit { close() }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
        start = 0
        end = 0
    }

    /// Resolves the host and connects with TCP_NODELAY and send/receive timeouts.
    func connect() throws {
        close()
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var info: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(target.host, String(target.port), &hints, &info)
        guard rc == 0, let first = info else {
            throw LoadTestError("cannot resolve \(target.host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(info) }
        var lastError: Int32 = 0
        var a: UnsafeMutablePointer<addrinfo>? = first
        while let ai = a {
            let s = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
            if s >= 0 {
                var one: Int32 = 1
                setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
                setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                if Glibc.connect(s, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 {
                    fd = s
                    return
                }
                lastError = errno
                _ = Glibc.close(s)
            } else {
                lastError = errno
            }
            a = ai.pointee.ai_next
        }
        throw LoadTestError("cannot connect to \(target.host):\(target.port): \(String(cString: strerror(lastError)))")
    }

    /// Sends `request` (a complete HTTP/1.1 request) and reads one response; returns its status
    /// and body length. Reconnects once when a kept-alive connection turns out to be closed.
    func roundTrip(_ request: [UInt8]) throws -> (status: Int, bodyBytes: Int) {
        var retried = false
        while true {
            if fd < 0 { try connect() }
            do {
                try send(request)
                return try readResponse()
            } catch let e as ConnectionClosed {
                // NOTE: a server may close an idle keep-alive connection at any time; the request
                // was not answered, so sending it again on a fresh connection is safe once.
                close()
                if retried || e.afterBytes { throw LoadTestError("connection closed by \(target.host):\(target.port)") }
                retried = true
            }
        }
    }

    private struct ConnectionClosed: Error { let afterBytes: Bool }

    private func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 {
                if n < 0 && (errno == EPIPE || errno == ECONNRESET) { throw ConnectionClosed(afterBytes: false) }
                throw LoadTestError(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? "send timed out" : "send failed: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    /// Reads more bytes into the buffer; false at end of stream.
    ///
    /// NOTE: never moves bytes (callers hold offsets into the buffer while parsing); the buffer
    /// grows when full and is compacted between responses (`compact`) and while skipping a body.
    private func fill() throws -> Bool {
        if end == buffer.count { buffer.append(contentsOf: [UInt8](repeating: 0, count: buffer.count)) }
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + end, $0.count - end, 0) }
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { throw LoadTestError("timed out after \(timeout) s waiting for a response") }
            if errno == ECONNRESET { throw ConnectionClosed(afterBytes: end > start) }
            throw LoadTestError("recv failed: \(String(cString: strerror(errno)))")
        }
        end += n
        return n > 0
    }

    /// Index just past the next CRLF at or after `from`, reading more as needed.
    private func line(from: Int) throws -> Int {
        var i = from
        while true {
            while i + 1 < end {
                if buffer[i] == 13 && buffer[i + 1] == 10 { return i + 2 }
                i += 1
            }
            guard try fill() else { throw ConnectionClosed(afterBytes: end > start) }
        }
    }

    /// Moves unread bytes to the front of the buffer (no offsets are held between responses).
    private func compact() {
        if start == end {
            start = 0
            end = 0
        } else if start > 0 {
            buffer.replaceSubrange(0..<(end - start), with: buffer[start..<end])
            end -= start
            start = 0
        }
    }

    private func readResponse() throws -> (status: Int, bodyBytes: Int) {
        compact()
        lastBody = []
        // Status line: "HTTP/1.1 200 OK".
        var lineEnd = try line(from: start)
        let statusLine = String(decoding: buffer[start..<(lineEnd - 2)], as: UTF8.self)
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw LoadTestError("malformed HTTP status line: \(statusLine.prefix(80))")
        }
        var contentLength: Int?
        var chunked = false
        var keepAlive = parts[0] == "HTTP/1.1"
        // Headers until the empty line.
        while true {
            let s = lineEnd
            lineEnd = try line(from: s)
            if lineEnd - s == 2 { break }
            let header = String(decoding: buffer[s..<(lineEnd - 2)], as: UTF8.self)
            guard let colon = header.firstIndex(of: ":") else { continue }
            let name = header[..<colon].lowercased()
            let value = header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces).lowercased()
            switch name {
            case "content-length": contentLength = Int(value)
            case "transfer-encoding": chunked = value.contains("chunked")
            case "connection": keepAlive = value != "close" && (keepAlive || value == "keep-alive")
            default: break
            }
        }
        start = lineEnd
        var body = 0
        if chunked {
            while true {
                let e = try line(from: start)
                let sizeText = String(decoding: buffer[start..<(e - 2)], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { throw LoadTestError("malformed chunk size '\(sizeText)'") }
                start = e
                if size == 0 {
                    start = try line(from: start)  // trailer's empty line
                    break
                }
                try skip(size)
                let keep = keepBody
                keepBody = false
                try skip(2)  // the chunk's CRLF
                keepBody = keep
                body += size
            }
        } else if let n = contentLength {
            try skip(n)
            body = n
        } else if status != 204 && status != 304 && !(100..<200).contains(status) {
            // No length: the body runs to the end of the connection.
            while try fill() {}
            body = end - start
            if keepBody { lastBody += buffer[start..<end] }
            start = end
            keepAlive = false
        }
        if !keepAlive { close() }
        return (status, body)
    }

    private func skip(_ n: Int) throws {
        var left = n
        while left > 0 {
            if start == end {
                start = 0
                end = 0
                guard try fill() else { throw ConnectionClosed(afterBytes: true) }
            }
            let take = min(left, end - start)
            if keepBody { lastBody += buffer[start..<(start + take)] }
            start += take
            left -= take
        }
    }
}
