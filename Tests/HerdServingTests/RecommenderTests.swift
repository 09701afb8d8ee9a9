import Foundation
import HerdFeatures
import HerdServing
import HerdTraining
import HerdTestSupport
import XCTest

final class RecommenderTests: XCTestCase {
    nonisolated(unsafe) static var fixture: RecommenderFixture?

    /// One generated workspace for the whole class (generation + preprocessing take a few seconds).
    func shared() throws -> RecommenderFixture {
        if let f = Self.fixture { return f }
        let f = try RecommenderFixture.make()
        Self.fixture = f
        return f
    }

    override class func tearDown() {
        fixture?.remove()
        fixture = nil
        super.tearDown()
    }

    func testRankedAnswerMatchesTheReferencePathAndTheIndex() throws {
        let f = try shared()
        var lines: [String] = []
        let rec = try Recommender.load(workspace: f.workspace) { lines.append($0) }
        XCTAssertEqual(rec.missingRankingColumns, ["engagee_follows_engager"])
        XCTAssertEqual(lines.filter { $0.contains("engagee_follows_engager") }.count, 1, "\(lines)")
        XCTAssertTrue(lines.contains { $0.contains("train.herdtable positives") }, "\(lines)")
        let items = Set(f.itemIDs)
        let index = try loadIndex(from: f.workspace.itemIndex)
        let users = try UserEmbeddings(url: f.workspace.embeddingTable("user"))
        for user in f.userIDs.prefix(5) {
            let r = try rec.recommend(userID: user, k: 10, canK: 50)
            XCTAssertEqual(r.source, .ranked)
            XCTAssertFalse(r.coldStart)
            XCTAssertFalse(r.degraded)
            XCTAssertEqual(r.candidates, 50)
            XCTAssertEqual(r.ids.count, 10)
            XCTAssertEqual(Set(r.ids).count, 10, "distinct ids")
            XCTAssertTrue(r.ids.allSatisfy(items.contains), "ids from the item table")
            XCTAssertEqual(r.probs, r.probs.sorted(by: >), "probs descending")
            XCTAssertTrue(r.probs.allSatisfy { $0 > 0 && $0 < 1 })
            // Candidates are the index's top canK for the user's embedding.
            let recalled = try index.search(Array(users.vector(of: user)!), k: 50).ids
            XCTAssertTrue(Set(r.ids).isSubset(of: Set(recalled)))
            // The same rows scored directly through the export, in one batch.
            let reference = try f.referenceProbabilities(user: user, items: recalled)
            for (id, p) in zip(r.ids, r.probs) { XCTAssertEqual(p, reference[id]!, accuracy: 1e-5, "item \(id)") }
            let best = recalled.sorted { reference[$0]! > reference[$1]! }.prefix(10)
            XCTAssertEqual(r.probs.last!, reference[best.last!]!, accuracy: 1e-5, "the 10th best of the candidates")
            XCTAssertGreaterThan(r.timings.total, 0)
            XCTAssertGreaterThanOrEqual(r.timings.total, r.timings.recall + r.timings.features + r.timings.ranking)
        }
    }

    /// The in-process ranking batch built straight from the store's rows equals the table path's
    /// batch, with item misses (unknown ids), an unknown user and the all-zero pair column.
    func testDirectRankingBatchEqualsTheTablePath() throws {
        let f = try shared()
        let rec = try Recommender.load(workspace: f.workspace)
        let store = try XCTUnwrap(rec.context?.store)
        let input = rec.rankingInput
        // A user the store does not have whose id is still inside the key column's cardinality.
        let known = Set(f.userIDs)
        let absentUser = try XCTUnwrap((1..<Int64(f.userIDs.count + 2)).first { !known.contains($0) })
        for (user, items) in [(f.userIDs[0], Array(f.itemIDs.prefix(40))), (f.userIDs[3], [f.itemIDs[5], 9_999_999, f.itemIDs[7]]),
                              (absentUser, Array(f.itemIDs.suffix(3))), (f.userIDs[1], [])] {
            let u = try store.get(kind: .user, ids: [user]), i = try store.get(kind: .item, ids: items)
            let direct = try input.batch(userID: user, user: u, items: i)
            let viaTable = try input.table(userID: user, user: u, items: i).batch(input.spec)
            XCTAssertEqual(direct.count, items.count)
            XCTAssertEqual(direct.dense.shape, viaTable.dense.shape)
            XCTAssertEqual(direct.dense.array, viaTable.dense.array, "dense, user \(user)")
            XCTAssertEqual(direct.sparse.offsets, viaTable.sparse.offsets, "offsets, user \(user)")
            XCTAssertEqual(direct.sparse.ids, viaTable.sparse.ids, "ids, user \(user)")
            XCTAssertEqual(direct.sparse.features, viaTable.sparse.features)
        }
        // An id outside the key column's cardinality is refused by both, naming the column.
        let u = try store.get(kind: .user, ids: [8_888_888]), i = try store.get(kind: .item, ids: [f.itemIDs[0]])
        XCTAssertThrowsError(try input.batch(userID: 8_888_888, user: u, items: i)) { XCTAssertTrue("\($0)".contains("outside"), "\($0)") }
        XCTAssertThrowsError(try input.table(userID: 8_888_888, user: u, items: i).batch(input.spec))
    }

