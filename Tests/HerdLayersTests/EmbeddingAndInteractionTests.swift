import HerdData
import HerdLayers
import HerdTensor
import HerdTestSupport
import XCTest

final class EmbeddingAndInteractionTests: XCTestCase {
    /// Bags with duplicates, an empty bag and a multi-hot bag.
    let ids: [Int32] = [3, 1, 3, 0, 2, 2, 2, 4]
    let offsets: [Int32] = [0, 2, 2, 5, 8]  // bags: {3,1}, {}, {3,0,2}, {2,2,4}

    func testEmbeddingBagForwardMatchesPlainLoop() {
        let table = randomTensor([5, 3], seed: 1)
        for pooling in [Pooling.sum, .mean] {
            var out = [Float](repeating: -1, count: 4 * 3)
            Kernels.embeddingBagForward(table: table.data, rows: 5, dimension: 3, ids: ids, offsets: offsets, bags: 4, pooling: pooling, out: &out, outStride: 3)
            for bag in 0..<4 {
                let members = ids[Int(offsets[bag])..<Int(offsets[bag + 1])]
                for k in 0..<3 {
                    var s: Float = 0
                    for id in members { s += table[Int(id), k] }
                    if pooling == .mean && !members.isEmpty { s /= Float(members.count) }
                    XCTAssertEqual(out[bag * 3 + k], s, accuracy: 1e-6)
                }
            }
        }
    }

