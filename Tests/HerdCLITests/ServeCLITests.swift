import Foundation
@testable import HerdCLI
import HerdFeatures
import HerdTraining
import XCTest

/// `herd serve` after the workflow: the recommend route (Friesian's JSON), bad requests → 400
/// JSON, health/readiness/metrics, the page, a short `herd loadtest`, and SIGTERM → clean exit.
final class ServeCLITests: XCTestCase {
    private func get(_ port: Int, _ path: String) throws -> (status: Int, body: String) {
        // A raw keep-alive-free GET through the load client's connection type, reading the whole body.
        let target = try HTTPTarget(url: "http://127.0.0.1:\(port)\(path)")
        let c = HTTPConnection(target: target, timeout: 10)
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n".utf8)
        c.keepBody = true
        let (status, _) = try c.roundTrip(request)
        return (status, String(decoding: c.lastBody, as: UTF8.self))
    }

    private func post(_ port: Int, _ path: String, _ body: String) throws -> (status: Int, body: String) {
        let c = HTTPConnection(target: try HTTPTarget(url: "http://127.0.0.1:\(port)\(path)"), timeout: 10)
        c.keepBody = true
        let bytes = Array(body.utf8)
        let head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(bytes.count)\r\n\r\n"
        let (status, _) = try c.roundTrip(Array(head.utf8) + bytes)
        return (status, String(decoding: c.lastBody, as: UTF8.self))
    }

