import Foundation
import HerdData
import HerdLayers
import HerdModels
import HerdTensor
import HerdTestSupport
import XCTest

/// `freezeForInference` (serving: weights rounded / transposed once at load) and serve-time BF16
/// (`ModelConfig.with(precision:)`) against the plain per-forward path and FP32.
final class InferenceFreezeTests: XCTestCase {
    /// A W&D shaped like the RecSys one: embeddings, an indicator block (first layer FP32, sparse
    /// multiply), dense columns, batch norm, hidden layers wide enough for BF16, a wide part with a cross.
    func config() -> WideAndDeepConfig {
        var c = WideAndDeepConfig(tableSizes: [40, 30, 7, 5, 9])
        c.embeddingDims = [8, 8, 0, 0, 4]
        c.indicators = [2, 3]
        c.denseFeatures = 3
        c.deepMLP = [256, 128, 1]
        c.batchNorm = true
        c.crosses = [[0, 1]]
        c.crossBuckets = 17
        c.seed = 3
        return c
    }

    func batch(rows b: Int, tableSizes: [Int], seed: UInt64) -> Batch {
        var rng = SplitMix64(seed: seed)
        var ids: [Int32] = []
        for n in tableSizes { for _ in 0..<b { ids.append(Int32(rng.next() % UInt64(n))) } }
        return Batch(dense: randomTensor([b, 3], seed: seed), sparse: KeyedJagged(oneHot: ids, features: tableSizes.count, batchSize: b), labels: [])
    }

    /// Random (not initial) weights everywhere, positive running variances.
    func randomizeWeights(_ m: any RankingModel) {
        var rng = SplitMix64(seed: 11)
        for (name, t) in m.namedWeights {
            for i in 0..<t.count {
                let g = rng.nextGaussian()
                t[i] = name.hasSuffix("running_var") ? 0.5 + abs(g) : (name.contains("wide_arch") || name.hasSuffix("bias") ? 0.3 * g : t[i] * (1 + 0.5 * g))
            }
        }
    }

    func probabilities(_ m: any RankingModel, _ b: Batch) -> [Float] { m.forward(b).array.map(Kernels.sigmoid) }

    /// Two models of `config()` (with `batchNorm`, at `precision`) holding the same random weights,
    /// both in inference mode: the reference first, the one to freeze second.
    func modelPair(batchNorm: Bool = true, precision: Precision = .fp32) throws -> (any RankingModel, any RankingModel) {
        var cfg = config()
        cfg.batchNorm = batchNorm
        let c = try ModelConfig.wnd(cfg).with(precision: precision)
        let reference = try c.build(), other = try c.build()
        randomizeWeights(reference)
        try other.loadWeights(Dictionary(uniqueKeysWithValues: reference.namedWeights))
        for m in [reference, other] { m.setMode(.inference) }
        return (reference, other)
    }

    /// Without batch norm the frozen forward is the per-forward path exactly, except that frozen
    /// FP32 layers multiply on their packed weight (`PackedF32Weight`, AVX-512): another summation
    /// order, so within float rounding; with batch norm, the norms are folded into the Linears
    /// before them (`MLP.freezeForInference`): FP32 within float rounding, BF16 within BF16
    /// rounding (the folded weight is rounded instead). Replicas made
    /// after freezing give the frozen model's results exactly, and the trained weights (export)
    /// are untouched.
    func testFrozenForwardEqualsPerForwardPathAndReplicasShareIt() throws {
        for batchNorm in [false, true] {
            for precision in Precision.allCases {
                let (live, frozen) = try modelPair(batchNorm: batchNorm, precision: precision)
                // NOTE: the plain frozen path here; hoisting is compared with it below.
                frozen.freezeForInference(hoistUniformColumns: false)
                let replica = frozen.replica()
                replica.setMode(.inference)
                let what = "\(precision), batch norm \(batchNorm)"
                for (rows, seed) in [(50, UInt64(1)), (7, 2), (200, 3)] {
                    let b = batch(rows: rows, tableSizes: config().tableSizes, seed: seed)
                    let expected = live.forward(b).array
                    let got = frozen.forward(b).array
                    if batchNorm || (precision == .fp32 && PackedF32Weight.available) {
                        let scale = max(1, expected.map(abs).max()!)
                        let tolerance: Float = precision == .fp32 ? 1e-5 * scale : 0.03 * scale
                        let diff = zip(got, expected).map { abs($0 - $1) }.max()!
                        XCTAssertLessThanOrEqual(diff, tolerance, "\(what), \(rows) rows: max |Δlogit| \(diff)")
                        if precision == .fp32 && batchNorm { XCTAssertNotEqual(diff, 0, "folded: not the same float operations") }
                    } else {
                        XCTAssertEqual(got, expected, "\(what), \(rows) rows")
                    }
                    XCTAssertEqual(replica.forward(b).array, got, "\(what) replica, \(rows) rows")
                }
                for ((n, a), (m, w)) in zip(live.namedWeights, frozen.namedWeights) {
                    XCTAssertEqual(n, m)
                    XCTAssertEqual(a.array, w.array, "\(what): \(n) changed by freezing")
                }
            }
        }
    }

