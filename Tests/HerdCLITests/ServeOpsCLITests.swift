import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HerdFeatures
import HerdTestSupport
import HerdTraining
import XCTest

/// One RecSys workspace through the whole workflow (generate → preprocess → train wnd and
/// twotower → predict embeddings → nearline, Flat index), made once per test process. Tests that
/// change a workspace (admin adds, nearline into Redis) work on a copy.
enum ServeFixture {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var made: Workspace?

    static func workspace() throws -> Workspace {
        try lock.withLock {
            if let made { return made }
            let ws = try CLIFixtures.servedWorkspace("serveops-ws", seed: 5, timeout: 180)
            made = ws
            return ws
        }
    }

    /// A private copy of the fixture workspace.
    static func copy(_ name: String) throws -> Workspace {
        let source = try workspace()
        let dir = try CLIFixtures.scratch(name).appendingPathComponent("ws")
        try FileManager.default.copyItem(at: source.root, to: dir)
        return Workspace(path: dir.path)
    }

    /// Encoded user ids of the user table, and the fitted pipeline's raw ids (`values[id - 1]`).
    static func users(_ ws: Workspace) throws -> (encoded: [Int64], raw: [String]) {
        let encoded = try TableFile.read(path: ws.table("user").path, columns: ["enaging_user_id"]).column("enaging_user_id").int64Values!
        return (encoded, try index(ws, "enaging_user_id").values)
    }

    /// The fitted pipeline's string index over `column`.
    static func index(_ ws: Workspace, _ column: String) throws -> StringIndex {
        let p = try FittedPipeline.load(path: ws.fittedPipeline.path)
        guard let i = p.stringIndices.first(where: { $0.columns.contains(column) }) else { throw FixtureError("no index over \(column)") }
        return i
    }
}

/// A running `herd serve` and its port.
final class ServeProcess {
    let process: RunningHerd
    let port: Int

    init(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        process = try HerdBinary.start(["serve", "--port", "0", "--grpc-port", "0"] + args)
        var port = 0
        let deadline = Date().addingTimeInterval(90)
        while port == 0 && Date() < deadline && process.isRunning {
            let out = (try? String(contentsOf: process.logs.appendingPathComponent("stdout"), encoding: .utf8)) ?? ""
            if let l = out.split(separator: "\n").first(where: { $0.hasPrefix("listening on http://") }),
               let p = l.split(separator: ":").last.flatMap({ Int($0) }) {
                port = p
            } else {
                usleep(100_000)
            }
        }
        guard port > 0 else {
            let stderr = process.stderrSoFar
            if process.isRunning { kill(process.pid, SIGKILL) }
            throw FixtureError("herd serve \(args.joined(separator: " ")) never said it was listening\n\(stderr)")
        }
        self.port = port
    }

    var base: String { "http://127.0.0.1:\(port)" }

    /// SIGTERM, and checks a clean exit.
    func stop(file: StaticString = #filePath, line: UInt = #line) {
        guard process.isRunning else { return }
        kill(process.pid, SIGTERM)
        let ended = process.wait(timeout: 20)
        XCTAssertEqual(ended.status, 0, ended.transcript, file: file, line: line)
        XCTAssertEqual(ended.crashSigns, [], ended.transcript, file: file, line: line)
    }

    deinit { if process.isRunning { kill(process.pid, SIGKILL) } }
}

/// One HTTP exchange through URLSession (status, body, headers).
struct HTTPReply {
    let status: Int
    let body: Data
    let headers: [String: String]
    var text: String { String(decoding: body, as: UTF8.self) }
    func object() throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: body) as? [String: Any], text)
    }
}

func http(_ method: String, _ url: String, body: Data? = nil, headers: [String: String] = [:], timeout: TimeInterval = 30) throws -> HTTPReply {
    var request = URLRequest(url: URL(string: url)!, timeoutInterval: timeout)
    request.httpMethod = method
    request.httpBody = body
    for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
    if body != nil && headers["Content-Type"] == nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
    final class Box: @unchecked Sendable { var reply: Result<HTTPReply, Error>? }
    let box = Box()
    let done = DispatchSemaphore(value: 0)
    URLSession.shared.dataTask(with: request) { data, response, error in
        if let error { box.reply = .failure(error) } else {
            let r = response as! HTTPURLResponse
            var h: [String: String] = [:]
            for (k, v) in r.allHeaderFields { h[String(describing: k).lowercased()] = String(describing: v) }
            box.reply = .success(HTTPReply(status: r.statusCode, body: data ?? Data(), headers: h))
        }
        done.signal()
    }.resume()
    guard done.wait(timeout: .now() + timeout + 5) == .success, let reply = box.reply else { throw FixtureError("\(method) \(url): no answer") }
    return try reply.get()
}

