import Foundation
import HerdServing
import HerdTensor
import XCTest

final class ANNIndexTests: XCTestCase {
    let d = 24

    func testFlatMatchesPlainLoopForBothMetrics() throws {
        var rng = SplitMix64(seed: 3)
        let n = 5000  // more than one 4096-row block
        let x = (0..<(n * d)).map { _ in rng.nextGaussian() }
        let ids = (0..<n).map { Int64($0 * 7 + 1) }
        for metric in ANNMetric.allCases {
            let index = try makeIndex(spec: "Flat", dimension: d, metric: metric)
            try index.add(ids: ids, vectors: x)
            XCTAssertEqual(index.count, n)
            let queries = (0..<(3 * d)).map { _ in rng.nextGaussian() }
            let batch = try index.search(batch: queries, k: 7)
            for b in 0..<3 {
                let q = Array(queries[(b * d)..<((b + 1) * d)])
                let expected = bruteForce(x, ids: ids, query: q, k: 7, metric: metric)
                let one = try index.search(q, k: 7)
                XCTAssertEqual(one.ids, expected.map(\.0), "\(metric)")
                XCTAssertEqual(batch.ids(of: b), expected.map(\.0), "\(metric) batch")
                for (s, e) in zip(one.scores, expected.map(\.1)) { XCTAssertEqual(s, e, accuracy: 1e-3 * max(1, abs(e))) }
            }
        }
    }

    func testFlatPadsWhenFewerThanKAndReplacesExistingIds() throws {
        let index = try makeIndex(spec: "Flat", dimension: 2, metric: .innerProduct)
        try index.add(ids: [10, 20], vectors: [1, 0, 0, 1])
        var r = try index.search([1, 0], k: 3)
        XCTAssertEqual(r.ids, [10, 20])
        try index.add(ids: [10], vectors: [-1, 0])  // replaces, does not duplicate
        XCTAssertEqual(index.count, 2)
        r = try index.search([1, 0], k: 3)
        XCTAssertEqual(r.ids, [20, 10])
        XCTAssertEqual(r.scores, [0, -1])
        let batch = try index.search(batch: [1, 0], k: 3)
        XCTAssertEqual(batch.ids, [20, 10, -1])
        XCTAssertTrue(batch.scores[2].isNaN)
    }

    func testApproximateIndexesReachRecallOnClusteredData() throws {
        let n = 6000, dim = 32
        let x = clusteredVectors(count: n, dimension: dim, clusters: 40, seed: 5)
        let ids = (0..<n).map { Int64($0) }
        let q = clusteredVectors(count: 100, dimension: dim, clusters: 40, seed: 5 &+ 99)
        let flat = try makeIndex(spec: "Flat", dimension: dim, metric: .innerProduct)
        try flat.add(ids: ids, vectors: x)
        let exact = try flat.search(batch: q, k: 10)
        for (spec, floor) in [("IVF64,Flat,nprobe=16", 0.9), ("HNSW16,efSearch=64,efConstruction=100", 0.9)] {
            let index = try makeIndex(spec: spec, dimension: dim, metric: .innerProduct)
            try index.add(ids: ids, vectors: x)
            XCTAssertEqual(index.count, n, spec)
            let r = recall(try index.search(batch: q, k: 10), exact)
            XCTAssertGreaterThan(r, floor, "\(spec) recall@10 \(r)")
        }
        // An IVF that probes every list is exact.
        let full = try makeIndex(spec: "IVF16,Flat,nprobe=16", dimension: dim, metric: .l2)
        try full.add(ids: ids, vectors: x)
        let flatL2 = try makeIndex(spec: "Flat", dimension: dim, metric: .l2)
        try flatL2.add(ids: ids, vectors: x)
        XCTAssertEqual(recall(try full.search(batch: q, k: 10), try flatL2.search(batch: q, k: 10)), 1.0, accuracy: 1e-9)
    }

