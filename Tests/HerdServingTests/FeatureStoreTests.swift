import Foundation
import HerdFeatures
import HerdServing
import HerdTestSupport
import XCTest

/// The contract every `FeatureStore` meets; run against each implementation below.
enum FeatureStoreContract {
    static func userTable() throws -> FeatureTable {
        try FeatureTable([
            ("user_id", Column(int64s: [7, -3, Int64.max, 42])),
            ("age", Column(doubles: [31.5, nil, -0.0, 1e-300])),
            ("country", Column(strings: ["fr", "", nil, "日本"])),
            ("history", Column(int64Lists: [[1, 2, 3], [], nil, [Int64.min]])),
            ("tags", Column(stringLists: [["a", "b"], nil, [""], ["ü"]])),
            ("score", Column(int64s: [0, nil, -1, 1 << 40])),
        ])
    }

    static func run(_ store: any FeatureStore, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(store.health, .healthy, file: file, line: line)
        XCTAssertThrowsError(try store.get(kind: .item, ids: [1]), file: file, line: line) {
            XCTAssertTrue("\($0)".contains("herd nearline"), "\($0)", file: file, line: line)
        }
        let table = try userTable()
        var seen: [(Int, Int)] = []
        try store.put(table, kind: .user, keyColumn: "user_id") { seen.append(($0, $1)) }
        XCTAssertEqual(seen.last?.0, 4, file: file, line: line)

        // Request order, duplicates and misses.
        let rows = try store.get(kind: .user, ids: [42, 999, 7, Int64.max, 7, -3])
        XCTAssertEqual(rows.found, [true, false, true, true, true, true], file: file, line: line)
        XCTAssertEqual(rows.missCount, 1, file: file, line: line)
        XCTAssertEqual(rows.schema.keyColumn, "user_id", file: file, line: line)
        XCTAssertEqual(rows.rows[0]!, table.row(3), file: file, line: line)
        XCTAssertEqual(rows.rows[2]!, table.row(0), file: file, line: line)
        XCTAssertEqual(rows.rows[3]!, table.row(2), file: file, line: line)
        XCTAssertEqual(rows.rows[5]!, table.row(1), file: file, line: line)
        // -0.0 and 1e-300 survive bit for bit.
        if case .double(let z) = rows.rows[3]![1] { XCTAssertEqual(z.bitPattern, (-0.0 as Double).bitPattern, file: file, line: line) } else { XCTFail("age", file: file, line: line) }

        let back = try rows.table()
        XCTAssertEqual(back.rowCount, 6, file: file, line: line)
        XCTAssertEqual(back["user_id"][1], .int(999), file: file, line: line)
        XCTAssertEqual(back["country"][1], .null, file: file, line: line)
        XCTAssertEqual(back.row(0), table.row(3), file: file, line: line)

        // Re-put updates in place; the other kind is independent.
        let updated = try FeatureTable([
            ("user_id", Column(int64s: [7])), ("age", Column(doubles: [1])), ("country", Column(strings: ["de"])),
            ("history", Column(int64Lists: [[9]])), ("tags", Column(stringLists: [[]])), ("score", Column(int64s: [5])),
        ])
        try store.put(updated, kind: .user, keyColumn: "user_id")
        XCTAssertEqual(try store.get(kind: .user, ids: [7]).rows[0]!, updated.row(0), file: file, line: line)
        XCTAssertEqual(try store.get(kind: .user, ids: [42]).rows[0]!, table.row(3), file: file, line: line)

        let items = try FeatureTable([("tweet_id", Column(int64s: [50_001, 50_002])), ("len", Column(doubles: [0.5, 2]))])
        try store.put(items, kind: .item, keyColumn: "tweet_id")
        XCTAssertEqual(try store.get(kind: .item, ids: [50_002]).rows[0]!, [.int(50_002), .double(2)], file: file, line: line)
        XCTAssertEqual(try store.schema(kind: .item)?.keyColumn, "tweet_id", file: file, line: line)

        // Big batches (several MGET chunks) keep their order.
        let n = 1500
        let many = try FeatureTable([("tweet_id", Column(int64s: (0..<n).map { Int64($0 * 2) })), ("len", Column(doubles: (0..<n).map { Double($0) }))])
        try store.put(many, kind: .item, keyColumn: "tweet_id")
        let ask = (0..<n).reversed().map { Int64($0) }
        let got = try store.get(kind: .item, ids: ask)
        for (i, id) in ask.enumerated() {
            if id % 2 == 0 { XCTAssertEqual(got.rows[i]?[1], .double(Double(id / 2)), file: file, line: line) } else { XCTAssertNil(got.rows[i], file: file, line: line) }
        }

        // Explicit store keys (entities out of vocabulary: key column 0, stored under their row key);
        // the same schema, so the rows put before stay readable.
        let unseen = try FeatureTable([("tweet_id", Column(int64s: [0, 0])), ("len", Column(doubles: [7, 8]))])
        try store.put(unseen, kind: .item, keyColumn: "tweet_id", ids: [90_001, 90_002], progress: nil)
        let mixed = try store.get(kind: .item, ids: [90_002, 50_002, 1, 90_001])
        XCTAssertEqual(mixed.found, [true, true, false, true], file: file, line: line)
        XCTAssertEqual(mixed.rows[0]!, [.int(0), .double(8)], file: file, line: line)
        XCTAssertEqual(mixed.rows[1]!, [.int(50_002), .double(2)], file: file, line: line)
        XCTAssertEqual(mixed.rows[3]!, [.int(0), .double(7)], file: file, line: line)
        XCTAssertThrowsError(try store.put(unseen, kind: .item, keyColumn: "tweet_id", ids: [1], progress: nil), file: file, line: line) {
            XCTAssertTrue("\($0)".contains("1 store keys for 2 rows"), "\($0)", file: file, line: line)
        }

        XCTAssertThrowsError(try store.put(items, kind: .item, keyColumn: "nope"), file: file, line: line) {
            XCTAssertTrue("\($0)".contains("no key column 'nope'"), "\($0)", file: file, line: line)
        }
    }
}

