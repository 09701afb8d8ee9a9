import Foundation
import HerdTensor
import HerdTestSupport
import HerdTraining
import XCTest

final class CheckpointStoreTests: XCTestCase {
    func state(_ step: Int) -> Data { Data(#"{"step":\#(step),"epoch":1,"rng":[1,2,3]}"#.utf8) }

    func tensors(_ step: Int) -> [(String, Tensor)] {
        [("w", randomTensor([4, 3], seed: UInt64(step))), ("w.adam.m", randomTensor([4, 3], seed: UInt64(step) + 1000))]
    }

    func testSaveLoadAndPruning() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let store = CheckpointStore(directory: tmp.url.appendingPathComponent("ckpts"), keepLast: 2)
        XCTAssertNil(try store.latest())
        for step in [100, 200, 300, 400] {
            try store.save(step: step, tensors: tensors(step), state: state(step))
        }
        XCTAssertEqual(try store.steps(), [300, 400])
        XCTAssertEqual(try tmp.contents("ckpts"), ["ckpt-0000000300", "ckpt-0000000400"])
        XCTAssertEqual(try tmp.contents("ckpts/ckpt-0000000400"), ["checkpoint.json", "state.json", "tensors.safetensors"])

        let latest = try XCTUnwrap(try store.latest())
        XCTAssertEqual(latest.step, 400)
        XCTAssertEqual(latest.state, state(400))
        XCTAssertEqual(latest.tensors["w"]?.array, tensors(400)[0].1.array)
        XCTAssertEqual(latest.tensors["w.adam.m"]?.array, tensors(400)[1].1.array)
        XCTAssertEqual(latest.file.metadata["step"], "400")
        XCTAssertEqual(try store.load(step: 300).state, state(300))
        XCTAssertEqual(assertThrows(ArtifactError.self) { try store.load(step: 100) }?.kind, .missingDirectory)
    }

    func testIntegerItemsAndResaveOfSameStep() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let store = CheckpointStore(directory: tmp.url, keepLast: 3)
        try store.save(step: 5, items: [SafeTensorsItem("w", Tensor(shape: [1], values: [1])), SafeTensorsItem("adam.t", int64: [5], shape: [])], state: state(5))
        try store.save(step: 5, items: [SafeTensorsItem("w", Tensor(shape: [1], values: [2])), SafeTensorsItem("adam.t", int64: [6], shape: [])], state: state(6))
        let c = try store.load(step: 5)
        XCTAssertEqual(c.tensors["w"]?.array, [2])
        XCTAssertEqual(try c.file.int64s("adam.t"), [6])
        XCTAssertEqual(c.state, state(6))
        XCTAssertEqual(try tmp.contents(), ["ckpt-0000000005"])
    }

    func testCorruptNewestFallsBackToPrevious() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let log = WarningLog()
        let store = CheckpointStore(directory: tmp.url, keepLast: 3, warn: { log.append($0) })
        for step in [1, 2, 3] { try store.save(step: step, tensors: tensors(step), state: state(step)) }

        // Newest: a flipped byte in the tensors; second newest: manifest gone (partial copy).
        let t3 = store.url(step: 3).appendingPathComponent("tensors.safetensors")
        var bytes = try Data(contentsOf: t3)
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: t3)
        try FileManager.default.removeItem(at: store.url(step: 2).appendingPathComponent("checkpoint.json"))

        let latest = try XCTUnwrap(try store.latest())
        XCTAssertEqual(latest.step, 1)
        XCTAssertEqual(latest.state, state(1))
        XCTAssertEqual(log.lines.count, 2)
        XCTAssertTrue(log.lines[0].contains("ckpt-0000000003") && log.lines[0].contains("checksum"), log.lines[0])
        XCTAssertTrue(log.lines[1].contains("ckpt-0000000002") && log.lines[1].contains("checkpoint.json"), log.lines[1])

        // A truncated state file is caught too.
        let s1 = store.url(step: 1).appendingPathComponent("state.json")
        try Data("{".utf8).write(to: s1)
        XCTAssertNil(try store.latest())
    }

    func testLeftoverTemporaryDirectoriesAreIgnoredThenCleaned() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let log = WarningLog()
        let store = CheckpointStore(directory: tmp.url, keepLast: 2, warn: { log.append($0) })
        try store.save(step: 10, tensors: tensors(10), state: state(10))
        // An interrupted save of a later step: a half-written temporary directory.
        let leftover = tmp.url.appendingPathComponent("ckpt-0000000020.tmp-0123456789abcdef")
        try FileManager.default.createDirectory(at: leftover, withIntermediateDirectories: false)
        try Data("partial".utf8).write(to: leftover.appendingPathComponent("tensors.safetensors"))

        XCTAssertEqual(try store.steps(), [10])
        XCTAssertEqual(try store.latest()?.step, 10)
        XCTAssertEqual(log.lines, [])

        try store.save(step: 30, tensors: tensors(30), state: state(30))
        XCTAssertEqual(try tmp.contents(), ["ckpt-0000000010", "ckpt-0000000030"])
    }
}
