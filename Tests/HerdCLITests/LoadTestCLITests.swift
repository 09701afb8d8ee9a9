import Foundation
@testable import HerdCLI
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 server for the load client's tests: keep-alive, answers 500 when
/// the path contains "fail", otherwise 200 with a JSON body — every third answer chunked, every
/// fifth on a connection it then closes (so the client's reconnect path runs).
final class TinyHTTPServer: @unchecked Sendable {
    private(set) var port: UInt16
    private let listener: Int32
    private let lock = NSLock()
    private var _requests = 0
    var requests: Int { lock.lock(); defer { lock.unlock() }; return _requests }

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        port = 0
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, len) } }
        guard bound == 0, listen(listener, 64) == 0 else { throw LoadTestError("test server cannot listen") }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &len) } }
        port = UInt16(bigEndian: addr.sin_port)
        Thread { [self] in acceptLoop() }.start()
    }

    func stop() { shutdown(listener, Int32(SHUT_RDWR)); close(listener) }

    private func acceptLoop() {
        while true {
            let c = accept(listener, nil, nil)
            if c < 0 { return }
            Thread { [self] in serve(c) }.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var pending = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            // One request head (these tests send no bodies on GET; POST bodies are read by length).
            var headEnd: Int?
            while headEnd == nil {
                if let r = pending.indices.dropLast(3).first(where: { pending[$0] == 13 && pending[$0 + 1] == 10 && pending[$0 + 2] == 13 && pending[$0 + 3] == 10 }) {
                    headEnd = r + 4
                    break
                }
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 4096, 0) }
                if n <= 0 { return }
                pending += buf[0..<n]
            }
            let head = String(decoding: pending[0..<headEnd!], as: UTF8.self)
            var bodyLength = 0
            for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                bodyLength = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
            }
            while pending.count < headEnd! + bodyLength {
                let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, 4096, 0) }
                if n <= 0 { return }
                pending += buf[0..<n]
            }
            pending.removeFirst(headEnd! + bodyLength)
            lock.lock(); _requests += 1; let k = _requests; lock.unlock()
            let path = head.split(separator: " ").dropFirst().first ?? ""
            let fail = path.contains("fail")
            let body = fail ? #"{"error":"boom"}"# : #"{"ids":[1,2,3],"success":true}"#
            let status = fail ? "500 Internal Server Error" : "200 OK"
            let closeAfter = k % 5 == 0
            var response: String
            if k % 3 == 0 {
                let half = body.utf8.count / 2
                let a = String(body.prefix(half)), b = String(body.dropFirst(half))
                response = "HTTP/1.1 \(status)\r\nTransfer-Encoding: chunked\r\n" + (closeAfter ? "Connection: close\r\n" : "") + "\r\n"
                response += String(a.utf8.count, radix: 16) + "\r\n" + a + "\r\n" + String(b.utf8.count, radix: 16) + "\r\n" + b + "\r\n0\r\n\r\n"
            } else {
                response = "HTTP/1.1 \(status)\r\nContent-Length: \(body.utf8.count)\r\nContent-Type: application/json\r\n" + (closeAfter ? "Connection: close\r\n" : "") + "\r\n" + body
            }
            let bytes = Array(response.utf8)
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress!, bytes.count, Int32(MSG_NOSIGNAL)) }
            if closeAfter { return }
        }
    }
}

