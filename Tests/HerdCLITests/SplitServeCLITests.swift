import Foundation
import GRPCCore
@testable import HerdCLI
import HerdFeatures
import HerdGRPC
import HerdTraining
import XCTest

/// `herd serve feature|recall|ranking|recommender --config FILE` as four processes on free ports:
/// the recommender's answers over HTTP and gRPC equal the all-in-one `herd serve`'s, and SIGTERM
/// stops every process cleanly.
final class SplitServeCLITests: XCTestCase {
    /// Waits for a stdout line starting with `prefix` and returns the port at its end.
    private func port(_ server: RunningHerd, _ prefix: String, timeout: TimeInterval = 90) -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && server.isRunning {
            let out = (try? String(contentsOf: server.logs.appendingPathComponent("stdout"), encoding: .utf8)) ?? ""
            if let line = out.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }),
               let p = line.split(separator: ":").last.flatMap({ Int($0) }) {
                return p
            }
            usleep(100_000)
        }
        return 0
    }

    private func recommendHTTP(_ port: Int, _ user: Int64) throws -> (ids: [Int64], probs: [Double], coldStart: Bool) {
        let path = "/recommender/recommend/\(user)?k=8&canK=40"
        let c = HTTPConnection(target: try HTTPTarget(url: "http://127.0.0.1:\(port)\(path)"), timeout: 10)
        c.keepBody = true
        let (status, _) = try c.roundTrip(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
        let body = String(decoding: c.lastBody, as: UTF8.self)
        XCTAssertEqual(status, 200, body)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], body)
        return (try XCTUnwrap(json["ids"] as? [Int]).map(Int64.init), try XCTUnwrap(json["probs"] as? [Double]), json["coldStart"] as? Bool ?? false)
    }

    /// `/metrics` of the HTTP server on `port`.
    private func metrics(_ port: Int) throws -> String {
        let c = HTTPConnection(target: try HTTPTarget(url: "http://127.0.0.1:\(port)/metrics"), timeout: 10)
        c.keepBody = true
        let (status, _) = try c.roundTrip(Array("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8))
        XCTAssertEqual(status, 200)
        return String(decoding: c.lastBody, as: UTF8.self)
    }

    /// The value of the Prometheus sample `name{…}` whose labels include every one of `labels`.
    private func sample(_ text: String, _ name: String, _ labels: [String: String]) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") {
            guard let close = line.lastIndex(of: "}") else { continue }
            let inside = line[line.index(line.startIndex, offsetBy: name.count + 1)..<close]
            if labels.allSatisfy({ inside.contains("\($0.key)=\"\($0.value)\"") }) {
                return Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces))
            }
        }
        return nil
    }

    /// The gRPC metrics after `recommendGRPC(users)`: each good call OK, the one bad call
    /// INVALID_ARGUMENT, all of them in the latency histogram.
    private func assertGRPCMetrics(_ port: Int, calls: Int, _ name: String) throws {
        let text = try metrics(port)
        let rpc = ["service": "herd.v1.Recommender", "method": "Recommend"]
        XCTAssertEqual(sample(text, "herd_grpc_requests_total", rpc.merging(["code": "OK"]) { a, _ in a }), Double(calls), "\(name)\n\(text)")
        XCTAssertEqual(sample(text, "herd_grpc_requests_total", rpc.merging(["code": "INVALID_ARGUMENT"]) { a, _ in a }), 1, "\(name)\n\(text)")
        XCTAssertEqual(sample(text, "herd_grpc_request_duration_seconds_count", rpc), Double(calls + 1), "\(name)\n\(text)")
        XCTAssertEqual(sample(text, "herd_grpc_request_duration_seconds_bucket", rpc.merging(["le": "+Inf"]) { a, _ in a }), Double(calls + 1), "\(name)\n\(text)")
    }

    private func recommendGRPC(_ port: Int, _ users: [Int64]) async throws -> [Herd_V1_RecommendResponse] {
        let client = try makeGRPCClient(address: "127.0.0.1:\(port)")
        let running = Task { try await client.runConnections() }
        defer { client.beginGracefulShutdown() }
        let recommender = Herd_V1_Recommender.Client(wrapping: client)
        var answers: [Herd_V1_RecommendResponse] = []
        for user in users {
            var request = Herd_V1_RecommendRequest()
            request.userID = user
            request.k = 8
            request.canK = 40
            answers.append(try await recommender.recommend(request))
        }
        var bad = Herd_V1_RecommendRequest()
        bad.userID = users[0]
        bad.k = 0
        bad.canK = -1
        do {
            _ = try await recommender.recommend(bad)
            XCTFail("k 0, can_k -1 answered")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .invalidArgument)
        }
        client.beginGracefulShutdown()
        _ = await running.result
        return answers
    }

    private func stop(_ server: RunningHerd, _ name: String) {
        kill(server.pid, SIGTERM)
        let ended = server.wait(timeout: 20)
        XCTAssertFalse(ended.timedOut, "\(name): \(ended.transcript)")
        XCTAssertEqual(ended.status, 0, "\(name): \(ended.transcript)")
        XCTAssertEqual(ended.crashSigns, [], "\(name): \(ended.transcript)")
    }

    func testSplitServicesAnswerLikeTheAllInOneServer() async throws {
        let ws = try CLIFixtures.servedWorkspace("split-ws", seed: 7)
        let w = ws.root.path
        let users = Array(try TableFile.read(path: ws.table("user").path, columns: ["enaging_user_id"]).column("enaging_user_id").int64Values!.prefix(4)) + [987_654_321]

        // The all-in-one answers.
        let single = try HerdBinary.start(["serve", "--workspace", w, "--port", "0", "--grpc-port", "0"])
        defer { if single.isRunning { kill(single.pid, SIGKILL) } }
        let singleHTTP = port(single, "listening on http://"), singleGRPC = port(single, "grpc listening on ")
        XCTAssertTrue(singleHTTP > 0 && singleGRPC > 0, single.stderrSoFar)
        guard singleHTTP > 0 && singleGRPC > 0 else { return }
        let expected = try users.map { try recommendHTTP(singleHTTP, $0) }
        let expectedGRPC = try await recommendGRPC(singleGRPC, users)
        for (h, g) in zip(expected, expectedGRPC) {
            XCTAssertEqual(h.ids, g.ids)
            XCTAssertEqual(h.probs.map(Float.init), g.probs)
        }
        XCTAssertTrue(expected.last!.coldStart)
        try assertGRPCMetrics(singleHTTP, calls: users.count, "all-in-one")
        stop(single, "all-in-one")

        // Feature, recall, ranking on free ports; then the recommender with their addresses.
        let dir = try CLIFixtures.scratch("split-config")
        let configURL = dir.appendingPathComponent("services.json")
        var config: [String: Any] = ["workspace": w, "host": "127.0.0.1", "admin_token": "t0ken", "timeout_ms": 2000,
                                     "feature": ["port": 0, "http_port": 0], "recall": ["port": 0, "http_port": 0],
                                     "ranking": ["port": 0, "http_port": 0]]
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        var services: [(String, RunningHerd)] = []
        defer { for (_, s) in services where s.isRunning { kill(s.pid, SIGKILL) } }
        var addresses: [String: Int] = [:], httpPorts: [String: Int] = [:]
        for name in ["feature", "recall", "ranking"] {
            let s = try HerdBinary.start(["serve", name, "--config", configURL.path])
            services.append((name, s))
            let p = port(s, "grpc listening on "), h = port(s, "listening on http://")
            XCTAssertTrue(p > 0 && h > 0, "\(name): \(s.stderrSoFar)")
            guard p > 0 && h > 0 else { return }
            addresses[name] = p
            httpPorts[name] = h
        }
        for name in ["feature", "recall", "ranking"] { config[name] = ["port": 0, "address": "127.0.0.1:\(addresses[name]!)"] }
        config["recommender"] = ["port": 0, "http_port": 0]
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        let recommender = try HerdBinary.start(["serve", "recommender", "--config", configURL.path])
        services.append(("recommender", recommender))
        let http = port(recommender, "listening on http://"), grpc = port(recommender, "grpc listening on ")
        XCTAssertTrue(http > 0 && grpc > 0, recommender.stderrSoFar)
        guard http > 0 && grpc > 0 else { return }

        for (user, e) in zip(users, expected) {
            let a = try recommendHTTP(http, user)
            XCTAssertEqual(a.ids, e.ids, "user \(user)")
            XCTAssertEqual(a.probs, e.probs, "user \(user)")
            XCTAssertEqual(a.coldStart, e.coldStart)
        }
        let overGRPC = try await recommendGRPC(grpc, users)
        for (a, e) in zip(overGRPC, expectedGRPC) {
            XCTAssertEqual(a.ids, e.ids)
            XCTAssertEqual(a.probs, e.probs)
            XCTAssertEqual(a.coldStart, e.coldStart)
            XCTAssertFalse(a.degraded, a.reason)
        }
        try assertGRPCMetrics(http, calls: users.count, "split recommender")
        // Each service's own /metrics counts the calls the recommender made to it.
        for (name, rpc) in [("feature", ["service": "herd.v1.Feature", "method": "GetItemFeatures"]),
                            ("recall", ["service": "herd.v1.Recall", "method": "Search"]),
                            ("ranking", ["service": "herd.v1.Ranking", "method": "Score"])] {
            let text = try metrics(httpPorts[name]!)
            let ok = sample(text, "herd_grpc_requests_total", rpc.merging(["code": "OK"]) { a, _ in a }) ?? 0
            XCTAssertGreaterThanOrEqual(ok, Double(users.count - 1), "\(name)\n\(text)")
            XCTAssertGreaterThanOrEqual(sample(text, "herd_grpc_request_duration_seconds_count", rpc) ?? 0, ok, "\(name)\n\(text)")
        }

        // Admin over gRPC on the recall process: the config's token.
        let client = try makeGRPCClient(address: "127.0.0.1:\(addresses["recall"]!)")
        let running = Task { try await client.runConnections() }
        let recall = Herd_V1_Recall.Client(wrapping: client)
        let info = try await recall.info(Herd_V1_RecallInfoRequest())
        var add = Herd_V1_AddItemRequest()
        add.itemID = 777_777
        add.embedding = [Float](repeating: 0.1, count: Int(info.dimension))
        do {
            _ = try await recall.addItem(add, metadata: ["authorization": "Bearer wrong"])
            XCTFail("a wrong token added an item")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .permissionDenied)
        }
        let added = try await recall.addItem(add, metadata: ["authorization": "Bearer t0ken"])
        XCTAssertEqual(added.indexCount, info.count + 1)
        client.beginGracefulShutdown()
        _ = await running.result

        // SIGTERM: the recommender first, then the services it used.
        for (name, s) in services.reversed() { stop(s, name) }
    }

    func testSplitServeRefusesBadConfigs() throws {
        let dir = try CLIFixtures.scratch("split-bad")
        let config = dir.appendingPathComponent("c.json")
        for (text, needle) in [(#"{"workspace": "/nope", "recal": {"port": 1}}"#, "unknown key 'recal'"),
                               (#"{"workspace": "/nope", "recall": {"port": 70000}}"#, "recall.port"),
                               (#"{"workspace": "/nope", "ranking": {"address": "nohost"}}"#, "HOST:PORT"),
                               ("not json", "not a JSON object")] {
            try text.write(to: config, atomically: true, encoding: .utf8)
            let run = try HerdBinary.run(["serve", "recall", "--config", config.path])
            XCTAssertFalse(run.succeeded, run.transcript)
            XCTAssertTrue(run.stderr.contains(needle), "\(needle): \(run.transcript)")
            XCTAssertEqual(run.crashSigns, [], run.transcript)
        }
        let noConfig = try HerdBinary.run(["serve", "recall"])
        XCTAssertFalse(noConfig.succeeded)
        XCTAssertTrue(noConfig.stderr.contains("--config"), noConfig.transcript)
        let badName = try HerdBinary.run(["serve", "rankr", "--config", config.path])
        XCTAssertFalse(badName.succeeded)
        XCTAssertTrue(badName.stderr.contains("unknown service"), badName.transcript)
    }
}