    func testMicroBatchSizeDoesNotChangeTheAnswer() throws {
        let f = try shared()
        var small = RecommenderConfig()
        small.microBatch = 7
        let a = try Recommender.load(workspace: f.workspace, config: small)
        let b = try Recommender.load(workspace: f.workspace)
        let user = f.userIDs[3]
        let x = try a.recommend(userID: user, k: 20, canK: 100), y = try b.recommend(userID: user, k: 20, canK: 100)
        XCTAssertEqual(x.ids, y.ids)
        for (p, q) in zip(x.probs, y.probs) { XCTAssertEqual(p, q, accuracy: 1e-6) }
    }

    func testUnknownUserGetsPopularItemsMarkedColdStart() throws {
        let f = try shared()
        let rec = try Recommender.load(workspace: f.workspace)
        let unknown = (f.userIDs.max() ?? 0) + 1000
        let r = try rec.recommend(userID: unknown, k: 5, canK: 10)
        XCTAssertTrue(r.coldStart)
        XCTAssertFalse(r.degraded)
        XCTAssertEqual(r.source, .popular)
        XCTAssertEqual(r.candidates, 10)
        // The popular list: most positives in the training table first (counted here by hand).
        let train = f.features.train
        let keys = try train.column(RecSys2021Features.itemKey).int64Values!
        let labels = try XCTUnwrap(f.export.featureState.batchSpec?.labels)
        let flags = try labels.map { try train.column($0).numericValues! }
        var positives: [Int64: Int] = [:]
        for r in 0..<train.rowCount where keys[r] != 0 && flags.contains(where: { $0[r] > 0 }) { positives[keys[r], default: 0] += 1 }
        let counts = rec.popular.ids.map { positives[$0] ?? 0 }
        XCTAssertEqual(counts, counts.sorted(by: >))
        XCTAssertEqual(counts.first, positives.values.max())
        XCTAssertEqual(rec.popular.scores, counts.map { Float($0) / Float(counts[0]) }, "scores: positives over the top item's")
        // The answer: the 10 most popular ranked by the model for the empty user, the best 5, probs
        // descending like a ranked answer.
        let popular10 = Array(rec.popular.ids.prefix(10))
        let reference = try f.referenceProbabilities(user: nil, items: popular10)
        let best = popular10.enumerated().sorted { (reference[$0.1]!, -$0.0) > (reference[$1.1]!, -$1.0) }.prefix(5).map(\.1)
        XCTAssertEqual(r.ids, best)
        XCTAssertEqual(r.probs, r.probs.sorted(by: >), "probs descending")
        for (id, p) in zip(r.ids, r.probs) { XCTAssertEqual(p, reference[id]!, accuracy: 1e-5, "item \(id)") }
        // k = canK: every popular candidate comes back, reordered by the model.
        let all = try rec.recommend(userID: unknown, k: 10, canK: 10)
        XCTAssertEqual(Set(all.ids), Set(popular10))
        XCTAssertEqual(all.probs, all.probs.sorted(by: >))
    }

    func testColdStartWithAFailingStoreFallsBackToPopularityOrder() throws {
        let f = try shared()
        let base = try Recommender.load(workspace: f.workspace)
        var context = try XCTUnwrap(base.context)
        context.store = FailingFeatureStore(context.store, mode: .fail)
        let rec = try Recommender(context: context, log: { _ in })
        let r = try rec.recommend(userID: (f.userIDs.max() ?? 0) + 1000, k: 4, canK: 20)
        XCTAssertTrue(r.coldStart)
        XCTAssertTrue(r.degraded)
        XCTAssertEqual(r.source, .popular)
        XCTAssertEqual(r.ids, Array(base.popular.ids.prefix(4)), "popularity order")
        XCTAssertEqual(r.probs, Array(base.popular.scores.prefix(4)))
        XCTAssertEqual(r.probs, r.probs.sorted(by: >))
        XCTAssertTrue(r.probs.allSatisfy { $0 > 0 && $0 <= 1 }, "\(r.probs)")
    }