final class FeatureStoreTests: XCTestCase {
    func testEmbeddedStoreMeetsTheContract() throws {
        try FeatureStoreContract.run(try makeFeatureStore(spec: "embedded"))
    }

    func testEmbeddedStorePersistsAndRefusesCorruptFiles() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("features.store").path
        try FeatureStoreContract.run(try makeFeatureStore(spec: "embedded:\(path)"))
        let reopened = try makeFeatureStore(spec: "embedded:\(path)")
        XCTAssertEqual(try reopened.get(kind: .user, ids: [42]).rows[0]!, try FeatureStoreContract.userTable().row(3))
        XCTAssertEqual(try reopened.get(kind: .item, ids: [4]).rows[0]!, [.int(4), .double(2)])

        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count / 2] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try makeFeatureStore(spec: "embedded:\(path)")) { XCTAssertTrue("\($0)".contains("checksum mismatch"), "\($0)") }
        try bytes.prefix(100).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try makeFeatureStore(spec: "embedded:\(path)")) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
    }

    func testSpecsAreParsedWithClearErrors() throws {
        XCTAssertThrowsError(try makeFeatureStore(spec: "memcached://x")) { XCTAssertTrue("\($0)".contains("unknown feature store")) }
        XCTAssertThrowsError(try RedisConfig(url: "redis://h:1/p?pool=0"))
        let c = try RedisConfig(url: "redis://example:6390/herd:?pool=2&timeout_ms=50")
        XCTAssertEqual(c.host, "example")
        XCTAssertEqual(c.port, 6390)
        XCTAssertEqual(c.prefix, "herd:")
        XCTAssertEqual(c.poolSize, 2)
        XCTAssertEqual(c.timeoutMilliseconds, 50)

        let u = try RedisConfig(url: "unix:///run/redis/redis.sock?prefix=herd:&pool=3")
        XCTAssertEqual(u.unixSocket, "/run/redis/redis.sock")
        XCTAssertEqual(u.prefix, "herd:")
        XCTAssertEqual(u.poolSize, 3)
        XCTAssertEqual(u.spec, "unix:///run/redis/redis.sock?prefix=herd:")
        XCTAssertEqual(try RedisConfig(url: "redis+unix:///tmp/r.sock").unixSocket, "/tmp/r.sock")
        XCTAssertEqual(try RedisConfig(url: u.spec).unixSocket, u.unixSocket, "a spec parses back to its store")
        XCTAssertEqual(try RedisConfig(url: u.spec).prefix, u.prefix)
        XCTAssertEqual(try RedisConfig(url: c.spec).prefix, "herd:")
        XCTAssertThrowsError(try RedisConfig(url: "unix://relative.sock")) { XCTAssertTrue("\($0)".contains("absolute path"), "\($0)") }
        XCTAssertThrowsError(try RedisConfig(url: "unix:///tmp/r.sock?prefix=a&nope=1")) { XCTAssertTrue("\($0)".contains("unknown option 'nope'"), "\($0)") }
        XCTAssertThrowsError(try RedisConfig(url: "redis://h:1/?prefix=a")) { XCTAssertTrue("\($0)".contains("prefix"), "\($0)") }
        XCTAssertTrue(RedisConfig.isRedisURL("unix:///x"))
        XCTAssertFalse(RedisConfig.isRedisURL("embedded:/x"))
    }

    func testRedisStoreOverAUnixSocketMeetsTheContract() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let store = try makeFeatureStore(spec: server.unixURL)
        XCTAssertEqual(store.spec, server.unixURL)
        try FeatureStoreContract.run(store)
        // The same keys as over TCP.
        let tcp = try makeFeatureStore(spec: server.url)
        XCTAssertEqual(try tcp.get(kind: .user, ids: [7, 42]), try store.get(kind: .user, ids: [7, 42]))
    }

    /// `get(_:deadline:)` (user and items in one pipeline) answers what separate gets answer, in
    /// order, misses and chunked MGETs included; the embedded store's default does the same.
    func testMultiGetEqualsSeparateGets() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let embedded = try EmbeddedFeatureStore(path: nil)
        let redis = try makeFeatureStore(spec: server.url)
        let n = 700
        let items = try FeatureTable([("tweet_id", Column(int64s: (0..<n).map { Int64($0) * 3 - 600 })),
                                      ("len", Column(doubles: (0..<n).map { Double($0) / 7 })),
                                      ("tags", Column(int64Lists: (0..<n).map { [Int64($0), -1] }))])
        for store in [embedded, redis] as [any FeatureStore] {
            try store.put(try FeatureStoreContract.userTable(), kind: .user, keyColumn: "user_id")
            try store.put(items, kind: .item, keyColumn: "tweet_id")
        }
        let ask = (0..<(n + 20)).map { Int64($0) * 2 - 620 }.shuffled()
        for store in [embedded, redis] as [any FeatureStore] {
            let both = try store.get([FeatureQuery(.user, [42, 1]), FeatureQuery(.item, ask), FeatureQuery(.item, [])],
                                     deadline: .now + .seconds(5))
            XCTAssertEqual(both.count, 3)
            XCTAssertEqual(both[0], try store.get(kind: .user, ids: [42, 1]))
            XCTAssertEqual(both[1], try store.get(kind: .item, ids: ask))
            XCTAssertEqual(both[2].rows.count, 0)
            XCTAssertEqual(both[1].rows.compactMap { $0 }.count, ask.filter { $0 % 3 == 0 && $0 >= -600 && $0 < Int64(3 * n - 600) }.count)
        }
        XCTAssertEqual(try redis.get([FeatureQuery(.item, ask)], deadline: nil)[0], try embedded.get(kind: .item, ids: ask))
    }

    /// A request's deadline nearer than the store's timeout bounds the wait; the store stays
    /// healthy (only that connection is dropped) and answers again once Redis does.
    func testRedisGetGivesUpAtTheDeadline() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let store = try makeFeatureStore(spec: server.url + "?timeout_ms=3000")
        try store.put(try FeatureStoreContract.userTable(), kind: .user, keyColumn: "user_id")
        XCTAssertTrue(store.answersWithinDeadline)
        try server.cli(["CLIENT", "PAUSE", "800", "ALL"])
        let t0 = Date()
        XCTAssertThrowsError(try store.get([FeatureQuery(.user, [7])], deadline: .now + .milliseconds(100))) {
            XCTAssertTrue("\($0)".contains("deadline"), "\($0)")
        }
        let took = Date().timeIntervalSince(t0)
        XCTAssertLessThan(took, 0.4, "gave up after \(took) s")
        XCTAssertEqual(store.health, .healthy)
        usleep(900_000)
        XCTAssertEqual(try store.get([FeatureQuery(.user, [7])], deadline: .now + .seconds(2))[0].missCount, 0)
    }

    func testRedisStoreMeetsTheContract() throws {
        let server = try RedisServer()
        defer { server.stop() }
        try FeatureStoreContract.run(try makeFeatureStore(spec: server.url))
    }

    func testRedisStoreConcurrentGets() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let store = try makeFeatureStore(spec: server.url + "?pool=3")
        try store.put(try FeatureStoreContract.userTable(), kind: .user, keyColumn: "user_id")
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: 8)
        failures.initialize(repeating: 0, count: 8)
        defer { failures.deallocate() }
        let box = UncheckedBox((store, failures))
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for _ in 0..<50 {
                let r = try? box.value.0.get(kind: .user, ids: [7, 42, 5])
                if r?.found != [true, true, false] { box.value.1[t] += 1 }
            }
        }
        XCTAssertEqual((0..<8).map { failures[$0] }.reduce(0, +), 0)
    }

    func testRedisFailuresArriveWithinTheTimeoutAndTheStoreRecovers() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let store = try makeFeatureStore(spec: server.url + "?timeout_ms=100&connect_timeout_ms=100")
        try store.put(try FeatureStoreContract.userTable(), kind: .user, keyColumn: "user_id")
        XCTAssertEqual(try store.get(kind: .user, ids: [7]).missCount, 0)

        server.stop()
        for attempt in 0..<5 {
            let t0 = Date()
            XCTAssertThrowsError(try store.get(kind: .user, ids: [7])) { XCTAssertTrue("\($0)".contains("reconnecting"), "\($0)") }
            let elapsed = Date().timeIntervalSince(t0)
            XCTAssertLessThan(elapsed, 0.5, "attempt \(attempt) took \(elapsed) s")
        }
        if case .healthy = store.health { XCTFail("the store should report unhealthy while Redis is down") }

        try server.start()
        let deadline = Date().addingTimeInterval(10)
        while !store.health.isHealthy && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(store.health, .healthy, "the store did not recover after Redis came back")
        // The restarted server is empty (no persistence): the schema is gone, and the store says so.
        XCTAssertThrowsError(try store.get(kind: .user, ids: [7])) { XCTAssertTrue("\($0)".contains("herd nearline"), "\($0)") }
        try store.put(try FeatureStoreContract.userTable(), kind: .user, keyColumn: "user_id")
        XCTAssertEqual(try store.get(kind: .user, ids: [7, 42]).missCount, 0)
    }

    func testRedisSlowServerTimesOut() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let store = try makeFeatureStore(spec: server.url + "?timeout_ms=100")
        try store.put(try FeatureStoreContract.userTable(), kind: .user, keyColumn: "user_id")
        // CLIENT PAUSE stalls every client for a second: a get must give up after ≈ the timeout.
        try server.cli(["CLIENT", "PAUSE", "1000", "ALL"])
        let t0 = Date()
        XCTAssertThrowsError(try store.get(kind: .user, ids: [7]))
        XCTAssertLessThan(Date().timeIntervalSince(t0), 0.6)
        let deadline = Date().addingTimeInterval(10)
        while !store.health.isHealthy && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(try store.get(kind: .user, ids: [7]).missCount, 0)
    }
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