    private func status(_ port: Int, _ path: String) throws -> Int {
        let c = HTTPConnection(target: try HTTPTarget(url: "http://127.0.0.1:\(port)\(path)"), timeout: 10)
        return try c.roundTrip(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)).status
    }

    func testServeAnswersRecommendationsAndShutsDownOnSIGTERM() throws {
        let ws = try CLIFixtures.servedWorkspace("serve-ws", seed: 5)
        let w = ws.root.path
        let users = try TableFile.read(path: ws.table("user").path, columns: ["enaging_user_id"]).column("enaging_user_id").int64Values!
        let items = Set(try TableFile.read(path: ws.table("item").path, columns: ["tweet_id"]).column("tweet_id").int64Values!)

        // NOTE: with coalesced ranking on (off by default), so the batcher runs end to end.
        let server = try HerdBinary.start(["serve", "--workspace", w, "--port", "0", "--grpc-port", "0", "--coalesce-rows", "512"])
        defer { if server.isRunning { kill(server.pid, SIGKILL) } }
        var port = 0
        let deadline = Date().addingTimeInterval(60)
        while port == 0 && Date() < deadline && server.isRunning {
            let out = (try? String(contentsOf: server.logs.appendingPathComponent("stdout"), encoding: .utf8)) ?? ""
            if let line = out.split(separator: "\n").first(where: { $0.hasPrefix("listening on http://") }),
               let p = line.split(separator: ":").last.flatMap({ Int($0) }) {
                port = p
            } else {
                usleep(100_000)
            }
        }
        XCTAssertGreaterThan(port, 0, "serve never said it was listening\n\(server.stderrSoFar)")
        guard port > 0 else { return }

        // A known user: k distinct item ids, probabilities descending, Friesian's keys.
        let (okStatus, okBody) = try get(port, "/recommender/recommend/\(users[0])?k=5&canK=40")
        XCTAssertEqual(okStatus, 200, okBody)
        let answer = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(okBody.utf8)) as? [String: Any])
        let ids = try XCTUnwrap(answer["ids"] as? [Int]).map(Int64.init)
        let probs = try XCTUnwrap(answer["probs"] as? [Double])
        XCTAssertEqual(ids.count, 5)
        XCTAssertEqual(Set(ids).count, 5)
        XCTAssertTrue(ids.allSatisfy(items.contains))
        XCTAssertEqual(probs, probs.sorted(by: >))
        XCTAssertEqual(answer["success"] as? Bool, true)
        XCTAssertTrue(answer["errorCode"] is NSNull && answer["errorMsg"] is NSNull, okBody)

        // Unknown user: cold start.
        let (_, coldBody) = try get(port, "/recommender/recommend/987654321?k=3")
        XCTAssertTrue(coldBody.contains("\"coldStart\":true"), coldBody)

        // Bad requests: 400 with a JSON error, and the server keeps answering.
        for bad in ["/recommender/recommend/abc", "/recommender/recommend/1?k=0", "/recommender/recommend/1?k=-3",
                    "/recommender/recommend/1?k=99999999", "/recommender/recommend/1?canK=x", "/recommender/recommend/1?k=20&canK=10"] {
            XCTAssertEqual(try status(port, bad), 400, bad)
        }
        XCTAssertEqual(try status(port, "/nope"), 404)
        XCTAssertEqual(try status(port, "/healthz"), 200)
        XCTAssertEqual(try status(port, "/readyz"), 200)
        let page = try get(port, "/")
        XCTAssertTrue(page.body.contains("/recommender/recommend/"), page.body)

        // A short load test through the real client: no errors.
        let loadIDs = try idsFile(users.prefix(50).map(String.init), scratch: "serve-ids")
        let summary = try assertCleanLoadTest(base: "http://127.0.0.1:\(port)", ids: loadIDs, concurrency: 2)

        let metrics = try get(port, "/metrics").body
        XCTAssertTrue(metrics.contains("herd_http_requests_total"), metrics)
        XCTAssertTrue(metrics.contains("route=\"/recommender/recommend\""), metrics)
        XCTAssertTrue(metrics.contains("herd_recommend_stage_duration_seconds"), metrics)
        XCTAssertTrue(metrics.contains("status=\"400\""), metrics)
        // The ranking batcher's counters (--coalesce-rows): every ranked request went through it.
        let batched = metrics.split(separator: "\n").first { $0.hasPrefix("herd_ranking_requests_total ") }
        XCTAssertGreaterThanOrEqual(Int(batched?.split(separator: " ").last ?? "") ?? -1, summary["requests"] as? Int ?? 0, metrics)
        XCTAssertTrue(metrics.contains("herd_ranking_forwards_total "), metrics)
        // The first layer's row cache (on by default): the load ranked the same items again.
        func counter(_ name: String) -> Int { Int(metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }?.split(separator: " ").last ?? "") ?? -1 }
        XCTAssertGreaterThan(counter("herd_ranking_row_cache_misses_total"), 0, metrics)
        XCTAssertGreaterThan(counter("herd_ranking_row_cache_hits_total"), 0, metrics)
        XCTAssertGreaterThan(counter("herd_ranking_row_cache_entries"), 0, metrics)
        // The model's executed work: every ranked candidate row counted, some multiply-adds per row.
        XCTAssertGreaterThanOrEqual(counter("herd_ranking_model_rows_total"), counter("herd_ranking_rows_total"), metrics)
        XCTAssertGreaterThan(counter("herd_ranking_model_macs_total"), counter("herd_ranking_model_rows_total"), metrics)

        // TF-Serving REST: the inputs from the metadata, rows of the test table, predictions equal
        // to `herd predict` on the same export and rows.
        let (metaStatus, metaBody) = try get(port, "/v1/models/wnd/metadata")
        XCTAssertEqual(metaStatus, 200, metaBody)
        let meta = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(metaBody.utf8)) as? [String: Any])
        let signature = try XCTUnwrap((meta["metadata"] as? [String: Any])?["signature_def"] as? [String: Any])
        let inputs = try XCTUnwrap(signature["inputs"] as? [String: Any]).keys.sorted()
        let test = try TableFile.read(path: ws.table("test").path)
        var instances: [[String: Any]] = []
        for r in 0..<4 {
            var row: [String: Any] = [:]
            for name in inputs {
                let c = try test.column(name)
                if c.isNull(r) { continue }
                if let v = c.int64Values { row[name] = v[r] } else if let v = c.numericValues { row[name] = v[r] }
                else if let (o, inner) = c.listParts, case .int64(let v) = inner { row[name] = Array(v[Int(o[r])..<Int(o[r + 1])]) }
            }
            instances.append(row)
        }
        let body = String(decoding: try JSONSerialization.data(withJSONObject: ["instances": instances]), as: UTF8.self)
        let (pStatus, pBody) = try post(port, "/v1/models/wnd:predict", body)
        XCTAssertEqual(pStatus, 200, pBody)
        let served = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(pBody.utf8)) as? [String: Any])?["predictions"] as? [[Double]]).map { $0[0] }
        let outFile = try CLIFixtures.scratch("serve-pred").appendingPathComponent("p.txt").path
        let offline = try HerdBinary.run(["predict", "--model", ws.model("wnd", version: 1).path, "--data", ws.table("test").path, "--out", outFile])
        XCTAssertTrue(offline.succeeded, offline.transcript)
        let expected = try String(contentsOfFile: outFile, encoding: .utf8).split(separator: "\n").prefix(4).compactMap { Double($0) }
        XCTAssertEqual(served.count, 4)
        for (a, b) in zip(served, expected) { XCTAssertEqual(a, b, accuracy: 1e-5, "served \(served) vs herd predict \(expected)") }
        // The columnar form gives the same numbers under "outputs".
        var columns: [String: [Any]] = [:]
        for name in inputs { columns[name] = instances.map { $0[name] ?? 0 } }
        let (cStatus, cBody) = try post(port, "/v1/models/wnd/versions/1:predict",
                                        String(decoding: try JSONSerialization.data(withJSONObject: ["inputs": columns]), as: UTF8.self))
        XCTAssertEqual(cStatus, 200, cBody)
        let outputs = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(cBody.utf8)) as? [String: Any])?["outputs"] as? [[Double]]).map { $0[0] }
        for (a, b) in zip(outputs, served) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        // Bad requests: JSON errors with 4xx, never a crash.
        for (path, bad, code) in [("/v1/models/wnd:predict", "{not json", 400), ("/v1/models/wnd:predict", #"{"instances": [{"nope": 1}]}"#, 400),
                                  ("/v1/models/wnd:predict", #"{"instances": [{"\#(inputs[0])": -5}]}"#, 400),
                                  ("/v1/models/wnd:predict", #"{"rows": []}"#, 400), ("/v1/models/nosuch:predict", #"{"instances": [{}]}"#, 404),
                                  ("/v1/models/wnd/versions/9:predict", #"{"instances": [{}]}"#, 404)] {
            let (st, b) = try post(port, path, bad)
            XCTAssertEqual(st, code, "\(path) \(bad) → \(b)")
            XCTAssertTrue(b.contains("\"error\""), b)
        }
        // A corrupt new version is refused while version 1 keeps serving.
        let v2 = ws.model("wnd", version: 2)
        try FileManager.default.copyItem(at: ws.model("wnd", version: 1), to: v2)
        let weights = v2.appendingPathComponent("weights.safetensors")
        var bytes = try Data(contentsOf: weights)
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: weights)
        let (again, againBody) = try post(port, "/v1/models/wnd:predict", body)
        XCTAssertEqual(again, 200, againBody)
        let (_, statusBody) = try get(port, "/v1/models/wnd")
        XCTAssertTrue(statusBody.contains("\"state\":\"END\"") && statusBody.contains("\"state\":\"AVAILABLE\""), statusBody)

        kill(server.pid, SIGTERM)
        let ended = server.wait(timeout: 15)
        XCTAssertFalse(ended.timedOut, ended.transcript)
        XCTAssertEqual(ended.status, 0, ended.transcript)
        XCTAssertEqual(ended.crashSigns, [], ended.transcript)
    }

    func testServeWithoutAWorkspaceSaysWhatToRun() throws {
        assertFailsCleanly(try HerdBinary.run(["serve", "--workspace", CLIFixtures.scratch("serve-empty").path, "--port", "0"]),
                           mentioning: ["user.safetensors is missing"])
    }
}
