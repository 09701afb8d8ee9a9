import Foundation
@testable import HerdTensor
@testable import HerdTraining
import XCTest

final class RetrievalMetricsTests: XCTestCase {
    // u0 = [1, 0], u1 = [0, 1]; items i0 [.9 .1], i1 [.5 .5], i2 [.1 .9], i3 [.8 0], i4 [0 .2].
    // u0 scores .9 .5 .1 .8 0 → i0 i3 i1 i2 i4; u1 scores .1 .5 .9 0 .2 → i2 i1 i4 i0 i3.
    let users = Tensor(shape: [2, 2], values: [1, 0, 0, 1])
    let items = Tensor(shape: [5, 2], values: [0.9, 0.1, 0.5, 0.5, 0.1, 0.9, 0.8, 0, 0, 0.2])
    let exclude = [[0], [2]]  // training items
    let relevant = [[1, 2], [3]]

    func testTopKAndMetricsByHand() throws {
        let top = try Retrieval.topK(users: users, rows: [0, 1], items: items, k: 3, exclude: exclude)
        XCTAssertEqual(top, [[3, 1, 2], [1, 4, 0]])
        let d1 = 1 / log2(3.0), d2 = 1 / log2(4.0)  // discounts of ranks 1 and 2 (0-based)
        // k = 3: u0 hits i1 (rank 1) and i2 (rank 2) of 2 → recall 1, ndcg (d1 + d2) / (1 + d1); u1 misses.
        var m = try Retrieval.metrics(retrieved: top, relevant: relevant, k: 3)
        XCTAssertEqual(m.users, 2)
        XCTAssertEqual(m.recall, 0.5, accuracy: 1e-12)
        XCTAssertEqual(m.ndcg, (d1 + d2) / (1 + d1) / 2, accuracy: 1e-12)
        XCTAssertEqual(m.hitRate, 0.5, accuracy: 1e-12)
        // k = 2: u0 [i3, i1] → 1 of 2, ndcg d1 / (1 + d1).
        m = try Retrieval.metrics(retrieved: top, relevant: relevant, k: 2)
        XCTAssertEqual(m.recall, 0.25, accuracy: 1e-12)
        XCTAssertEqual(m.ndcg, d1 / (1 + d1) / 2, accuracy: 1e-12)
        // k = 1: no hits at all.
        m = try Retrieval.metrics(retrieved: top, relevant: relevant, k: 1)
        XCTAssertEqual([m.recall, m.ndcg, m.hitRate], [0, 0, 0])
        // A user without relevant items is not averaged; an unknown relevant item (-1) counts
        // in |P| but is never found: u0 with P = {i1, unknown} at k = 3 → recall 1/2, ndcg d1 / (1 + d1).
        m = try Retrieval.metrics(retrieved: top, relevant: [[1, -1], []], k: 3)
        XCTAssertEqual(m.users, 1)
        XCTAssertEqual(m.recall, 0.5, accuracy: 1e-12)
        XCTAssertEqual(m.ndcg, d1 / (1 + d1), accuracy: 1e-12)
        XCTAssertEqual(m.hitRate, 1)
    }

    func testPopularityBaselineByHand() throws {
        // Training-positive counts 3 1 5 0 1 → order i2 i0 i1 i4 (tie with i1: lower index first) i3.
        let top = Retrieval.popularTopK(counts: [3, 1, 5, 0, 1], k: 3, exclude: exclude)
        XCTAssertEqual(top, [[2, 1, 4], [0, 1, 4]])
        let m = try Retrieval.metrics(retrieved: top, relevant: relevant, k: 3)
        // u0 finds both at ranks 0 and 1: recall 1, ndcg 1; u1 nothing.
        XCTAssertEqual(m.recall, 0.5, accuracy: 1e-12)
        XCTAssertEqual(m.ndcg, 0.5, accuracy: 1e-12)
    }

    func testEdgeCases() throws {
        // A user without an embedding (-1) retrieves nothing; k larger than the remaining items.
        let top = try Retrieval.topK(users: users, rows: [-1, 0], items: items, k: 10, exclude: [[], [0, 1, 2]])
        XCTAssertEqual(top, [[], [3, 4]])
        XCTAssertThrowsError(try Retrieval.topK(users: users, rows: [0], items: Tensor(shape: [5, 3]), k: 1, exclude: [[]]))
        XCTAssertThrowsError(try Retrieval.topK(users: users, rows: [0], items: items, k: 0, exclude: [[]]))
        XCTAssertThrowsError(try Retrieval.topK(users: users, rows: [2], items: items, k: 1, exclude: [[]]))
    }

    /// The blocked GEMM + heap top-k equals scoring every item in a plain loop and sorting. Small
    /// integer embeddings make every score exact in FP32, so there are many exact ties and the
    /// tie order (lower item first) is checked too.
    func testGemmTopKEqualsPlainLoop() throws {
        var rng = SplitMix64(seed: 7)
        let u = 37, i = 1000, e = 8, k = 10
        let users = Tensor(shape: [u, e], values: (0..<(u * e)).map { _ in Float(Int(rng.next() % 5) - 2) })
        let items = Tensor(shape: [i, e], values: (0..<(i * e)).map { _ in Float(Int(rng.next() % 5) - 2) })
        let rows = (0..<50).map { _ in Int(rng.next() % UInt64(u)) }
        let exclude = rows.map { _ in (0..<Int(rng.next() % 40)).map { _ in Int(rng.next() % UInt64(i)) } }
        for block in [1, 8, 128] {
            let top = try Retrieval.topK(users: users, rows: rows, items: items, k: k, exclude: exclude, blockRows: block)
            for (q, r) in rows.enumerated() {
                let skip = Set(exclude[q])
                var scored: [(Float, Int)] = []
                for j in 0..<i where !skip.contains(j) {
                    var s: Float = 0
                    for d in 0..<e { s += users[r, d] * items[j, d] }
                    scored.append((s, j))
                }
                scored.sort { $0.0 != $1.0 ? $0.0 > $1.0 : $0.1 < $1.1 }
                XCTAssertEqual(top[q], scored.prefix(k).map(\.1), "query \(q), block \(block)")
            }
        }
    }
}