func json(_ object: Any) throws -> Data { try JSONSerialization.data(withJSONObject: object) }

/// The operational side of `herd serve`: the page in headless Chromium, admin routes, Criteo
/// exports over TF-Serving REST, raw ids, and Redis end to end (down → degraded → back).
final class ServeOpsCLITests: XCTestCase {
    // MARK: 1. The page, rendered by Chromium

    func testPageShowsRecommendationsInHeadlessChromium() throws {
        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("chromium is not installed (scripts/bootstrap installs Debian's chromium)")
        }
        let ws = try ServeFixture.workspace()
        let (encoded, raw) = try ServeFixture.users(ws)
        let user = raw[Int(encoded[0]) - 1]
        let server = try ServeProcess(["--workspace", ws.root.path])
        defer { server.stop() }

        // What the page should show: the same call made directly.
        let direct = try http("GET", "\(server.base)/recommender/recommend/\(user)?k=5&canK=50").object()
        let expected = try XCTUnwrap(direct["ids"] as? [String], "\(direct)")
        XCTAssertEqual(expected.count, 5)

        let profile = try CLIFixtures.scratch("chromium-profile")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: chromium)
        // NOTE: --no-sandbox because tests may run as root; the virtual-time budget lets the
        // page's fetch finish before the DOM is dumped.
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                       "--user-data-dir=\(profile.path)", "--virtual-time-budget=15000", "--dump-dom",
                       "\(server.base)/?user=\(user)&k=5&canK=50"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let reader = DispatchQueue(label: "chromium-stdout")
        nonisolated(unsafe) var dom = Data()
        let read = DispatchSemaphore(value: 0)
        reader.async {
            dom = out.fileHandleForReading.readDataToEndOfFile()
            read.signal()
        }
        if read.wait(timeout: .now() + 120) == .timedOut {
            p.terminate()
            XCTFail("chromium did not finish within 120 s")
            return
        }
        p.waitUntilExit()
        // NOTE: only the rendered part: the page's script holds the same markup as templates.
        let full = String(decoding: dom, as: UTF8.self)
        let html = full.components(separatedBy: "<script>").first ?? full
        XCTAssertTrue(html.contains(#"data-state="done""#), "the page did not finish:\n\(html.suffix(3000))")
        let rows = html.components(separatedBy: #"<tr class="rec">"#).count - 1
        XCTAssertEqual(rows, 5, html)
        for id in expected { XCTAssertTrue(html.contains(#"<td class="item">\#(id)</td>"#), "item \(id) missing from the page") }
        XCTAssertTrue(html.contains(#"data-stage="ranking""#) && html.contains(#"data-stage="recall""#), "no per-stage timings")
        XCTAssertTrue(html.contains("Server-Timing: recall;dur="), "no Server-Timing line")
        // Item features from the store (the item rows' columns).
        XCTAssertTrue(html.contains("language="), "no item features on the page")
    }

    // MARK: 2. Admin routes

    func testAdminRoutesNeedTheTokenAndAddedItemsAreRecommended() throws {
        let ws = try ServeFixture.copy("serveops-admin")
        // No token configured: 403 saying how to enable.
        let plain = try ServeProcess(["--workspace", ws.root.path])
        let forbidden = try http("POST", "\(plain.base)/admin/reload", headers: ["Authorization": "Bearer x"])
        XCTAssertEqual(forbidden.status, 403, forbidden.text)
        XCTAssertTrue(forbidden.text.contains("--admin-token-file"), forbidden.text)
        plain.stop()

        let tokenFile = try CLIFixtures.scratch("serveops-token").appendingPathComponent("token")
        try "s3cret-token\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        let server = try ServeProcess(["--workspace", ws.root.path, "--admin-token-file", tokenFile.path])
        defer { server.stop() }
        let auth = ["Authorization": "Bearer s3cret-token"]
        XCTAssertEqual(try http("POST", "\(server.base)/admin/reload").status, 401)
        XCTAssertEqual(try http("POST", "\(server.base)/admin/reload", headers: ["Authorization": "Bearer s3cret-tokeN"]).status, 401)
        XCTAssertEqual(try http("POST", "\(server.base)/admin/items", body: Data("{}".utf8)).status, 401)

        // A new item whose embedding is a user's own: recall must find it first for that user.
        let embeddings = try SafeTensorsFile(url: ws.embeddingTable("user"))
        let userIDs = try embeddings.int64s("ids")
        let vectors = try embeddings.tensor("embeddings").array
        let d = vectors.count / userIDs.count
        let user = userIDs[3]
        let vector = Array(vectors[(3 * d)..<(4 * d)]).map(Double.init)
        // Every indexed item: the known tweets and, under their row keys, those unseen in training.
        let items = try SafeTensorsFile(url: ws.embeddingTable("item")).int64s("ids")
        let newID = (items.max() ?? 0) + 1000
        let add: [String: Any] = ["items": [["id": newID, "embedding": vector, "features": ["language": 1, "tweet_type": 2]]]]
        let added = try http("POST", "\(server.base)/admin/items", body: try json(add), headers: auth)
        XCTAssertEqual(added.status, 200, added.text)
        XCTAssertEqual(try added.object()["added"] as? Int, 1, added.text)

        func recommended() throws -> (ids: [Int64], items: [Any]) {
            let r = try http("GET", "\(server.base)/recommender/recommend/\(user)?k=10&canK=10&idType=encoded&details=1").object()
            XCTAssertEqual(r["source"] as? String, "ranked", "\(r)")
            return (try XCTUnwrap(r["ids"] as? [Int]).map(Int64.init), try XCTUnwrap(r["items"] as? [Any]))
        }
        let (ids, details) = try recommended()
        let at = try XCTUnwrap(ids.firstIndex(of: newID), "the added item is not among \(ids)")
        let row = try XCTUnwrap(details[at] as? [String: Any], "no feature row for the added item")
        XCTAssertEqual(row["language"] as? Int, 1)
        XCTAssertEqual(row["tweet_id"] as? Int, Int(newID))

        // Reload under load: a new ranking version is picked up, the index comes back from disk
        // with the item (the add saved it), and no request in flight fails.
        try FileManager.default.copyItem(at: ws.model("wnd", version: 1), to: ws.model("wnd", version: 2))
        let loadIDs = try idsFile(userIDs.prefix(50).map(String.init), scratch: "serveops-admin-ids")
        let load = try HerdBinary.start(["loadtest", "--url", "\(server.base)/recommender/recommend/{id}?k=10&canK=50",
                                         "--ids", loadIDs.path, "--concurrency", "2", "--duration", "3", "--warmup", "0", "--json"])
        usleep(500_000)
        for _ in 0..<3 {
            let reloaded = try http("POST", "\(server.base)/admin/reload", headers: auth)
            XCTAssertEqual(reloaded.status, 200, reloaded.text)
            XCTAssertEqual(try reloaded.object()["index_count"] as? Int, items.count + 1, reloaded.text)
            XCTAssertEqual(try reloaded.object()["ranking_version"] as? Int, 2, reloaded.text)
            usleep(300_000)
        }
        let summary = try assertSucceededJSON(load.wait(timeout: 60))
        XCTAssertEqual(summary["errors"] as? Int, 0, "requests failed during reloads: \(summary)")
        XCTAssertGreaterThan(summary["requests"] as? Int ?? 0, 0)
        XCTAssertTrue(try recommended().ids.contains(newID))

        // Bad bodies: 400 with a JSON error.
        for bad in ["{not json", #"{"items": []}"#, #"{"items": [{"id": 5, "embedding": [1, 2]}]}"#,
                    #"{"items": [{"id": -1, "embedding": []}]}"#,
                    "{\"items\": [{\"id\": 5, \"embedding\": \(vector), \"features\": {\"nope\": 1}}]}",
                    "{\"items\": [{\"id\": 5, \"embedding\": \(vector), \"features\": {\"language\": \"en\"}}]}"] {
            let r = try http("POST", "\(server.base)/admin/items", body: Data(bad.utf8), headers: auth)
            XCTAssertEqual(r.status, 400, "\(bad) → \(r.text)")
            XCTAssertTrue(r.text.contains("\"error\""), r.text)
        }
    }

    // MARK: 3. Criteo-file exports over TF-Serving REST

    func testCriteoExportsPredictOverRESTLikeHerdPredict() throws {
        let ws = try ServeFixture.workspace()
        let dlrm = try CLIFixtures.trainedModel("dlrm").out, wnd = try CLIFixtures.trainedModel("wnd").out
        // Both directory forms: a `herd train --out` directory and the export inside it.
        let server = try ServeProcess(["--workspace", ws.root.path,
                                       "--models", "ctr_dlrm=\(dlrm.path),ctr_wnd=\(wnd.appendingPathComponent("model").path)"])
        defer { server.stop() }
        let testFile = try CLIFixtures.testFile()
        let lines = Array(try CLIFixtures.lines(testFile).prefix(8))
        var instances: [[String: Any]] = []
        for line in lines {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            XCTAssertEqual(f.count, 40, line)
            var row: [String: Any] = ["label": Int(f[0]) ?? 0]
            for j in 0..<13 where !f[1 + j].isEmpty { row["I\(j + 1)"] = Int(f[1 + j])! }
            // Empty categorical fields: sent as "" (a client copying the file) or left out.
            for c in 0..<26 where !f[14 + c].isEmpty || c % 2 == 0 { row["C\(c + 1)"] = f[14 + c] }
            instances.append(row)
        }
        for (name, dir) in [("ctr_dlrm", dlrm), ("ctr_wnd", wnd)] {
            let reply = try http("POST", "\(server.base)/v1/models/\(name):predict", body: try json(["instances": instances]))
            XCTAssertEqual(reply.status, 200, reply.text)
            let served = try XCTUnwrap(try reply.object()["predictions"] as? [[Double]]).map { $0[0] }
            let out = try CLIFixtures.scratch("serveops-pred").appendingPathComponent("p.txt").path
            let offline = try HerdBinary.run(["predict", "--model", dir.appendingPathComponent("model").path, "--data", testFile, "--out", out])
            XCTAssertTrue(offline.succeeded, offline.transcript)
            let expected = try CLIFixtures.lines(out).prefix(lines.count).compactMap { Double($0) }
            XCTAssertEqual(served.count, lines.count)
            for (a, b) in zip(served, expected) { XCTAssertEqual(a, b, accuracy: 1e-5, "\(name): served \(served) vs herd predict \(expected)") }

            // Columnar form: same numbers under "outputs".
            var columns: [String: [Any]] = [:]
            for c in (1...13).map({ "I\($0)" }) + (1...26).map({ "C\($0)" }) { columns[c] = instances.map { $0[c] ?? NSNull() } }
            let col = try http("POST", "\(server.base)/v1/models/\(name)/versions/1:predict", body: try json(["inputs": columns]))
            XCTAssertEqual(col.status, 200, col.text)
            let outputs = try XCTUnwrap(try col.object()["outputs"] as? [[Double]]).map { $0[0] }
            for (a, b) in zip(outputs, served) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        }
        let meta = try http("GET", "\(server.base)/v1/models/ctr_dlrm/metadata")
        XCTAssertEqual(meta.status, 200, meta.text)
        XCTAssertTrue(meta.text.contains("\"C26\"") && meta.text.contains("DT_STRING") && meta.text.contains("\"I13\""), meta.text)
        let status = try http("GET", "\(server.base)/v1/models/ctr_wnd")
        XCTAssertTrue(status.text.contains("AVAILABLE"), status.text)
        for bad in [#"{"instances": [{"C1": "xyz"}]}"#, #"{"instances": [{"C1": "123456789"}]}"#, #"{"instances": [{"I1": "abc"}]}"#,
                    #"{"instances": [{"Z9": 1}]}"#, #"{"inputs": {"I1": [1, 2], "I2": [1]}}"#] {
            let r = try http("POST", "\(server.base)/v1/models/ctr_dlrm:predict", body: Data(bad.utf8))
            XCTAssertEqual(r.status, 400, "\(bad) → \(r.text)")
            XCTAssertTrue(r.text.contains("\"error\""), r.text)
        }
        // The workspace's own model still serves beside them.
        XCTAssertEqual(try http("GET", "\(server.base)/v1/models/wnd").status, 200)
    }

    func testServeRefusesBadModelsAndTokenFlags() throws {
        let ws = try ServeFixture.workspace()
        let empty = try CLIFixtures.scratch("serveops-emptytoken").appendingPathComponent("token")
        try "\n".write(to: empty, atomically: true, encoding: .utf8)
        for (args, message) in [(["--admin-token-file", empty.path], "non-empty"), (["--admin-token-file", "/nonexistent/t"], "cannot read"),
                                (["--models", "x"], "NAME=DIR"), (["--models", "x=/nonexistent/dir"], "no such directory")] {
            assertFailsCleanly(try HerdBinary.run(["serve", "--workspace", ws.root.path, "--port", "0"] + args, timeout: 60), mentioning: [message])
        }
    }

    // MARK: 5. Raw and encoded ids

    func testRawUserIDsGetRawItemIDs() throws {
        let ws = try ServeFixture.workspace()
        let (encoded, raw) = try ServeFixture.users(ws)
        let items = try ServeFixture.index(ws, "tweet_id").values
        let server = try ServeProcess(["--workspace", ws.root.path])
        defer { server.stop() }
        for u in encoded.prefix(5) {
            let rawID = raw[Int(u) - 1]
            let byRaw = try http("GET", "\(server.base)/recommender/recommend/\(rawID)?k=5&canK=40").object()
            let byEncoded = try http("GET", "\(server.base)/recommender/recommend/\(u)?k=5&canK=40").object()
            XCTAssertEqual(byRaw["coldStart"] as? Bool, false, "\(byRaw)")
            let encodedItems = try XCTUnwrap(byEncoded["ids"] as? [Int]).map(Int64.init)
            XCTAssertEqual(try XCTUnwrap(byRaw["encodedIds"] as? [Int]).map(Int64.init), encodedItems)
            XCTAssertEqual(try XCTUnwrap(byRaw["ids"] as? [String]), encodedItems.map { items[Int($0) - 1] })
            XCTAssertEqual(byRaw["userId"] as? String, rawID)
            XCTAssertEqual((byRaw["encodedUserId"] as? NSNumber)?.int64Value, u)
            XCTAssertEqual(byRaw["probs"] as? [Double], byEncoded["probs"] as? [Double])
            // idType forces a reading.
            let forced = try http("GET", "\(server.base)/recommender/recommend/\(u)?k=5&canK=40&idType=encoded").object()
            XCTAssertEqual(forced["ids"] as? [Int], byEncoded["ids"] as? [Int])
        }
        // An unknown raw id: cold start, marked.
        let unknown = try http("GET", "\(server.base)/recommender/recommend/\(String(repeating: "F", count: 32))?k=3").object()
        XCTAssertEqual(unknown["coldStart"] as? Bool, true, "\(unknown)")
        XCTAssertEqual((unknown["ids"] as? [Any])?.count, 3)
        // Not the shape of a raw id (32 upper-case hex digits) and not an integer: refused.
        let malformed = try http("GET", "\(server.base)/recommender/recommend/abc")
        XCTAssertEqual(malformed.status, 400, malformed.text)
        XCTAssertTrue(malformed.text.contains("neither a raw user id"), malformed.text)
        let bad = try http("GET", "\(server.base)/recommender/recommend/abc?idType=sideways")
        XCTAssertEqual(bad.status, 400, bad.text)
        XCTAssertEqual(try http("GET", "\(server.base)/recommender/recommend/abc?idType=encoded").status, 400)
    }

    // MARK: 4. Redis end to end

    func testRedisBackedServingMatchesEmbeddedDegradesAndRecovers() throws {
        let redis = try RedisServer()
        defer { redis.stop() }
        let embeddedWS = try ServeFixture.workspace()
        let ws = try ServeFixture.copy("serveops-redis")
        let nearline = try HerdBinary.run(["nearline", "--workspace", ws.root.path, "--redis", redis.url], timeout: 120)
        XCTAssertTrue(nearline.succeeded, nearline.transcript)
        guard nearline.succeeded else { return }
        let (users, _) = try ServeFixture.users(ws)

        let embedded = try ServeProcess(["--workspace", embeddedWS.root.path])
        defer { embedded.stop() }
        let served = try ServeProcess(["--workspace", ws.root.path, "--redis", redis.url + "?timeout_ms=100&connect_timeout_ms=100", "--timeout-ms", "500"])
        defer { served.stop() }
        XCTAssertTrue(served.process.stderrSoFar.contains("redis://"), served.process.stderrSoFar)

        func answer(_ s: ServeProcess, _ u: Int64) throws -> [String: Any] {
            try http("GET", "\(s.base)/recommender/recommend/\(u)?k=8&canK=50").object()
        }
        func assertSameAnswers(_ what: String) throws {
            for u in users.prefix(10) {
                let a = try answer(embedded, u), b = try answer(served, u)
                XCTAssertEqual(b["source"] as? String, "ranked", "\(what): \(b)")
                XCTAssertEqual(b["ids"] as? [Int], a["ids"] as? [Int], "\(what): user \(u)")
                let pa = try XCTUnwrap(a["probs"] as? [Double]), pb = try XCTUnwrap(b["probs"] as? [Double])
                for (x, y) in zip(pa, pb) { XCTAssertEqual(x, y, accuracy: 1e-6, "\(what): user \(u)") }
            }
        }
        try assertSameAnswers("Redis up")
        XCTAssertEqual(try http("GET", "\(served.base)/readyz").status, 200)

        // The same rows over the unix socket, behind a near cache of item rows: the same answers
        // (twice, so the second round comes from the cache), its counters in /metrics.
        do {
            let cached = try ServeProcess(["--workspace", ws.root.path, "--redis", redis.unixURL + "&item_cache=1000&item_cache_ttl_ms=60000"])
            defer { cached.stop() }
            for round in 0..<2 {
                for u in users.prefix(10) {
                    let a = try answer(embedded, u), b = try answer(cached, u)
                    XCTAssertEqual(b["ids"] as? [Int], a["ids"] as? [Int], "near cache, round \(round): user \(u)")
                    let pa = try XCTUnwrap(a["probs"] as? [Double]), pb = try XCTUnwrap(b["probs"] as? [Double])
                    for (x, y) in zip(pa, pb) { XCTAssertEqual(x, y, accuracy: 1e-6, "near cache: user \(u)") }
                }
            }
            let metrics = try http("GET", "\(cached.base)/metrics").text
            let hits = metrics.split(separator: "\n").first { $0.hasPrefix("herd_feature_cache_hits_total{kind=\"item\"}") }
            XCTAssertGreaterThan(Int(hits?.split(separator: " ").last ?? "") ?? 0, 0, metrics)
            XCTAssertTrue(metrics.contains("herd_feature_cache_capacity{kind=\"item\"} 1000"), metrics)
        }

        // Redis down: answers still come, degraded, within the deadline; /readyz says degraded.
        try redis.cli(["SAVE"])  // so the restarted server has the rows again
        redis.stop()
        // Before any request: the readiness probe PINGs a store idle for over a second.
        usleep(1_200_000)
        let idle = try http("GET", "\(served.base)/readyz")
        XCTAssertEqual(idle.status, 503, "Redis is down but /readyz says \(idle.text)")
        for u in users.prefix(5) {
            let t0 = Date()
            let a = try answer(served, u)
            let seconds = Date().timeIntervalSince(t0)
            XCTAssertEqual(a["success"] as? Bool, true, "\(a)")
            XCTAssertEqual(a["degraded"] as? Bool, true, "\(a)")
            XCTAssertEqual((a["ids"] as? [Any])?.count, 8, "\(a)")
            XCTAssertLessThan(seconds, 1.5, "a degraded answer took \(seconds) s (deadline 0.5 s)")
        }
        let down = try http("GET", "\(served.base)/readyz")
        XCTAssertEqual(down.status, 503, down.text)
        XCTAssertTrue(down.text.contains("degraded"), down.text)

        // Redis back on the same port: ready again without restarting herd, full answers again.
        try redis.start()
        let deadline = Date().addingTimeInterval(40)
        var ready = false
        while Date() < deadline {
            _ = try? answer(served, users[0])
            if try http("GET", "\(served.base)/readyz").status == 200 { ready = true; break }
            usleep(500_000)
        }
        let last = (try? http("GET", "\(served.base)/readyz").text) ?? "no answer"
        XCTAssertTrue(ready, "/readyz did not come back after Redis restarted: \(last)")
        try assertSameAnswers("Redis back")
    }
}
