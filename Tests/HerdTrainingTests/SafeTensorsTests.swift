import Foundation
import HerdTensor
import HerdTestSupport
import HerdTraining
import XCTest

final class SafeTensorsTests: XCTestCase {
    func testTinyFileMatchesHandBuiltBytes() throws {
        let items = [
            SafeTensorsItem("a", Tensor(shape: [2], values: [1, 2])),
            SafeTensorsItem("n", int64: [7]),
        ]
        let bytes = try SafeTensors.serialize(items, metadata: ["k": "v"])
        // 8-byte tensors first (alignment), header padded with 3 spaces from 133 to 136 bytes.
        let json = #"{"__metadata__":{"k":"v"},"n":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
        var expected: [UInt8] = [136, 0, 0, 0, 0, 0, 0, 0]
        expected += Array(json.utf8) + [0x20, 0x20, 0x20]
        expected += [7, 0, 0, 0, 0, 0, 0, 0]
        expected += [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40]
        XCTAssertEqual(Array(bytes), expected)
    }

    func testRoundTripAllKinds() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("t.safetensors")
        let w = randomTensor([3, 5], seed: 1)
        let scalar = Tensor(shape: [], values: [4.5])
        let empty = Tensor(shape: [0, 4])
        let items = [
            SafeTensorsItem("layer.0.weight", w),
            SafeTensorsItem("scalar", scalar),
            SafeTensorsItem("empty", empty),
            SafeTensorsItem("step", int64: [123_456_789_012], shape: []),
            SafeTensorsItem("ids", int32: [1, -2, 3, 4], shape: [2, 2]),
            SafeTensorsItem("na\"me\\with\nescapes", Tensor(shape: [1], values: [9])),
        ]
        let digest = try SafeTensors.write(items, metadata: ["format": "pt", "note": "é \"q\""], to: url)
        XCTAssertEqual(digest.sha256, try SHA256.hex(ofFileAt: url))
        let f = try SafeTensorsFile(url: url)
        XCTAssertEqual(Set(f.names), Set(items.map(\.name)))
        XCTAssertEqual(f.metadata, ["format": "pt", "note": "é \"q\""])
        XCTAssertEqual(try f.tensor("layer.0.weight").shape, [3, 5])
        XCTAssertEqual(try f.tensor("layer.0.weight").array, w.array)
        XCTAssertEqual(try f.tensor("scalar").shape, [])
        XCTAssertEqual(try f.tensor("scalar").array, [4.5])
        XCTAssertEqual(try f.tensor("empty").shape, [0, 4])
        XCTAssertEqual(try f.int64s("step"), [123_456_789_012])
        XCTAssertEqual(f.entry("ids")?.shape, [2, 2])
        XCTAssertEqual(try f.int32s("ids"), [1, -2, 3, 4])
        XCTAssertEqual(try f.tensor("na\"me\\with\nescapes").array, [9])
        XCTAssertEqual(try f.floatTensors().count, 4)
        // Wrong dtype and missing names are errors, not crashes.
        XCTAssertNotNil(assertThrows(SafeTensorsError.self) { try f.tensor("step") })
        XCTAssertNotNil(assertThrows(SafeTensorsError.self) { try f.tensor("nope") })
    }

    func testDuplicateAndReservedNamesAreRefused() {
        let t = Tensor(shape: [1])
        let dup = assertThrows(SafeTensorsError.self) { try SafeTensors.serialize([SafeTensorsItem("x", t), SafeTensorsItem("x", t)]) }
        XCTAssertTrue(dup?.description.contains("used twice") ?? false)
        XCTAssertNotNil(assertThrows(SafeTensorsError.self) { try SafeTensors.serialize([SafeTensorsItem("__metadata__", t)]) })
    }

    /// A file with the given header JSON (padded) and `dataBytes` zero bytes of data.
    func file(header: String, dataBytes: Int, in tmp: TemporaryDirectory, declaredLength: UInt64? = nil) throws -> URL {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out = Data()
        withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: h)
        out.append(Data(count: dataBytes))
        let url = tmp.url.appendingPathComponent("bad-\(UInt32.random(in: 0 ... .max)).safetensors")
        try out.write(to: url)
        return url
    }

    func reason(_ url: URL) -> String {
        let e = assertThrows(SafeTensorsError.self) { try SafeTensorsFile(url: url) }
        XCTAssertTrue(e?.description.contains(url.path) ?? false)
        return e?.reason ?? ""
    }

    func testValidationRejectsMalformedFiles() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let ok = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertNoThrow(try SafeTensorsFile(url: file(header: ok, dataBytes: 8, in: tmp)))

        let tiny = tmp.url.appendingPathComponent("tiny")
        try Data([1, 2, 3]).write(to: tiny)
        XCTAssertTrue(reason(tiny).contains("fewer than the 8-byte"))
        XCTAssertTrue(reason(try file(header: ok, dataBytes: 8, in: tmp, declaredLength: 1 << 40)).contains("exceeds"))
        XCTAssertTrue(reason(try file(header: "[1,2]", dataBytes: 0, in: tmp)).contains("does not start with '{'"))
        XCTAssertTrue(reason(try file(header: "{\"a\":", dataBytes: 0, in: tmp)).contains("not valid JSON"))
        XCTAssertTrue(reason(try file(header: ok, dataBytes: 4, in: tmp)).contains("run past the end"))
        XCTAssertTrue(reason(try file(header: ok, dataBytes: 12, in: tmp)).contains("trailing bytes"))
        XCTAssertTrue(reason(try file(
            header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8, in: tmp)).contains("needs 12 bytes"))
        XCTAssertTrue(reason(try file(
            header: #"{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 8, in: tmp)).contains("unsupported dtype"))
        XCTAssertTrue(reason(try file(
            header: #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, dataBytes: 8, in: tmp)).contains("shape"))
        XCTAssertTrue(reason(try file(
            header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            dataBytes: 12, in: tmp)).contains("overlap"))
        XCTAssertTrue(reason(try file(
            header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8, in: tmp)).contains("gap"))
        XCTAssertTrue(reason(try file(
            header: #"{"__metadata__":{"k":1}}"#, dataBytes: 0, in: tmp)).contains("not a string"))
        XCTAssertTrue(reason(try file(
            header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, dataBytes: 8, in: tmp)).contains("data_offsets"))
    }

    // MARK: - Interoperability with the reference implementation

    /// Runs `python3 -c script args…`; skips the test when the `safetensors` module is missing.
    func runPython(_ script: String, _ args: [String]) throws -> String {
        func run(_ arguments: [String]) throws -> (Int32, String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3"] + arguments
            let pipe = Pipe()
            p.standardOutput = pipe
            p.standardError = pipe
            try p.run()
            let out = pipe.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: out, as: UTF8.self))
        }
        guard let probe = try? run(["-c", "import safetensors, numpy"]), probe.0 == 0 else {
            throw XCTSkip("python3 with safetensors and numpy is not available")
        }
        let (status, output) = try run(["-c", script] + args)
        XCTAssertEqual(status, 0, output)
        return output
    }

    func testPythonReadsOurFile() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("ours.safetensors")
        try SafeTensors.write(
            [
                SafeTensorsItem("w", Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6.5])),
                SafeTensorsItem("step", int64: [42], shape: []),
                SafeTensorsItem("ids", int32: [-1, 7]),
            ], metadata: ["model": "dlrm"], to: url)
        let script = """
            import sys, numpy as np
            from safetensors import safe_open
            from safetensors.numpy import load_file
            t = load_file(sys.argv[1])
            assert t["w"].dtype == np.float32 and t["w"].shape == (2, 3), t["w"]
            assert t["w"].tolist() == [[1, 2, 3], [4, 5, 6.5]], t["w"]
            assert t["step"].dtype == np.int64 and t["step"].shape == () and int(t["step"]) == 42
            assert t["ids"].dtype == np.int32 and t["ids"].tolist() == [-1, 7]
            with safe_open(sys.argv[1], framework="numpy") as f:
                assert f.metadata() == {"model": "dlrm"}, f.metadata()
            print("ok")
            """
        // NOTE: outside XCTAssertEqual, so that a skip (no python safetensors) is a skip, not an error.
        let output = try runPython(script, [url.path])
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "ok")
    }

    func testWeReadPythonsFile() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("theirs.safetensors")
        let script = """
            import sys, numpy as np
            from safetensors.numpy import save_file
            save_file({
                "emb": np.arange(12, dtype=np.float32).reshape(3, 4) / 4,
                "count": np.array([5, 6, 7], dtype=np.int64),
                "half": np.ones((2,), dtype=np.float16),
            }, sys.argv[1], metadata={"who": "python"})
            """
        _ = try runPython(script, [url.path])
        let f = try SafeTensorsFile(url: url)
        XCTAssertEqual(f.metadata, ["who": "python"])
        XCTAssertEqual(try f.tensor("emb").shape, [3, 4])
        XCTAssertEqual(try f.tensor("emb").array, (0..<12).map { Float($0) / 4 })
        XCTAssertEqual(try f.int64s("count"), [5, 6, 7])
        XCTAssertEqual(f.entry("half")?.dtype, .f16)
        XCTAssertEqual(try f.bytes(of: "half").count, 4)
    }
}