    /// Maximum inner-product search with vectors of different norms, planted: 2000 unit vectors around a circle
    /// and 20 long ones (norm 3) between 0° and 20°; every query (unit, between 50° and 80°) has a long one as
    /// its best match (checked: one lies within ≈ 62°, and 3·cos 62° > 1 ≥ any unit one's score), 30°–80° away
    /// from its own direction. Filed by direction
    /// (the raw spherical quantizer) the long vectors sit in lists the query's two probes never reach (top-1
    /// found for 0 of 100 queries); the MIPS-augmented quantizer probes their list first.
    func testIVFProbesTheListsOfLongVectorsThatWinTheInnerProduct() throws {
        var rng = SplitMix64(seed: 11)
        let ring = 2000, planted = 20, nq = 100
        var x = [Float](), q = [Float]()
        for _ in 0..<ring { let a = 2 * Float.pi * rng.nextUniform(); x += [cos(a), sin(a)] }
        for _ in 0..<planted { let a = Float.pi / 9 * rng.nextUniform(); x += [3 * cos(a), 3 * sin(a)] }
        for _ in 0..<nq { let a = Float.pi * (50 + 30 * rng.nextUniform()) / 180; q += [cos(a), sin(a)] }
        let ids = (0..<(ring + planted)).map { Int64($0) }
        let ivf = try makeIndex(spec: "IVF32,Flat,nprobe=2", dimension: 2, metric: .innerProduct)
        try ivf.add(ids: ids, vectors: x)
        let found = try ivf.search(batch: q, k: 1)
        var hits = 0
        for b in 0..<nq {
            let best = bruteForce(x, ids: ids, query: Array(q[(2 * b)..<(2 * b + 2)]), k: 1, metric: .innerProduct)[0]
            XCTAssertGreaterThanOrEqual(best.0, Int64(ring), "the planted answer is a long vector")
            if found.ids[b] == best.0 {
                hits += 1
                XCTAssertEqual(found.scores[b], best.1, accuracy: 1e-5)
            }
        }
        XCTAssertGreaterThanOrEqual(hits, 95, "top-1 found for \(hits) of \(nq) queries")
    }

    /// The two-tower's widened vectors (`"item_bias"`): items `[v, τ·b]` with unit `v`, users `[u, 1]`; a few
    /// planted popular items (b > 0) win every query's top 10 by their bias. Recall, exact scores of the long
    /// vectors, and the augmented quantizer through a save/load round trip.
    func testIVFFindsLongVectorsOfMaximumInnerProductSearch() throws {
        let n = 3000, dim = 16, planted = 60, nq = 200
        let v = clusteredVectors(count: n, dimension: dim, clusters: 10, seed: 21)
        let u = clusteredVectors(count: nq, dimension: dim, clusters: 10, seed: 21 &+ 7)
        var rng = SplitMix64(seed: 4)
        var bias = [Float](repeating: 0, count: n)
        for i in 0..<planted { bias[Int(rng.next() % UInt64(n))] = 0.5 + 2.5 * Float(i) / Float(planted) }
        var x = [Float](), q = [Float]()
        for r in 0..<n { x += v[(r * dim)..<((r + 1) * dim)]; x.append(bias[r]) }
        for r in 0..<nq { q += u[(r * dim)..<((r + 1) * dim)]; q.append(1) }
        let ids = (0..<n).map { Int64($0) }
        var exact = ANNResults(queries: nq, k: 10)
        for b in 0..<nq {
            let top = bruteForce(x, ids: ids, query: Array(q[(b * (dim + 1))..<((b + 1) * (dim + 1))]), k: 10, metric: .innerProduct)
            for (i, (id, _)) in top.enumerated() { exact.ids[b * 10 + i] = id }
        }
        XCTAssertTrue(exact.ids.allSatisfy { bias[Int($0)] > 0 }, "every exact top-10 item is a planted one")
        let ivf = try makeIndex(spec: "IVF64,Flat,nprobe=4", dimension: dim + 1, metric: .innerProduct)
        try ivf.add(ids: ids, vectors: x)
        let found = try ivf.search(batch: q, k: 10)
        let r = recall(found, exact)
        XCTAssertGreaterThanOrEqual(r, 0.98, "IVF64 nprobe 4 recall@10 \(r) on [v, τ·b] items")
        // Scores are the exact inner products, also for the long vectors.
        for i in 0..<10 {
            let id = Int(found.ids[i])
            let dot = (0...dim).reduce(Float(0)) { $0 + q[$1] * x[id * (dim + 1) + $1] }
            XCTAssertEqual(found.scores[i], dot, accuracy: 1e-4)
        }
        // The augmented quantizer survives a save/load round trip.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("item.index")
        try ivf.save(to: url)
        XCTAssertEqual(try loadIndex(from: url).search(batch: q, k: 10).ids, found.ids)
    }