    /// One user's candidates: the user's columns (feature 1's embedding, indicator feature 3,
    /// dense column 0) equal in every row, the rest varying.
    func request(rows b: Int, seed: UInt64) -> Batch {
        let r = batch(rows: b, tableSizes: config().tableSizes, seed: seed)
        var ids = r.sparse.ids
        for f in [1, 3] { for s in 1..<b { ids[f * b + s] = ids[f * b] } }
        for s in 1..<b { r.dense[s, 0] = r.dense[0, 0] }
        return Batch(dense: r.dense, sparse: KeyedJagged(oneHot: ids, features: r.sparse.features, batchSize: b), labels: [])
    }

    /// Hoisting the user's columns (`freezeForInference(hoistUniformColumns: true)`, the default)
    /// against the plain frozen path, FP32 and BF16, with and without batch norm, on request-shaped
    /// batches and on batches where nothing but the indicator block is special.
    func testHoistingUniformColumnsMatchesThePlainFrozenPath() throws {
        for batchNorm in [false, true] {
            for precision in Precision.allCases {
                let (plain, hoisted) = try modelPair(batchNorm: batchNorm, precision: precision)
                plain.freezeForInference(hoistUniformColumns: false)
                hoisted.freezeForInference()
                let replica = hoisted.replica()
                replica.setMode(.inference)
                let what = "\(precision), batch norm \(batchNorm)"
                for (rows, seed, isRequest) in [(200, UInt64(1), true), (64, 2, true), (2, 3, true), (50, 4, false), (1, 5, true)] {
                    let b = isRequest ? request(rows: rows, seed: seed) : batch(rows: rows, tableSizes: config().tableSizes, seed: seed)
                    let expected = plain.forward(b).array
                    let got = hoisted.forward(b).array
                    let scale = max(1, expected.map(abs).max()!)
                    let tolerance: Float = precision == .fp32 ? 1e-5 * scale : 0.03 * scale
                    XCTAssertLessThanOrEqual(maxAbsDifference(got, expected), tolerance, "\(what), \(rows) rows")
                    XCTAssertEqual(replica.forward(b).array, got, "\(what) replica, \(rows) rows")
                    let deep = (hoisted as! WideAndDeep).deepArch
                    if isRequest && rows > 1 && deep.layers[0].precision == .fp32 {
                        // 8 embedding columns + feature 3's 5 indicator columns + 1 dense column.
                        XCTAssertGreaterThanOrEqual(deep.lastHoistedColumns, 14, "\(what), \(rows) rows")
                        XCTAssertLessThan(deep.lastForwardMACs, (plain as! WideAndDeep).deepArch.lastForwardMACs, what)
                    }
                }
            }
        }
    }

    /// A request whose rows `distinct..<b` repeat rows `0..<distinct` (every feature).
    func repeatedRequest(rows b: Int, distinct: Int, seed: UInt64) -> Batch {
        let r = request(rows: b, seed: seed)
        var ids = r.sparse.ids
        for s in distinct..<b {
            for f in 0..<r.sparse.features { ids[f * b + s] = ids[f * b + s % distinct] }
            for c in 0..<r.dense.columns { r.dense[s, c] = r.dense[s % distinct, c] }
        }
        return Batch(dense: r.dense, sparse: KeyedJagged(oneHot: ids, features: r.sparse.features, batchSize: b), labels: [])
    }

