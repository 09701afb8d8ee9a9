import Foundation
import HerdFeatures
import HerdServing
import HerdTestSupport
import XCTest

/// The near cache in front of a store: answers equal the store's, a bounded size, rows expire
/// after the TTL, writes through it drop what they rewrite, a schema change empties it.
final class FeatureRowCacheTests: XCTestCase {
    static func items(_ n: Int, scale: Double = 1) throws -> FeatureTable {
        try FeatureTable([("tweet_id", Column(int64s: (0..<n).map { Int64($0) })),
                          ("len", Column(doubles: (0..<n).map { Double($0) * scale })),
                          ("tags", Column(int64Lists: (0..<n).map { [Int64($0 % 5)] }))])
    }

    func testAnswersEqualTheStoreAndTheSizeStaysBounded() throws {
        let inner = try EmbeddedFeatureStore(path: nil)
        try inner.put(try FeatureStoreContract.userTable(), kind: .user, keyColumn: "user_id")
        try inner.put(try Self.items(500), kind: .item, keyColumn: "tweet_id")
        let cached = CachedFeatureStore(inner, capacity: 64, ttl: .seconds(60))
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            // Repeated, missing (≥ 500) and hot (< 40) ids, in any order.
            let ids = (0..<Int.random(in: 0...80, using: &rng)).map { _ in Bool.random(using: &rng) ? Int64.random(in: 0..<40, using: &rng) : Int64.random(in: 0..<600, using: &rng) }
            let got = try cached.get([FeatureQuery(.user, [7, 8]), FeatureQuery(.item, ids)], deadline: nil)
            XCTAssertEqual(got[0], try inner.get(kind: .user, ids: [7, 8]))
            XCTAssertEqual(got[1], try inner.get(kind: .item, ids: ids))
            let s = cached.cache.statistics
            XCTAssertLessThanOrEqual(s.entries, 64)
        }
        let s = cached.cache.statistics
        XCTAssertGreaterThan(s.hits, 0)
        XCTAssertGreaterThan(s.evictions, 0, "500 items through 64 slots must evict")
        XCTAssertEqual(s.entries, 64)
        // Only the item kind is cached: user rows always come from the store.
        XCTAssertEqual(try cached.get(kind: .user, ids: [42]).rows[0], try inner.get(kind: .user, ids: [42]).rows[0])
    }

    func testHotRowsSurviveAScanOfColdOnes() throws {
        let inner = try EmbeddedFeatureStore(path: nil)
        try inner.put(try Self.items(1000), kind: .item, keyColumn: "tweet_id")
        let cached = CachedFeatureStore(inner, capacity: 10, ttl: .seconds(60))
        let hot: [Int64] = [1, 2, 3, 4, 5]
        _ = try cached.get(kind: .item, ids: hot)
        for cold in stride(from: 100, to: 1000, by: 4) {
            _ = try cached.get(kind: .item, ids: hot)  // referenced again between cold rows
            _ = try cached.get(kind: .item, ids: (0..<4).map { Int64(cold + $0) })
        }
        let before = cached.cache.statistics.hits
        _ = try cached.get(kind: .item, ids: hot)
        XCTAssertEqual(cached.cache.statistics.hits - before, 5, "CLOCK keeps rows referenced since the hand passed")
    }

    /// Another process (a second store on the same Redis) rewrites rows: the cache answers the old
    /// row until the TTL, then the new one; a write through the cached store is seen at once.
    func testStaleRowsExpireAndWritesThroughTheCacheInvalidate() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let store = try makeFeatureStore(spec: server.url + "?item_cache=100&item_cache_ttl_ms=300")
        guard let cached = store as? CachedFeatureStore else { return XCTFail("item_cache should wrap the Redis store") }
        XCTAssertEqual(cached.cache.capacity, 100)
        let other = try makeFeatureStore(spec: server.url + "?item_cache=0")
        XCTAssertFalse(other is CachedFeatureStore)
        try other.put(try Self.items(10), kind: .item, keyColumn: "tweet_id")
        XCTAssertEqual(try store.get(kind: .item, ids: [3]).rows[0]?[1], .double(3))
        try other.put(try Self.items(10, scale: 10), kind: .item, keyColumn: "tweet_id")
        XCTAssertEqual(try store.get(kind: .item, ids: [3]).rows[0]?[1], .double(3), "cached until the TTL")
        XCTAssertEqual(try store.get(kind: .item, ids: [4]).rows[0]?[1], .double(40), "not cached: read through")
        usleep(400_000)
        XCTAssertEqual(try store.get(kind: .item, ids: [3]).rows[0]?[1], .double(30), "expired after the TTL")
        XCTAssertGreaterThanOrEqual(cached.cache.statistics.expired, 1)

        try store.put(try Self.items(10, scale: 100), kind: .item, keyColumn: "tweet_id")
        XCTAssertEqual(try store.get(kind: .item, ids: [3, 4]).rows.map { $0?[1] }, [.double(300), .double(400)], "a write through the cache is seen at once")
        XCTAssertGreaterThanOrEqual(cached.cache.statistics.invalidations, 2)

        // A new schema (another column) written elsewhere: the next miss brings it and the cache starts over.
        let wider = try FeatureTable([("tweet_id", Column(int64s: [3, 11])), ("len", Column(doubles: [-1, -2])), ("extra", Column(int64s: [5, 6]))])
        try other.put(wider, kind: .item, keyColumn: "tweet_id")
        let after = try store.get(kind: .item, ids: [3, 11])
        XCTAssertEqual(after.schema.fields.map(\.name), ["tweet_id", "len", "extra"])
        XCTAssertEqual(after.rows[0], [.int(3), .double(-1), .int(5)])
        XCTAssertEqual(after.rows[1], [.int(11), .double(-2), .int(6)])
    }

    func testCacheOptionsParse() throws {
        XCTAssertEqual(try RedisConfig(url: "redis://h:1/p?item_cache=5&item_cache_ttl_ms=7").itemCache, 5)
        XCTAssertEqual(try RedisConfig(url: "redis://h:1/p?item_cache=0").itemCache, 0)
        XCTAssertEqual(try RedisConfig(url: "redis://h:1/p").itemCache, RedisConfig.defaultItemCache)
        XCTAssertThrowsError(try RedisConfig(url: "redis://h:1/p?item_cache_ttl_ms=0"))
        XCTAssertThrowsError(try RedisConfig(url: "redis://h:1/p?item_cache=-1"))
    }
}
