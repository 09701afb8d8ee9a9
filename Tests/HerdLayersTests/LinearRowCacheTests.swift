import Foundation
@testable import HerdLayers
import HerdTensor
import HerdTestSupport
import XCTest

/// `Linear.rowCache` (the hoisting first layer's cache of each row's contribution before bias):
/// the cached forward equals the uncached one bit for bit, whatever the batches repeat, on every
/// output form, under eviction and on concurrent replicas; plus the cache's own bookkeeping.
final class LinearRowCacheTests: XCTestCase {
    let inputs = 40, outputs = 37
    let indicators = 12..<30

    /// Items: fixed values of the item columns (dense 6..<12 and 30..<40, one-hot groups 1 and 2).
    /// Users: fixed values of the user columns (dense 0..<6, one-hot group 0).
    struct Catalog {
        var items: [[Float]] = []
        var users: [[Float]] = []
    }

    func catalog(items: Int, users: Int, seed: UInt64) -> Catalog {
        var rng = SplitMix64(seed: seed)
        var c = Catalog()
        for _ in 0..<items {
            var row = [Float](repeating: 0, count: inputs)
            for col in Array(6..<12) + Array(30..<40) { row[col] = rng.nextGaussian() }
            for g in 1...2 { row[indicators.lowerBound + 6 * g + Int(rng.next() % 6)] = rng.next() % 4 == 0 ? 2.5 : 1 }
            c.items.append(row)
        }
        for _ in 0..<users {
            var row = [Float](repeating: 0, count: inputs)
            for col in 0..<6 { row[col] = rng.nextGaussian() }
            row[indicators.lowerBound + Int(rng.next() % 6)] = 1
            c.users.append(row)
        }
        return c
    }

    /// One request: user `u`'s columns in every row, candidates `items` (repeats allowed).
    /// `extraUniform`: item columns overwritten with the first candidate's values (another plan).
    func batch(_ c: Catalog, user u: Int, items: [Int], extraUniform: [Int] = []) -> Tensor {
        let x = Tensor(shape: [items.count, inputs])
        for (s, i) in items.enumerated() {
            for col in 0..<inputs {
                let userCol = col < 6 || (indicators.lowerBound..<(indicators.lowerBound + 6)).contains(col)
                x[s, col] = userCol ? c.users[u][col] : c.items[i][col]
            }
            for col in extraUniform { x[s, col] = c.items[items[0]][col] }
        }
        return x
    }

    func layer(_ act: Activation, emitsBF16: Bool = false, omitsFP32: Bool = false, cacheBytes: Int?) -> Linear {
        var rng = SplitMix64(seed: 33)
        let l = Linear(name: "l", inputs: inputs, outputs: outputs, activation: act, rng: &rng)
        l.indicatorColumns = indicators
        l.hoistsUniformColumns = true
        l.emitsBF16Output = emitsBF16
        l.freezeForInference()
        l.omitsFP32Output = omitsFP32
        if let cacheBytes { l.rowCache = RowContributionCache(outputs: outputs, capacityBytes: cacheBytes) }
        return l
    }

    /// The requests of a run: varied batch sizes (B = 1, 2, …, 64), repeated and partly repeated
    /// candidate lists, and plan changes (extra uniform item columns) between batches.
    func requests(_ c: Catalog, count: Int, seed: UInt64) -> [Tensor] {
        var rng = SplitMix64(seed: seed)
        var out: [Tensor] = []
        var previous: [Int] = [0, 1, 2]
        for r in 0..<count {
            let sizes = [1, 2, 7, 16, 33, 64]
            let b = sizes[Int(rng.next() % UInt64(sizes.count))]
            var items = (0..<b).map { _ in Int(rng.next() % UInt64(c.items.count)) }
            if r % 3 == 1 { for k in 0..<min(b, previous.count) where k % 2 == 0 { items[k] = previous[k] } }   // partly repeated
            if r % 5 == 2 { items = Array(repeating: items[0], count: b) }                                      // one row repeated
            let extra: [Int] = r % 4 == 3 ? [6, 7, 30] : (r % 7 == 5 ? [8] : [])
            out.append(batch(c, user: Int(rng.next() % UInt64(c.users.count)), items: items, extraUniform: extra))
            previous = items
        }
        return out
    }

    func assertBitEqual(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let bad = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
        XCTAssertEqual(bad, 0, "\(what): \(bad) elements differ", file: file, line: line)
    }