    /// The first-layer row cache (`setRowCache`) leaves the hoisted path's logits unchanged bit for
    /// bit; the deep MLP's repeated-row dedupe (`setDedupesRows`, with the cache) within float
    /// rounding (the logit layer's OpenBLAS product sums in an order that depends on the row
    /// count) — FP32 and BF16, with and without batch norm, on replicas too.
    func testRowCacheAndDedupeKeepTheHoistedLogits() throws {
        for batchNorm in [false, true] {
            for precision in Precision.allCases {
                let hoisted = try modelPair(batchNorm: batchNorm, precision: precision).0
                let (cached, deduped) = try modelPair(batchNorm: batchNorm, precision: precision)
                try cached.loadWeights(Dictionary(uniqueKeysWithValues: hoisted.namedWeights))
                try deduped.loadWeights(Dictionary(uniqueKeysWithValues: hoisted.namedWeights))
                for m in [hoisted, cached, deduped] { m.freezeForInference() }
                let cache = cached.setRowCache(bytes: 1 << 20)
                deduped.setRowCache(bytes: 1 << 20)
                deduped.setDedupesRows(true)
                let replica = cached.replica(), dedupedReplica = deduped.replica()
                for r in [replica, dedupedReplica] { r.setMode(.inference) }
                XCTAssertTrue((dedupedReplica as! WideAndDeep).deepArch.dedupesRows)
                let what = "\(precision), batch norm \(batchNorm)"
                for round in 0..<2 {
                    for (rows, distinct, seed) in [(200, 7, UInt64(1)), (64, 64, 2), (5, 1, 3), (2, 1, 4), (1, 1, 5), (30, 3, 6), (50, 49, 7)] {
                        let b = repeatedRequest(rows: rows, distinct: distinct, seed: seed)
                        let expected = hoisted.forward(b).array
                        let c = "\(what), round \(round), \(rows) rows, \(distinct) distinct"
                        XCTAssertEqual(cached.forward(b).array.map(\.bitPattern), expected.map(\.bitPattern), c)
                        XCTAssertEqual(replica.forward(b).array.map(\.bitPattern), expected.map(\.bitPattern), "\(c): replica")
                        let scale = max(1, expected.map(abs).max()!)
                        let d = deduped.forward(b).array
                        XCTAssertLessThanOrEqual(maxAbsDifference(d, expected), 1e-5 * scale, "\(c): deduped")
                        XCTAssertEqual(dedupedReplica.forward(b).array.map(\.bitPattern), d.map(\.bitPattern), "\(c): deduped replica")
                        // Equal rows get equal logits.
                        for s in distinct..<rows { XCTAssertEqual(d[s].bitPattern, d[s % distinct].bitPattern, "\(c): row \(s)") }
                    }
                }
                if let cache {
                    XCTAssertGreaterThan(cache.stats.hits, 0, what)
                    XCTAssertTrue(replica.rowCache === cache, what)
                }
                if PackedF32Weight.available && (hoisted as! WideAndDeep).deepArch.activeLayers[0].precision == .fp32 {
                    XCTAssertNotNil(cache, "\(what): the hoisting first layer gets the cache")
                }
            }
        }
    }

    /// Training mode on a frozen model's replica does not use the folded layers (batch statistics).
    func testFoldedLayersServeOnlyInferenceMode() throws {
        let (live, frozen) = try modelPair()
        frozen.freezeForInference()
        let b = batch(rows: 64, tableSizes: config().tableSizes, seed: 4)
        live.setMode(.training(step: 0, shard: 0))
        frozen.setMode(.training(step: 0, shard: 0))
        XCTAssertEqual(frozen.forward(b).array, live.forward(b).array, "training mode: the batch-norm path")
    }

    func testServeTimeBF16IsCloseToFP32() throws {
        let fp32 = try ModelConfig.wnd(config()).build()
        randomizeWeights(fp32)
        let bf16 = try ModelConfig.wnd(config()).with(precision: .bf16).build()
        XCTAssertEqual(bf16.precision, .bf16)
        try bf16.loadWeights(Dictionary(uniqueKeysWithValues: fp32.namedWeights))
        for m in [fp32, bf16] { m.setMode(.inference); m.freezeForInference() }
        let b = batch(rows: 1000, tableSizes: config().tableSizes, seed: 9)
        let p = probabilities(fp32, b), q = probabilities(bf16, b)
        let maxDiff = zip(p, q).map { abs($0 - $1) }.max()!
        // Top 10 of each 50-row "request" (canK 50), as the recommender picks them.
        var overlap = 0
        for r in stride(from: 0, to: 1000, by: 50) {
            func top(_ v: [Float]) -> Set<Int> { Set((r..<(r + 50)).sorted { v[$0] > v[$1] }.prefix(10)) }
            overlap += top(p).intersection(top(q)).count
        }
        print("serve-time BF16 vs FP32 (random W&D 153→256→128→1 shapes): max |Δp| \(maxDiff), top-10 overlap \(overlap)/200")
        XCTAssertGreaterThan(maxDiff, 0, "BF16 should round something")
        XCTAssertLessThan(maxDiff, 0.02)
        XCTAssertGreaterThanOrEqual(overlap, 180)
    }

    func testBF16IsRefusedForModelsWithoutABF16Path() {
        var d = DeepFMConfig(tableSizes: [4, 5])
        d.seed = 1
        XCTAssertThrowsError(try ModelConfig.deepfm(d).with(precision: .bf16, source: "x")) { e in
            XCTAssertTrue("\(e)".contains("no BF16 path"), "\(e)")
        }
        XCTAssertNoThrow(try ModelConfig.deepfm(d).with(precision: .fp32))
    }

    func testBackwardRefusesAFrozenLayerIsDocumentedByIsFrozen() throws {
        var rng = SplitMix64(seed: 1)
        let l = Linear(name: "l", inputs: 4, outputs: 3, activation: .relu, rng: &rng)
        XCTAssertFalse(l.isFrozen)
        l.freezeForInference()
        XCTAssertTrue(l.isFrozen)
        XCTAssertTrue(Linear(sharing: l).isFrozen)
    }
}
