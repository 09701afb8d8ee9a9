@testable import HerdFeatures
import HerdTensor
import XCTest

/// `FeatureTable.indexOrder` (radix sort on count and prefix) against a plain comparison sort of
/// Swift values: descending count, ties by ascending UTF-8 bytes.
final class IndexOrderTests: XCTestCase {
    /// The order by a plain loop: keys with count >= limit, sorted by (count desc, bytes asc).
    func plainOrder(_ keys: [[UInt8]], _ counts: [Int], limit: Int) -> [Int32] {
        let kept = (0..<keys.count).filter { counts[$0] >= limit }
        return kept.sorted { a, b in
            if counts[a] != counts[b] { return counts[a] > counts[b] }
            return keys[a].lexicographicallyPrecedes(keys[b])
        }.map { Int32($0) }
    }

    func order(_ keys: [[UInt8]], _ counts: [Int], limit: Int, radix: Bool) -> [Int32] {
        var t = KeyTable()
        for k in keys { k.withUnsafeBytes { XCTAssertTrue(t.insert($0).inserted) } }
        if radix { return FeatureTable.indexOrder(t, counts, freqLimit: limit) }
        return t.bytes.withUnsafeBytes { by in
            t.offsets.withUnsafeBufferPointer { off in
                counts.withUnsafeBufferPointer { FeatureTable.indexOrderByComparison(bytes: by, offsets: off, counts: $0, freqLimit: limit) }
            }
        }
    }

    /// Distinct keys: empty, 1–7 bytes (zero-padded prefixes), prefixes of each other, shared
    /// 8-byte prefixes with long (> 64 bytes) tails, bytes ≥ 0x80, NUL bytes; counts with many
    /// ties, some above the radix count buckets.
    func randomKeys(_ n: Int, seed: UInt64) -> ([[UInt8]], [Int]) {
        var rng = SplitMix64(seed: seed)
        var seen = Set<[UInt8]>()
        var keys: [[UInt8]] = []
        while keys.count < n {
            var k: [UInt8]
            switch rng.next() % 8 {
            case 0: k = (0..<Int(rng.next() % 8)).map { _ in UInt8(rng.next() % 3) }  // short, NULs
            case 1: k = Array("shared-p".utf8) + (0..<Int(rng.next() % 80)).map { _ in UInt8(97 + rng.next() % 3) }
            case 2: k = (0..<Int(8 + rng.next() % 4)).map { _ in UInt8(rng.next() % 256) }
            default: k = Array(String(rng.next() % 100_000, radix: 16, uppercase: true).utf8)
            }
            if seen.insert(k).inserted { keys.append(k) }
        }
        let counts = keys.indices.map { _ -> Int in
            switch rng.next() % 20 {
            case 0: return FeatureTable.radixCountBuckets + Int(rng.next() % 3)  // large, tied
            case 1: return 10_000 + Int(rng.next() % 50_000)
            case 2, 3: return Int(rng.next() % 40)
            default: return 1 + Int(rng.next() % 3)
            }
        }
        return (keys, counts)
    }

    func testRadixEqualsPlainSort() {
        for (n, seed) in [(3000, 1), (FeatureTable.radixOrderMinimum + 1, 2), (20_000, 3)] as [(Int, UInt64)] {
            let (keys, counts) = randomKeys(n, seed: seed)
            for limit in [1, 2, 3, 5, 100] {
                let expected = plainOrder(keys, counts, limit: limit)
                XCTAssertEqual(order(keys, counts, limit: limit, radix: true), expected, "n \(n), limit \(limit)")
                XCTAssertEqual(order(keys, counts, limit: limit, radix: false), expected, "n \(n), limit \(limit)")
            }
        }
    }

    func testOneByteEverywhereAndEmptyKey() {
        // Every prefix byte but one is the same for all keys (passes skipped), the empty key, all one count.
        var keys: [[UInt8]] = [[]]
        for i in 0..<2000 { keys.append(Array("AAAAAAA".utf8) + [UInt8(i % 256)] + Array(String(i / 256).utf8)) }
        let counts = [Int](repeating: 7, count: keys.count)
        XCTAssertEqual(order(keys, counts, limit: 1, radix: true), plainOrder(keys, counts, limit: 1))
        XCTAssertEqual(order(keys, counts, limit: 8, radix: true), [])
    }

    func testCategorifyIdsFollowTheOrder() throws {
        // The index built through the radix path numbers values by (count desc, bytes asc).
        var rng = SplitMix64(seed: 9)
        let values = (0..<30_000).map { _ in "v\(rng.next() % 3000)" } + (0..<500).map { _ in "" }
        let t = try FeatureTable([("a", Column(strings: values))])
        let (out, indices) = try t.categorify([["a"]], freqLimit: 2)
        var counts: [String: Int] = [:]
        for v in values { counts[v, default: 0] += 1 }
        let expected = counts.filter { $0.value >= 2 }.sorted { a, b in
            a.value != b.value ? a.value > b.value : Array(a.key.utf8).lexicographicallyPrecedes(Array(b.key.utf8))
        }.map(\.key)
        XCTAssertGreaterThan(expected.count, FeatureTable.radixOrderMinimum)
        XCTAssertEqual(indices[0].values, expected)
        let id = Dictionary(uniqueKeysWithValues: expected.enumerated().map { ($1, Int64($0 + 1)) })
        XCTAssertEqual(out["a"].int64Values, values.map { id[$0] ?? 0 })
    }
}
