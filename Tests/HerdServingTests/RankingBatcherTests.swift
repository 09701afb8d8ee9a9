import Dispatch
import Foundation
import HerdData
import HerdModels
import HerdTensor
@testable import HerdServing
import XCTest

/// `RankingBatcher`: coalesced forwards give each request exactly its own probabilities.
final class RankingBatcherTests: XCTestCase {
    static let tableSizes = [20, 10, 10]

    func pool() throws -> ModelPool {
        var cfg = DLRMConfig(tableSizes: Self.tableSizes)
        cfg.denseFeatures = 3
        cfg.embeddingDim = 4
        cfg.bottomMLP = [16, 4]
        cfg.topMLP = [16, 1]
        cfg.seed = 7
        return ModelPool(model: try DLRM(config: cfg), prepared: 1)
    }

    /// `rows` random rows; feature 2 is multi-hot (0–3 ids per bag, so some bags are empty).
    func batch(rows: Int, seed: UInt64) -> Batch {
        var rng = SplitMix64(seed: seed)
        let dense = Tensor(shape: [rows, 3])
        for i in 0..<(rows * 3) { dense.data[i] = rng.nextUniform() * 2 - 1 }
        var ids: [Int32] = [], offsets: [Int32] = [0]
        for (f, n) in Self.tableSizes.enumerated() {
            for _ in 0..<rows {
                let bag = f == 2 ? Int(rng.next() % 4) : 1
                for _ in 0..<bag { ids.append(Int32(rng.next() % UInt64(n))) }
                offsets.append(Int32(ids.count))
            }
        }
        return Batch(dense: dense, sparse: KeyedJagged(features: 3, batchSize: rows, offsets: offsets, ids: ids), labels: [])
    }

    /// Concurrent requests of different sizes, one lane: forwards coalesce (fewer forwards than
    /// requests) and every request gets the probabilities an unbatched forward gives its rows.
    func testConcurrentRequestsGetTheirOwnProbabilities() throws {
        let pool = try pool()
        let batcher = RankingBatcher(pool: pool, maxRows: 200, lanes: 1, microBatch: 256)
        let sizes = (0..<40).map { [1, 7, 50, 3, 120, 33][$0 % 6] }
        let batches = sizes.enumerated().map { batch(rows: $1, seed: UInt64($0 + 1)) }
        let expected = batches.map { pool.probabilities($0, microBatch: 256) }
        let results = Results<Result<[Float], any Error>>(count: batches.count)
        let forwardRows = Results<[Float]>(count: 0)
        batcher.willRank = { _, rows in forwardRows.append([Float(rows)]) }
        DispatchQueue.concurrentPerform(iterations: batches.count) { i in
            results.set(i, Result { try batcher.probabilities(batches[i], deadline: farDeadline()) })
        }
        for i in batches.indices {
            let got = try results.get(i)!.get()
            XCTAssertEqual(got.count, sizes[i])
            for (a, b) in zip(got, expected[i]) { XCTAssertEqual(a, b, accuracy: 1e-6, "request \(i)") }
        }
        let s = batcher.statistics
        XCTAssertEqual(s.requests, batches.count)
        XCTAssertEqual(s.rows, sizes.reduce(0, +))
        XCTAssertEqual(s.expired, 0)
        XCTAssertTrue(forwardRows.all.allSatisfy { $0[0] <= 200 }, "a forward over the row cap: \(forwardRows.all)")
        XCTAssertEqual(batcher.queued, 0)
    }

    /// While the lane is busy, queued requests are taken into the next forward together (up to the
    /// row cap, first come first served) and each gets its own rows' probabilities.
    func testQueuedRequestsShareTheNextForward() throws {
        let pool = try pool()
        let batcher = RankingBatcher(pool: pool, maxRows: 100, lanes: 1)
        let gate = DispatchSemaphore(value: 0), entered = DispatchSemaphore(value: 0)
        let forwards = Results<[Float]>(count: 0)
        batcher.willRank = { requests, rows in
            let first = forwards.append([Float(requests), Float(rows)]) == 0
            if first {
                entered.signal()
                gate.wait()
            }
        }
        let first = batch(rows: 10, seed: 99)
        let queuedSizes = [30, 40, 20, 50]  // 30 + 40 + 20 fit in 100; 50 goes to a third forward
        let batches = queuedSizes.enumerated().map { batch(rows: $1, seed: UInt64(200 + $0)) }
        let results = Results<Result<[Float], any Error>>(count: batches.count + 1)
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { results.set(0, Result { try batcher.probabilities(first, deadline: farDeadline()) }) }
        entered.wait()
        for (i, b) in batches.enumerated() {
            DispatchQueue.global().async(group: group) { results.set(i + 1, Result { try batcher.probabilities(b, deadline: farDeadline()) }) }
            // Queue them in order.
            while batcher.queued < i + 1 { usleep(1000) }
        }
        gate.signal()
        group.wait()
        XCTAssertEqual(forwards.all.map { $0.map(Int.init) }, [[1, 10], [3, 90], [1, 50]])
        for (i, b) in ([first] + batches).enumerated() {
            let want = pool.probabilities(b, microBatch: 256)
            let got = try results.get(i)!.get()
            XCTAssertEqual(got.count, want.count)
            for (a, w) in zip(got, want) { XCTAssertEqual(a, w, accuracy: 1e-6, "request \(i)") }
        }
    }