    func testSaveLoadRoundTripForEveryKind() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = 800, dim = 16
        let x = clusteredVectors(count: n, dimension: dim, clusters: 10, seed: 8)
        let ids = (0..<n).map { Int64($0) * 3 - 100 }
        let q = Array(x[0..<(5 * dim)])
        for spec in ["Flat", "IVF8,Flat,nprobe=3", "HNSW8,efSearch=20"] {
            let index = try makeIndex(spec: spec, dimension: dim, metric: .l2)
            try index.add(ids: ids, vectors: x)
            let url = dir.appendingPathComponent("item.index")
            try index.save(to: url)
            let back = try loadIndex(from: url)
            XCTAssertEqual(back.count, n, spec)
            XCTAssertEqual(back.dimension, dim)
            XCTAssertEqual(back.metric, .l2)
            XCTAssertEqual(back.spec, index.spec)
            XCTAssertEqual(try back.search(batch: q, k: 5).ids, try index.search(batch: q, k: 5).ids, spec)
        }
    }

    func testCorruptTruncatedAndTamperedFilesAreRefused() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let index = try makeIndex(spec: "HNSW8", dimension: 4, metric: .innerProduct)
        try index.add(ids: [1, 2, 3], vectors: [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0])
        let url = dir.appendingPathComponent("item.index")
        try index.save(to: url)
        let good = try Data(contentsOf: url)

        try good.prefix(good.count - 10).write(to: url)
        XCTAssertThrowsError(try loadIndex(from: url)) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }

        var tampered = good
        tampered[tampered.count - 100] ^= 0x01
        try tampered.write(to: url)
        XCTAssertThrowsError(try loadIndex(from: url)) { XCTAssertTrue("\($0)".contains("checksum mismatch"), "\($0)") }

        try Data("not an index".utf8).write(to: url)
        XCTAssertThrowsError(try loadIndex(from: url)) { XCTAssertTrue("\($0)".contains("not a Herd ANN index"), "\($0)") }

        XCTAssertThrowsError(try loadIndex(from: dir.appendingPathComponent("missing.index"))) {
            XCTAssertTrue("\($0)".contains("herd nearline"), "\($0)")
        }
    }

    func testSpecErrorsAreClear() {
        XCTAssertThrowsError(try makeIndex(spec: "LSH", dimension: 4, metric: .l2)) { XCTAssertTrue("\($0)".contains("unknown index spec")) }
        XCTAssertThrowsError(try makeIndex(spec: "IVF0,Flat", dimension: 4, metric: .l2))
        XCTAssertThrowsError(try makeIndex(spec: "IVF16,PQ8", dimension: 4, metric: .l2)) { XCTAssertTrue("\($0)".contains("IVF16,Flat")) }
        XCTAssertThrowsError(try makeIndex(spec: "HNSW32,ef=3", dimension: 4, metric: .l2)) { XCTAssertTrue("\($0)".contains("efSearch=N")) }
        XCTAssertThrowsError(try makeIndex(spec: "IVF16,Flat", dimension: 4, metric: .l2).add(ids: [1], vectors: [0, 0, 0, 1])) {
            XCTAssertTrue("\($0)".contains("at least 16 vectors"), "\($0)")
        }
    }

    func testAddWhileSearchingFromAnotherThread() throws {
        let dim = 16
        for spec in ["Flat", "IVF8,Flat,nprobe=8", "HNSW8"] {
            let index = try makeIndex(spec: spec, dimension: dim, metric: .innerProduct)
            let first = clusteredVectors(count: 500, dimension: dim, clusters: 8, seed: 1)
            try index.add(ids: (0..<500).map { Int64($0) }, vectors: first)
            let more = clusteredVectors(count: 2000, dimension: dim, clusters: 8, seed: 2)
            let stop = UncheckedSendable(UnsafeMutablePointer<Bool>.allocate(capacity: 1))
            stop.value.pointee = false
            let searches = UncheckedSendable(UnsafeMutablePointer<Int>.allocate(capacity: 1))
            searches.value.pointee = 0
            let box = UncheckedSendable(index)
            let reader = Thread {
                let q = Array(first[0..<dim])
                while !stop.value.pointee {
                    let r = try! box.value.search(q, k: 5)
                    precondition(r.ids.count == 5)
                    searches.value.pointee += 1
                }
            }
            reader.start()
            // NOTE: wait for the reader's first search so the adds below overlap searches even when
            // the machine is busy and the thread starts late.
            while searches.value.pointee == 0 { usleep(100) }
            for chunk in 0..<20 {
                let ids = (0..<100).map { Int64(1000 + chunk * 100 + $0) }
                try index.add(ids: ids, vectors: Array(more[(chunk * 100 * dim)..<((chunk + 1) * 100 * dim)]))
            }
            stop.value.pointee = true
            while !reader.isFinished { usleep(1000) }
            XCTAssertEqual(index.count, 2500, spec)
            // A vector added last is found as its own nearest neighbour.
            let last = Array(more[(1999 * dim)..<(2000 * dim)])
            XCTAssertEqual(try index.search(last, k: 1).ids, [2999], spec)
        }
    }
}
