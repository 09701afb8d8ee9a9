import Foundation
import HerdFeatures
import HerdServing
import HerdTestSupport
import HerdTensor
import HerdTraining
import XCTest

/// A small workspace as the recsys workflow leaves it: user/item tables and embeddings.
func writeNearlineWorkspace(_ w: Workspace, items: Int, dimension: Int, seed: UInt64, keyMetadata: Bool = true) throws {
    try w.create()
    let users = try FeatureTable([
        ("enaging_user_id", Column(int64s: [1, 2, 3])),
        ("follower_count", Column(doubles: [10, 20.5, nil])),
        ("language", Column(strings: ["en", "ja", "fr"])),
    ])
    try TableFile.write(users, to: w.table("user").path)
    let itemTable = try FeatureTable([
        ("tweet_id", Column(int64s: (0..<items).map { Int64(1000 + $0) })),
        ("hashtags", Column(int64Lists: (0..<items).map { [Int64($0 % 5)] })),
    ])
    try TableFile.write(itemTable, to: w.table("item").path)
    let x = clusteredVectors(count: items, dimension: dimension, clusters: 5, seed: seed)
    let ids = (0..<items).map { Int64(1000 + $0) }
    let meta = keyMetadata ? ["key_column": "tweet_id"] : [:]
    try SafeTensors.write([SafeTensorsItem("ids", int64: ids), SafeTensorsItem("embeddings", tensor(x, [items, dimension]))],
                          metadata: meta, to: w.embeddingTable("item"))
    try SafeTensors.write([SafeTensorsItem("ids", int64: [1, 2, 3]), SafeTensorsItem("embeddings", tensor([Float](repeating: 0.5, count: 3 * dimension), [3, dimension]))],
                          metadata: keyMetadata ? ["key_column": "enaging_user_id"] : [:], to: w.embeddingTable("user"))
}

func tensor(_ values: [Float], _ shape: [Int]) -> Tensor {
    let t = Tensor(shape: shape)
    for (i, v) in values.enumerated() { t[i] = v }
    return t
}

final class NearlineTests: XCTestCase {
    func testNearlineLoadsStoreAndIndexAndUpdatesInPlace() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = Workspace(path: dir.path)
        try writeNearlineWorkspace(w, items: 300, dimension: 8, seed: 1)
        var lines: [String] = []
        let first = try Nearline.run(NearlineConfig(workspace: w)) { lines.append($0) }
        XCTAssertEqual(first.users, 3)
        XCTAssertEqual(first.items, 300)
        XCTAssertEqual(first.indexCount, 300)
        XCTAssertFalse(first.indexReused)
        XCTAssertTrue(lines.contains { $0.contains("item index 300/300") }, "\(lines)")

        let store = try makeFeatureStore(spec: "embedded:\(w.featureStoreFile.path)")
        let got = try store.get(kind: .user, ids: [2, 9])
        XCTAssertEqual(got.rows[0]!, [.int(2), .double(20.5), .string("ja")])
        XCTAssertNil(got.rows[1])
        XCTAssertEqual(try store.get(kind: .item, ids: [1004]).rows[0]!, [.int(1004), .list([.int(4)])])
        let index = try loadIndex(from: w.itemIndex)
        XCTAssertEqual(index.count, 300)
        XCTAssertTrue(FileManager.default.fileExists(atPath: w.nearlineSummary.path))

        // A second run with 50 more items (and new vectors for the old ones) updates the same index.
        try writeNearlineWorkspace(w, items: 350, dimension: 8, seed: 2)
        let second = try Nearline.run(NearlineConfig(workspace: w)) { _ in }
        XCTAssertTrue(second.indexReused)
        XCTAssertEqual(second.indexCount, 350)
        let reloaded = try loadIndex(from: w.itemIndex)
        let file = try SafeTensorsFile(url: w.embeddingTable("item"))
        let v = Array(try file.tensor("embeddings").array[(349 * 8)..<(350 * 8)])
        XCTAssertEqual(try reloaded.search(v, k: 1).ids, [1349])

        // Another kind rebuilds.
        var flat = NearlineConfig(workspace: w)
        flat.index = "Flat"
        let third = try Nearline.run(flat) { _ in }
        XCTAssertFalse(third.indexReused)
        XCTAssertEqual(third.indexSpec, "Flat")
    }

    func testNearlineNeedsAKeyColumnAndTheInputs() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = Workspace(path: dir.path)
        XCTAssertThrowsError(try Nearline.run(NearlineConfig(workspace: w)) { _ in }) {
            XCTAssertTrue("\($0)".contains("user.herdtable is missing"), "\($0)")
        }
        try writeNearlineWorkspace(w, items: 20, dimension: 4, seed: 1, keyMetadata: false)
        XCTAssertThrowsError(try Nearline.run(NearlineConfig(workspace: w)) { _ in }) {
            XCTAssertTrue("\($0)".contains("--user-key"), "\($0)")
        }
        var config = NearlineConfig(workspace: w)
        config.userKey = "enaging_user_id"
        config.itemKey = "tweet_id"
        config.index = "Flat"
        XCTAssertEqual(try Nearline.run(config) { _ in }.indexCount, 20)

        // A corrupt index is refused with a clear message, not silently rebuilt.
        var bytes = try Data(contentsOf: w.itemIndex)
        bytes[bytes.count - 40] ^= 0xFF
        try bytes.write(to: w.itemIndex)
        XCTAssertThrowsError(try Nearline.run(config) { _ in }) { XCTAssertTrue("\($0)".contains("checksum mismatch"), "\($0)") }
    }

    func testNearlineIntoRedis() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = Workspace(path: dir.path)
        try writeNearlineWorkspace(w, items: 100, dimension: 4, seed: 3)
        var config = NearlineConfig(workspace: w)
        config.store = server.url
        config.index = "IVF4,Flat,nprobe=4"
        let s = try Nearline.run(config) { _ in }
        XCTAssertEqual(s.indexCount, 100)
        let store = try makeFeatureStore(spec: server.url)
        XCTAssertEqual(try store.get(kind: .user, ids: [3]).rows[0]!, [.int(3), .null, .string("fr")])
    }
}