    /// A request whose deadline passes in the queue fails alone; the others are answered.
    func testAnExpiredRequestFailsWithoutFailingOthers() throws {
        let pool = try pool()
        let batcher = RankingBatcher(pool: pool, maxRows: 512, lanes: 1)
        let gate = DispatchSemaphore(value: 0), entered = DispatchSemaphore(value: 0)
        let calls = Results<[Float]>(count: 0)
        batcher.willRank = { _, _ in
            if calls.append([0]) == 0 {
                entered.signal()
                gate.wait()
            }
        }
        let a = batch(rows: 20, seed: 1), b = batch(rows: 20, seed: 2), c = batch(rows: 20, seed: 3)
        let results = Results<Result<[Float], any Error>>(count: 3)
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { results.set(0, Result { try batcher.probabilities(a, deadline: farDeadline()) }) }
        entered.wait()
        DispatchQueue.global().async(group: group) { results.set(1, Result { try batcher.probabilities(b, deadline: .now + .milliseconds(50)) }) }
        DispatchQueue.global().async(group: group) { results.set(2, Result { try batcher.probabilities(c, deadline: farDeadline()) }) }
        // b expires while a's forward holds the lane.
        let waitStart = ContinuousClock.now
        while batcher.statistics.expired == 0 && ContinuousClock.now - waitStart < .seconds(10) { usleep(1000) }
        gate.signal()
        group.wait()
        XCTAssertThrowsError(try results.get(1)!.get()) { XCTAssertTrue("\($0)".contains("deadline"), "\($0)") }
        for (i, x) in [(0, a), (2, c)] {
            let want = pool.probabilities(x, microBatch: 256)
            let got = try results.get(i)!.get()
            for (p, w) in zip(got, want) { XCTAssertEqual(p, w, accuracy: 1e-6) }
        }
        XCTAssertEqual(batcher.statistics.expired, 1)
        XCTAssertEqual(batcher.statistics.requests, 2)
        XCTAssertEqual(batcher.queued, 0)
    }

    /// Idle: a request ranks at once on its own thread, alone; a request over the row cap too.
    /// `ModelPool.work` counts every row ranked and the MLPs' multiply-adds for it (a plain DLRM:
    /// Σ inputs·outputs of its Linears per row), through micro-batches and the batcher alike.
    func testPoolCountsRowsAndMultiplyAdds() throws {
        let pool = try pool()
        let dlrm = try XCTUnwrap(pool.model as? DLRM)
        let perRow = (dlrm.denseArch.layers + dlrm.overArch.layers).reduce(0) { $0 + $1.inputs * $1.outputs }
        XCTAssertEqual(perRow, 3 * 16 + 16 * 4 + dlrm.overArch.layers[0].inputs * 16 + 16 * 1)
        XCTAssertEqual(pool.work, ModelPool.Work())
        _ = pool.probabilities(batch(rows: 40, seed: 3), microBatch: 8)
        XCTAssertEqual(pool.work, ModelPool.Work(rows: 40, macs: 40 * perRow))
        let batcher = RankingBatcher(pool: pool, maxRows: 16, lanes: 1, microBatch: 8)
        _ = try batcher.probabilities(batch(rows: 5, seed: 4), deadline: farDeadline())
        XCTAssertEqual(pool.work, ModelPool.Work(rows: 45, macs: 45 * perRow))
    }

    func testIdleAndOversizedRequestsRankAlone() throws {
        let pool = try pool()
        let batcher = RankingBatcher(pool: pool, maxRows: 16, lanes: 2, microBatch: 8)
        for rows in [0, 1, 16, 40] {
            let b = batch(rows: rows, seed: UInt64(rows + 5))
            let got = try batcher.probabilities(b, deadline: farDeadline())
            let want = pool.probabilities(b, microBatch: 256)
            XCTAssertEqual(got.count, rows)
            for (p, w) in zip(got, want) { XCTAssertEqual(p, w, accuracy: 1e-6) }
        }
        XCTAssertEqual(batcher.statistics.forwards, 3)
        XCTAssertEqual(batcher.statistics.requests, 3)
    }
}

/// A deadline no test reaches.
private func farDeadline() -> ContinuousClock.Instant { .now + .seconds(60) }

/// Thread-safe slots for results written from worker threads.
final class Results<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [T?]
    private var list: [T] = []
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: T) { lock.withLock { slots[i] = v } }
    func get(_ i: Int) -> T? { lock.withLock { slots[i] } }
    /// Appends to the list; returns its index.
    @discardableResult
    func append(_ v: T) -> Int { lock.withLock { list.append(v); return list.count - 1 } }
    var all: [T] { lock.withLock { list } }
}