    func bf16(_ l: Linear, _ n: Int) -> [UInt16] {
        guard let ob = l.lastOutputBF16 else { return [] }
        return (0..<n).map { ob[$0].bitPattern >> 16 }.map { UInt16($0) }
    }

    func testCachedForwardEqualsUncachedBitForBit() throws {
        try XCTSkipUnless(PackedF32Weight.available, "no avx512f: the fused path (and the cache) is not used here")
        let c = catalog(items: 25, users: 4, seed: 5)
        let reqs = requests(c, count: 120, seed: 6)
        for act in [Activation.none, .relu] {
            for (emits, omits) in [(false, false), (true, false), (true, true)] {
                for budget in [1 << 20, 3 * (4 * outputs + 4 * 64 + 96)] {   // roomy; about 3 entries (evicting)
                    let cached = layer(act, emitsBF16: emits, omitsFP32: omits, cacheBytes: budget)
                    let plain = layer(act, emitsBF16: emits, omitsFP32: omits, cacheBytes: nil)
                    let what = "\(act) bf16 \(emits) omits \(omits) budget \(budget)"
                    for (k, x) in reqs.enumerated() {
                        let y = cached.forward(x).array, z = plain.forward(x).array
                        if !omits { assertBitEqual(y, z, "\(what) request \(k)") }
                        if emits { XCTAssertEqual(bf16(cached, x.count / inputs * outputs), bf16(plain, x.count / inputs * outputs), "\(what) request \(k): BF16") }
                        XCTAssertEqual(cached.lastHoistedColumns, plain.lastHoistedColumns, "\(what) request \(k)")
                        XCTAssertLessThanOrEqual(cached.lastForwardMACs, plain.lastForwardMACs, "\(what) request \(k)")
                    }
                    let s = try XCTUnwrap(cached.rowCache).stats
                    XCTAssertGreaterThan(s.hits, 0, what)
                    XCTAssertGreaterThan(s.misses, 0, what)
                    XCTAssertLessThanOrEqual(s.bytes, budget, what)
                    // Rows of B = 1 requests take the plain path (not counted).
                    XCTAssertEqual(s.hits + s.misses, reqs.filter { $0.rows > 1 }.reduce(0) { $0 + $1.rows }, what)
                    if budget < 1 << 20 { XCTAssertGreaterThan(s.evictions, 0, what) } else { XCTAssertEqual(s.evictions, 0, what) }
                }
            }
        }
    }

    /// A repeated request is answered from the cache (every row a hit) with the same output.
    func testRepeatedRequestHitsEveryRow() throws {
        try XCTSkipUnless(PackedF32Weight.available, "no avx512f: the fused path (and the cache) is not used here")
        let c = catalog(items: 10, users: 2, seed: 8)
        let l = layer(.relu, cacheBytes: 1 << 20)
        let x = batch(c, user: 1, items: [0, 3, 5, 9, 2, 7, 8])
        let first = l.forward(x).array
        let macsMiss = l.lastForwardMACs
        let s0 = try XCTUnwrap(l.rowCache).stats
        XCTAssertEqual(s0.hits, 0)
        XCTAssertEqual(s0.misses, 7)
        XCTAssertEqual(s0.entries, 7)
        assertBitEqual(l.forward(x).array, first, "repeat")
        let s1 = try XCTUnwrap(l.rowCache).stats
        XCTAssertEqual(s1.hits, 7)
        XCTAssertEqual(s1.misses, 7)
        XCTAssertLessThan(l.lastForwardMACs, macsMiss)
        // Another user: the same item rows hit (the user's columns are in the hoisted share).
        let other = batch(c, user: 0, items: [5, 9, 0])
        let plain = layer(.relu, cacheBytes: nil)
        assertBitEqual(l.forward(other).array, plain.forward(other).array, "other user")
        XCTAssertEqual(try XCTUnwrap(l.rowCache).stats.hits, 10)
        XCTAssertEqual(try XCTUnwrap(l.rowCache).stats.repeatedInBatch, 0)
        // A batch listing one item twice: both rows hit one entry, the second counted as repeated.
        let twice = batch(c, user: 0, items: [3, 3, 0])
        assertBitEqual(l.forward(twice).array, plain.forward(twice).array, "item twice")
        XCTAssertEqual(try XCTUnwrap(l.rowCache).stats.hits, 13)
        XCTAssertEqual(try XCTUnwrap(l.rowCache).stats.repeatedInBatch, 1)
    }