    func testEmbeddingBagBackwardMergesDuplicatesAndMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 2)
        let table = DenseEmbeddingTable(name: "t", rows: 6, dimension: 3, rng: &rng)
        let c = randomTensor([4, 3], seed: 8).array
        for pooling in [Pooling.sum, .mean] {
            let g = c.withUnsafeBufferPointer {
                Kernels.embeddingBagBackward(gradOut: $0.baseAddress!, gradStride: 3, dimension: 3, ids: ids, offsets: offsets, bags: 4, pooling: pooling)
            }
            XCTAssertEqual(g.ids, [0, 1, 2, 3, 4], "unique ascending ids")
            let loss: () -> Double = {
                var out = [Float](repeating: 0, count: 12)
                table.pool(ids: self.ids, offsets: self.offsets, bags: 4, pooling: pooling, out: &out, outStride: 3)
                return probeLoss(Tensor(shape: [4, 3], values: out), c)
            }
            let m = GradientCheck().check([("table", table.weight, densify(g, rows: 6))], loss: loss)
            XCTAssertEqual(m.map(\.description), [], "\(pooling)")
        }
    }

    func testMergeSparseSumsEqualIds() {
        let a = SparseRowGradient(ids: [1, 4], rows: Tensor(shape: [2, 2], values: [1, 2, 3, 4]), dimension: 2)
        let b = SparseRowGradient(ids: [0, 4], rows: Tensor(shape: [2, 2], values: [10, 20, 30, 40]), dimension: 2)
        let m = Kernels.mergeSparse([a, b])
        XCTAssertEqual(m.ids, [0, 1, 4])
        XCTAssertEqual(m.rows.array, [10, 20, 1, 2, 33, 44])
    }

    func testInteractionBackwardMatchesFiniteDifferences() {
        // d = 3 takes the scalar path, 8 and 16 the SIMD path.
        for kind in [InteractionKind.dot, .cat] { for d in [3, 8, 16] {
            let inter = Interaction(kind: kind, vectors: 4, dimension: d)
            let b = 2
            let t = randomTensor([b, 4 * d], seed: 5)
            let c = randomTensor([b, inter.outputs], seed: 6).array
            let r = Tensor(shape: [b, inter.outputs])
            let dt = Tensor(shape: [b, 4 * d])
            inter.forward(t.data, batch: b, into: r.data)
            c.withUnsafeBufferPointer { inter.backward($0.baseAddress!, input: t.data, batch: b, into: dt.data) }
            let m = GradientCheck().check([("t", t, dt.array)]) {
                inter.forward(t.data, batch: b, into: r.data)
                return probeLoss(r, c)
            }
            XCTAssertEqual(m.map(\.description), [], "\(kind) d=\(d)")
        } }
    }

    func testSIMDDotInteractionMatchesPlainLoop() {
        // Vector counts around the 8-column chunks and 32-column blocks; the output buffer has
        // sentinels after it (the kernel's chunk stores must not run past the batch).
        for n in [2, 5, 9, 17, 27, 33, 41] { for d in [3, 8, 16] {
            let b = 3
            let inter = Interaction(kind: .dot, vectors: n, dimension: d)
            let w = inter.outputs
            let t = randomTensor([b, n * d], seed: UInt64(8 + n))
            let r = Tensor(shape: [b * w + 16])
            r.fill(-7)
            inter.forward(t.data, batch: b, into: r.data)
            for s in 0..<b {
                for e in 0..<d { XCTAssertEqual(r[s * w + e], t[s, e], "dense copy n=\(n) d=\(d)") }
                var k = d
                for i in 1..<n { for j in 0..<i {
                    var dot: Float = 0
                    for e in 0..<d { dot += t[s, i * d + e] * t[s, j * d + e] }
                    XCTAssertEqual(r[s * w + k], dot, accuracy: 1e-5, "n=\(n) d=\(d) sample \(s) pair (\(i), \(j))")
                    k += 1
                } }
            }
            for x in (b * w)..<(b * w + 16) { XCTAssertEqual(r[x], -7, "wrote past the batch, n=\(n) d=\(d)") }
        } }
    }

    func testDotInteractionBackwardMatchesPlainLoop() {
        // d = 3 takes the scalar path, 16 the one-vector-per-row path, 8/24/32 the 8-column chunks.
        for n in [2, 5, 9, 17, 27, 33] { for d in [3, 8, 16, 24, 32] {
            let b = 3
            let inter = Interaction(kind: .dot, vectors: n, dimension: d)
            let w = inter.outputs
            let t = randomTensor([b, n * d], seed: UInt64(20 + n))
            let dr = randomTensor([b, w], seed: UInt64(40 + d))
            let dt = Tensor(shape: [b, n * d])
            dt.fill(-3)  // overwritten, not accumulated
            inter.backward(dr.data, input: t.data, batch: b, into: dt.data)
            for s in 0..<b {
                var expected = [Float](repeating: 0, count: n * d)
                for e in 0..<d { expected[e] = dr[s, e] }
                var k = d
                for i in 1..<n { for j in 0..<i {
                    let g = dr[s, k]
                    for e in 0..<d {
                        expected[i * d + e] += g * t[s, j * d + e]
                        expected[j * d + e] += g * t[s, i * d + e]
                    }
                    k += 1
                } }
                for x in 0..<(n * d) { XCTAssertEqual(dt[s, x], expected[x], accuracy: 1e-4, "n=\(n) d=\(d) sample \(s) element \(x)") }
            }
        } }
    }

    func testDotInteractionBackwardMatchesFiniteDifferencesAtCriteoSize() {
        // 27 vectors of 16 (DLRM's Criteo shape) and of 24 (the 8-column path).
        for d in [16, 24] {
            let inter = Interaction(kind: .dot, vectors: 27, dimension: d)
            let b = 2
            let t = randomTensor([b, 27 * d], seed: 9, scale: 0.5)
            let c = randomTensor([b, inter.outputs], seed: 10).array
            let r = Tensor(shape: [b, inter.outputs])
            let dt = Tensor(shape: [b, 27 * d])
            c.withUnsafeBufferPointer { inter.backward($0.baseAddress!, input: t.data, batch: b, into: dt.data) }
            let m = GradientCheck().check([("t", t, dt.array)]) {
                inter.forward(t.data, batch: b, into: r.data)
                return probeLoss(r, c)
            }
            XCTAssertEqual(m.map(\.description), [], "d=\(d)")
        }
    }

    func testEmbeddingBagScatterAddMatchesPlainLoop() {
        // Duplicate ids within and across bags, an empty bag, one-hot bags; d = 3 and 16.
        let ids: [Int32] = [3, 1, 3, 0, 2, 2, 2, 4, 5, 3]
        let offsets: [Int32] = [0, 2, 2, 5, 8, 9, 10]
        for d in [3, 16] { for pooling in [Pooling.sum, .mean] {
            let table = randomTensor([6, d], seed: 30)
            let grad = randomTensor([6, d + 5], seed: 31)  // stride d + 5, gradients at column 2
            var expected = table.array
            for bag in 0..<6 {
                let members = ids[Int(offsets[bag])..<Int(offsets[bag + 1])]
                let scale: Float = pooling == .mean && members.count > 1 ? -0.5 / Float(members.count) : -0.5
                for id in members { for k in 0..<d { expected[Int(id) * d + k] += scale * grad[bag, 2 + k] } }
            }
            Kernels.embeddingBagScatterAdd(alpha: -0.5, gradOut: grad.data + 2, gradStride: d + 5, dimension: d, ids: ids, offsets: offsets,
                                           bags: 6, pooling: pooling, table: table.data, rows: 6)
            XCTAssertLessThan(maxAbsDifference(table.array, expected), 1e-6, "d=\(d) \(pooling)")
        } }
    }

    func testKeptBagGradientsEqualEagerRowGradientsAndSGDUpdate() {
        // Two shards' bag gradients kept and appended vs the eager row gradients merged; then
        // plain SGD applied straight from the bags vs row by row from the merged gradient.
        let sizes = [7, 5], d = 16, b = 4
        var rngA = SplitMix64(seed: 3), rngB = SplitMix64(seed: 3)
        let a = try! EmbeddingBagCollection(spec: "dense", prefix: "a", tableSizes: sizes, dimension: d, pooling: .mean, rng: &rngA)
        let kept = [EmbeddingBagCollection(sharing: a), EmbeddingBagCollection(sharing: a)]
        let reference = try! EmbeddingBagCollection(spec: "dense", prefix: "b", tableSizes: sizes, dimension: d, pooling: .mean, rng: &rngB)
        let shards = [
            KeyedJagged(features: 2, batchSize: b, offsets: [0, 1, 3, 3, 4, 6, 7, 8, 9], ids: [6, 2, 6, 0, 1, 4, 4, 1, 4]),
            KeyedJagged(features: 2, batchSize: b, offsets: [0, 2, 3, 4, 5, 6, 7, 8, 10], ids: [6, 6, 3, 2, 0, 4, 0, 0, 2, 4]),
        ]
        let width = 2 * d
        var eager: [[SparseRowGradient]] = []
        for (i, sparse) in shards.enumerated() {
            let out = Tensor(shape: [b, width])
            let grad = randomTensor([b, width], seed: UInt64(50 + i))
            kept[i].forward(sparse, out: out.data, outStride: width, outOffset: 0)
            kept[i].backward(keeping: grad, gradStride: width, gradOffset: 0)
            XCTAssertTrue(kept[i].keepsBagGradients)
            reference.forward(sparse, out: out.data, outStride: width, outOffset: 0)
            reference.backward(grad: grad.data, gradStride: width, gradOffset: 0)
            XCTAssertFalse(reference.keepsBagGradients)
            eager.append(reference.gradients)
        }
        kept[0].appendBagGradients(of: [kept[1]])
        for f in 0..<2 {
            let merged = Kernels.mergeSparse([eager[0][f], eager[1][f]])
            let lazy = kept[0].gradient(table: f)
            XCTAssertEqual(lazy.ids, merged.ids)
            XCTAssertLessThan(maxAbsDifference(lazy.rows.array, merged.rows.array), 1e-6)
            reference.setGradients(zip(eager[0], eager[1]).map { Kernels.mergeSparse([$0, $1]) })
            reference.applyScaled(table: f, alpha: -0.1)
            kept[0].applyScaled(table: f, alpha: -0.1)
            XCTAssertLessThan(maxAbsDifference(a.tables[f].weight.array, reference.tables[f].weight.array), 1e-6, "table \(f)")
        }
    }

    func testMergeSparseMatchesDictionarySum() {
        var rng = SplitMix64(seed: 12)
        var parts: [SparseRowGradient] = []
        var expected: [Int32: [Float]] = [:]
        for _ in 0..<3 {
            let ids = Array(Set((0..<20).map { _ in Int32(rng.next() % 30) })).sorted()
            let rows = randomTensor([ids.count, 2], seed: rng.next())
            for (i, id) in ids.enumerated() {
                let old = expected[id] ?? [0, 0]
                expected[id] = [old[0] + rows[i, 0], old[1] + rows[i, 1]]
            }
            parts.append(SparseRowGradient(ids: ids, rows: rows, dimension: 2))
        }
        let m = Kernels.mergeSparse(parts)
        XCTAssertEqual(m.ids, expected.keys.sorted())
        for (i, id) in m.ids.enumerated() {
            XCTAssertEqual(m.rows[i, 0], expected[id]![0], accuracy: 1e-6)
            XCTAssertEqual(m.rows[i, 1], expected[id]![1], accuracy: 1e-6)
        }
    }

    func testDotInteractionValues() {
        let inter = Interaction(kind: .dot, vectors: 3, dimension: 2)
        let t = Tensor(shape: [1, 6], values: [1, 2, 3, 4, 5, 6])
        let r = Tensor(shape: [1, inter.outputs])
        inter.forward(t.data, batch: 1, into: r.data)
        // [x0, x1] then (1,0), (2,0), (2,1)
        let expected: [Float] = [1, 2, 11, 17, 39]  // 1·3+2·4, 1·5+2·6, 3·5+4·6
        XCTAssertEqual(r.array, expected)
    }

    func testUnknownTableSpecIsAnError() {
        var rng = SplitMix64(seed: 1)
        XCTAssertThrowsError(try makeEmbeddingTable(spec: "bogus", name: "x", rows: 2, dimension: 2, rng: &rng)) {
            XCTAssertTrue("\($0)".contains("unknown embedding table spec 'bogus'"))
        }
    }
}