final class LoadTestCLITests: XCTestCase {
    private func idsFile(_ ids: [String]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("herd-ids-\(UUID().uuidString).txt").path
        try (ids.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testClosedLoopCountsEveryAnswerAndNoErrors() throws {
        let server = try TinyHTTPServer()
        defer { server.stop() }
        let ids = try idsFile(["1", "2", "3", "42"])
        let run = try HerdBinary.run(["loadtest", "--url", "http://127.0.0.1:\(server.port)/recommender/recommend/{id}?k=10", "--ids", ids,
                                      "--concurrency", "4", "--duration", "1s", "--warmup", "0", "--json"])
        XCTAssertTrue(run.succeeded, run.transcript)
        let j = try run.lastJSON()
        let requests = try XCTUnwrap(j["requests"] as? Int)
        XCTAssertGreaterThan(requests, 20, run.transcript)
        XCTAssertEqual(j["errors"] as? Int, 0, run.transcript)
        // Every counted request reached the server (chunked answers and server-closed connections included).
        XCTAssertGreaterThanOrEqual(server.requests, requests)
        let l = try XCTUnwrap(j["latency_ms"] as? [String: Double])
        XCTAssertLessThanOrEqual(l["p50"]!, l["p99"]!)
        XCTAssertLessThanOrEqual(l["p99"]!, l["max"]!)
        XCTAssertGreaterThan(l["p50"]!, 0)
    }

    func testErrorsAreCountedByKind() throws {
        let server = try TinyHTTPServer()
        defer { server.stop() }
        let ids = try idsFile(["7", "fail"])
        let run = try HerdBinary.run(["loadtest", "--url", "http://127.0.0.1:\(server.port)/item/{id}", "--ids", ids,
                                      "--concurrency", "2", "--duration", "0.5", "--warmup", "0", "--json"])
        XCTAssertTrue(run.succeeded, run.transcript)
        let j = try run.lastJSON()
        let requests = try XCTUnwrap(j["requests"] as? Int), errors = try XCTUnwrap(j["errors"] as? Int)
        XCTAssertGreaterThan(errors, 0, run.transcript)
        XCTAssertLessThan(errors, requests, run.transcript)
        XCTAssertEqual((j["error_kinds"] as? [String: Int])?["HTTP 500"], errors)
    }

    func testOpenLoopKeepsTheRate() throws {
        let server = try TinyHTTPServer()
        defer { server.stop() }
        let run = try HerdBinary.run(["loadtest", "--url", "http://127.0.0.1:\(server.port)/healthz", "--rate", "100",
                                      "--concurrency", "2", "--duration", "1", "--warmup", "0", "--json"])
        XCTAssertTrue(run.succeeded, run.transcript)
        let requests = try XCTUnwrap(try run.lastJSON()["requests"] as? Int)
        XCTAssertTrue((85...101).contains(requests), "\(requests) requests at 100/s for 1 s\n\(run.transcript)")
    }

    func testPostBodyWithIDIsSent() throws {
        let server = try TinyHTTPServer()
        defer { server.stop() }
        let ids = try idsFile(["5"])
        let run = try HerdBinary.run(["loadtest", "--url", "http://127.0.0.1:\(server.port)/v1/models/wnd:predict", "--method", "POST",
                                      "--body", #"{"instances":[{"id":{id}}]}"#, "--ids", ids, "--concurrency", "1", "--duration", "0.3",
                                      "--warmup", "0", "--json"])
        XCTAssertTrue(run.succeeded, run.transcript)
        XCTAssertEqual(try run.lastJSON()["errors"] as? Int, 0)
    }

    func testNothingListeningIsAClearError() throws {
        // A port that was just free: bind, read it, close.
        let server = try TinyHTTPServer()
        let port = server.port
        server.stop()
        let run = try HerdBinary.run(["loadtest", "--url", "http://127.0.0.1:\(port)/x", "--duration", "1"])
        XCTAssertFalse(run.succeeded)
        XCTAssertTrue(run.crashSigns.isEmpty, run.transcript)
        XCTAssertTrue(run.stderr.contains("cannot connect to 127.0.0.1:\(port)"), run.transcript)
        let missing = try HerdBinary.run(["loadtest", "--url", "http://127.0.0.1:\(port)/r/{id}"])
        XCTAssertTrue(missing.stderr.contains("--ids"), missing.transcript)
        let https = try HerdBinary.run(["loadtest", "--url", "https://example.com/"])
        XCTAssertTrue(https.stderr.contains("https is not supported"), https.transcript)
    }

    func testPercentilesAreNearestRank() {
        let v = (1...10).map(Double.init)
        XCTAssertEqual(LoadReport.percentile(v, 0.5), 5)
        XCTAssertEqual(LoadReport.percentile(v, 0.9), 9)
        XCTAssertEqual(LoadReport.percentile(v, 0.95), 10)
        XCTAssertEqual(LoadReport.percentile(v, 0.01), 1)
        XCTAssertEqual(LoadReport.percentile([], 0.5), 0)
    }
}