    /// Replicas share the cache; concurrent forwards give what serial uncached forwards give.
    func testConcurrentReplicasMatchSerial() throws {
        try XCTSkipUnless(PackedF32Weight.available, "no avx512f: the fused path (and the cache) is not used here")
        let c = catalog(items: 30, users: 5, seed: 11)
        let reqs = requests(c, count: 160, seed: 12)
        let plain = layer(.relu, emitsBF16: true, cacheBytes: nil)
        let expected = reqs.map { x -> [UInt16] in _ = plain.forward(x); return bf16(plain, x.rows * outputs) }
        let base = layer(.relu, emitsBF16: true, cacheBytes: 12 * (4 * outputs + 4 * 64 + 96))   // evicts under contention
        let lanes = 4
        let replicas = (0..<lanes).map { _ in Linear(sharing: base) }
        XCTAssertTrue(replicas.allSatisfy { $0.rowCache === base.rowCache })
        let results = UnsafeMutableBufferPointer<[UInt16]>.allocate(capacity: reqs.count)
        results.initialize(repeating: [])
        defer { results.deallocate() }
        let shared = UncheckedSendable((results, replicas, reqs, outputs))
        DispatchQueue.concurrentPerform(iterations: lanes) { lane in
            let (results, replicas, reqs, o) = shared.value
            for k in stride(from: lane, to: reqs.count, by: lanes) {
                _ = replicas[lane].forward(reqs[k])
                let ob = replicas[lane].lastOutputBF16!
                results[k] = (0..<(reqs[k].rows * o)).map { UInt16(ob[$0].bitPattern >> 16) }
            }
        }
        for k in 0..<reqs.count { XCTAssertEqual(results[k], expected[k], "request \(k)") }
        let s = try XCTUnwrap(base.rowCache).stats
        XCTAssertGreaterThan(s.hits, 0)
        XCTAssertGreaterThan(s.evictions, 0)
    }

    /// The cache alone: a key equal in hash but not in words misses; the budget holds under
    /// CLOCK eviction; a referenced entry survives a sweep that evicts an unreferenced one.
    func testCacheBookkeeping() {
        let o = 4
        let cache = RowContributionCache(outputs: o, capacityBytes: 2 * (4 * o + 4 * 2 + 96))
        let v: [Float] = [1, 2, 3, 4]
        func entry(_ hash: UInt64, _ key: [UInt32]) -> RowContributionCache.Entry {
            key.withUnsafeBufferPointer { k in v.withUnsafeBufferPointer { RowContributionCache.Entry(hash: hash, key: k, values: $0.baseAddress!, count: o) } }
        }
        func find(_ hash: UInt64, _ key: [UInt32]) -> Bool {
            var found: [RowContributionCache.Entry?] = []
            key.withUnsafeBufferPointer { k in
                [0, key.count].withUnsafeBufferPointer { off in
                    [hash].withUnsafeBufferPointer { h in cache.lookup(count: 1, keys: k, offsets: off, hashes: h, into: &found) }
                }
            }
            return found[0] != nil
        }
        cache.insert([entry(5, [1, 2]), entry(6, [1, 3])])
        XCTAssertTrue(find(5, [1, 2]))
        XCTAssertFalse(find(5, [1, 3]), "same hash, other key")
        XCTAssertFalse(find(5, [1, 2, 0]), "same hash, longer key")
        XCTAssertEqual(cache.stats.entries, 2)
        // Entry 5 was just referenced: inserting a third clears its bit and evicts 6.
        cache.insert([entry(7, [9, 9])])
        XCTAssertTrue(find(5, [1, 2]))
        XCTAssertFalse(find(6, [1, 3]))
        XCTAssertTrue(find(7, [9, 9]))
        let s = cache.stats
        XCTAssertEqual(s.entries, 2)
        XCTAssertEqual(s.evictions, 1)
        XCTAssertLessThanOrEqual(s.bytes, cache.capacityBytes)
        // An entry larger than the whole budget is never held.
        cache.insert([entry(8, [UInt32](repeating: 1, count: 200))])
        XCTAssertFalse(find(8, [UInt32](repeating: 1, count: 200)))
        XCTAssertEqual(cache.stats.entries, 2)
    }
}