    func testFailingStoreGivesADegradedRecallAnswer() throws {
        let f = try shared()
        let base = try Recommender.load(workspace: f.workspace)
        var context = try XCTUnwrap(base.context)
        context.store = FailingFeatureStore(context.store, mode: .fail)
        let rec = try Recommender(context: context)
        let user = f.userIDs[1]
        let r = try rec.recommend(userID: user, k: 10, canK: 50)
        XCTAssertTrue(r.degraded)
        XCTAssertEqual(r.source, .recall)
        XCTAssertTrue(r.reason?.contains("connection refused") ?? false, "\(r.reason ?? "nil")")
        let recalled = try context.index.search(Array(context.userEmbeddings.vector(of: user)!), k: 50).ids
        XCTAssertEqual(r.ids, Array(recalled.prefix(10)), "recall order")
        XCTAssertEqual(r.probs, r.probs.sorted(by: >))
        guard case .degraded(let why) = rec.readiness else { return XCTFail("readiness \(rec.readiness)") }
        XCTAssertTrue(why.contains("unhealthy"), why)
        XCTAssertEqual(base.readiness, .ready)
    }

    func testStalledStoreAnswersWithinTheDeadline() throws {
        let f = try shared()
        let base = try Recommender.load(workspace: f.workspace)
        var context = try XCTUnwrap(base.context)
        context.store = FailingFeatureStore(context.store, mode: .stall(seconds: 2))
        let rec = try Recommender(context: context)
        let t0 = ContinuousClock.now
        let r = try rec.recommend(userID: f.userIDs[2], k: 10, canK: 50, deadline: t0 + .milliseconds(150))
        let took = ContinuousClock.now - t0
        XCTAssertLessThan(took, .milliseconds(1000), "answered after \(took)")
        XCTAssertTrue(r.degraded)
        XCTAssertEqual(r.source, .recall)
        XCTAssertTrue(r.reason?.contains("deadline") ?? false, "\(r.reason ?? "nil")")
        guard case .degraded = rec.readiness else { return XCTFail("a timeout should report degraded for a while") }
    }

    func testBadKAndCanKAreInvalidArguments() throws {
        let f = try shared()
        let rec = try Recommender.load(workspace: f.workspace)
        let user = f.userIDs[0]
        for (k, canK, word) in [(0, 10, "k = 0"), (1001, 2000, "k = 1001"), (10, 5, "canK = 5"), (10, 10_001, "canK = 10001")] {
            XCTAssertThrowsError(try rec.recommend(userID: user, k: k, canK: canK)) { error in
                guard case RecommenderError.invalidArgument(let m) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(m.contains(word), m)
                XCTAssertEqual((error as? RecommenderError)?.httpStatus, 400)
            }
        }
        XCTAssertNoThrow(try rec.recommend(userID: user, k: 10, canK: 10))
    }

    func testConcurrentCallsGiveTheSameAnswersAsSequentialOnes() throws {
        let f = try shared()
        for coalesce in [1, 512] {
            var config = RecommenderConfig()
            config.replicas = 1  // the pool must grow under concurrency
            config.microBatch = 16
            config.coalesceRows = coalesce
            let rec = try Recommender.load(workspace: f.workspace, config: config)
            XCTAssertEqual((rec.backends.ranking as? LocalRanking)?.batcher != nil, coalesce > 1)
            let users = Array(f.userIDs.prefix(8))
            let expected = try users.map { try rec.recommend(userID: $0, k: 10, canK: 64) }
            let results = ResultsBox(count: 64)
            DispatchQueue.concurrentPerform(iterations: 64) { i in
                results.set(i, try? rec.recommend(userID: users[i % users.count], k: 10, canK: 64))
            }
            for i in 0..<64 {
                let r = try XCTUnwrap(results.get(i), "call \(i) threw")
                XCTAssertEqual(r.ids, expected[i % users.count].ids, "call \(i), coalesce \(coalesce)")
                for (p, q) in zip(r.probs, expected[i % users.count].probs) { XCTAssertEqual(p, q, accuracy: 1e-6, "call \(i), coalesce \(coalesce)") }
            }
        }
    }

    func testResponseJSONHasFriesiansKeysWithNulls() throws {
        let r = Recommendation(userID: 1, ids: [5, 3], probs: [0.75, 0.5], source: .ranked, candidates: 2)
        let object = try JSONSerialization.jsonObject(with: RecommendResponse(r).jsonData()) as! [String: Any]
        XCTAssertEqual(object["ids"] as? [Int], [5, 3])
        XCTAssertEqual(object["probs"] as? [Double], [0.75, 0.5])
        XCTAssertEqual(object["success"] as? Bool, true)
        XCTAssertTrue(object["errorCode"] is NSNull)
        XCTAssertTrue(object["errorMsg"] is NSNull)
        let e = try JSONSerialization.jsonObject(with: RecommendResponse(error: .invalidArgument("k = 0")).jsonData()) as! [String: Any]
        XCTAssertEqual(e["success"] as? Bool, false)
        XCTAssertEqual(e["errorCode"] as? String, "INVALID_ARGUMENT")
        XCTAssertEqual(e["errorMsg"] as? String, "k = 0")
    }
}

private final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Recommendation?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Recommendation?) { lock.withLock { values[i] = r } }
    func get(_ i: Int) -> Recommendation? { lock.withLock { values[i] } }
}
