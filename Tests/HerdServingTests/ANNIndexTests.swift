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
