import Foundation
import HerdData
import HerdTensor
import HerdTestSupport
import HerdTraining
import XCTest

final class ModelDirectoryTests: XCTestCase {
    struct Config: Codable, Equatable {
        var embeddingDim: Int
        var hidden: [Int]
        var learningRate: Double
        var seed: UInt64
    }

    let config = Config(embeddingDim: 16, hidden: [64, 32], learningRate: 0.01, seed: 18_446_744_073_709_551_557)
    let featureState = #"{"vocab_sizes":[10,20],"dense_means":[0.5,1.25],"hashed":true,"note":null}"#

    func export(to url: URL) throws -> [(String, Tensor)] {
        let tensors = [("emb.0", randomTensor([10, 16], seed: 1)), ("mlp.0.weight", randomTensor([16, 64], seed: 2)), ("mlp.0.bias", randomTensor([64], seed: 3))]
        try ModelDirectory.write(
            to: url, modelType: "dlrm", config: JSONEncoder().encode(config), featureState: Data(featureState.utf8),
            tensors: tensors, metadata: ["herd_version": "0.1"], extraFiles: ["README.txt": Data("hello".utf8)])
        return tensors
    }

    func testRoundTrip() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("model")
        let tensors = try export(to: url)
        XCTAssertEqual(try tmp.contents(), ["model"])
        XCTAssertEqual(try tmp.contents("model"), ["README.txt", "manifest.json", "weights.safetensors"])

        let loaded = try ModelDirectory.load(from: url)
        XCTAssertEqual(loaded.manifest.formatVersion, 1)
        XCTAssertEqual(loaded.manifest.modelType, "dlrm")
        XCTAssertEqual(Set(loaded.manifest.files.keys), ["weights.safetensors", "README.txt"])
        XCTAssertEqual(try JSONDecoder().decode(Config.self, from: loaded.config), config)
        XCTAssertEqual(try JSONValue(json: loaded.featureState), try JSONValue(json: Data(featureState.utf8)))
        XCTAssertEqual(loaded.manifest.featureState["hashed"], .bool(true))
        XCTAssertEqual(loaded.metadata, ["herd_version": "0.1"])
        XCTAssertEqual(loaded.tensors.count, tensors.count)
        for (name, t) in tensors {
            XCTAssertEqual(loaded.tensors[name]?.shape, t.shape)
            XCTAssertEqual(loaded.tensors[name]?.array, t.array)
        }
        XCTAssertEqual(loaded.extraFiles["README.txt"].map { try? Data(contentsOf: $0) }, Data("hello".utf8))

        // The manifest is plain JSON with the documented fields.
        let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: url.appendingPathComponent("manifest.json"))) as! [String: Any]
        XCTAssertEqual(Set(raw.keys), ["format_version", "model_type", "config", "feature_state", "created_at", "files"])
        let weights = (raw["files"] as! [String: Any])["weights.safetensors"] as! [String: Any]
        XCTAssertEqual(weights["sha256"] as? String, try SHA256.hex(ofFileAt: url.appendingPathComponent("weights.safetensors")))
    }

    func testReexportReplacesButForeignDirectoryIsRefused() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("model")
        _ = try export(to: url)
        _ = try export(to: url)
        XCTAssertNoThrow(try ModelDirectory.load(from: url))
        XCTAssertEqual(try tmp.contents(), ["model"])

        let foreign = tmp.url.appendingPathComponent("photos")
        try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: false)
        try Data("precious".utf8).write(to: foreign.appendingPathComponent("cat.jpg"))
        let e = assertThrows(ArtifactError.self) { try export(to: foreign) }
        XCTAssertEqual(e?.kind, .destinationExists)
        XCTAssertEqual(try tmp.contents("photos"), ["cat.jpg"])
    }

    func testFailedExportLeavesNothing() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("model")
        let t = Tensor(shape: [1])
        XCTAssertNotNil(assertThrows(SafeTensorsError.self) {
            try ModelDirectory.write(to: url, modelType: "dlrm", config: Data("{}".utf8), featureState: Data("{}".utf8), tensors: [("x", t), ("x", t)])
        })
        XCTAssertEqual(try tmp.contents(), [])
        let bad = assertThrows(ArtifactError.self) {
            try ModelDirectory.write(to: url, modelType: "dlrm", config: Data("{oops".utf8), featureState: Data("{}".utf8), tensors: [])
        }
        XCTAssertTrue(bad?.description.contains("config is not valid JSON") ?? false, bad?.description ?? "")
        XCTAssertEqual(try tmp.contents(), [])
    }

    func loadError(_ url: URL) -> ArtifactError? {
        assertThrows(ArtifactError.self) { try ModelDirectory.load(from: url) }
    }

    func testTruncatedWeightsAreRefused() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("model")
        _ = try export(to: url)
        let weights = url.appendingPathComponent("weights.safetensors")
        let data = try Data(contentsOf: weights)
        try data.prefix(data.count - 100).write(to: weights)
        let e = loadError(url)
        XCTAssertEqual(e?.kind, .sizeMismatch("weights.safetensors", expected: data.count, actual: data.count - 100))
        XCTAssertTrue(e?.description.contains("truncated") ?? false, e?.description ?? "")
        XCTAssertTrue(e?.description.contains("Export the model again") ?? false)
    }

    func testFlippedByteFailsChecksum() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("model")
        _ = try export(to: url)
        let weights = url.appendingPathComponent("weights.safetensors")
        var data = try Data(contentsOf: weights)
        data[data.count - 7] ^= 0x01
        try data.write(to: weights)
        let e = loadError(url)
        XCTAssertEqual(e?.kind, .checksumMismatch("weights.safetensors"))
        XCTAssertTrue(e?.description.contains("checksum") ?? false, e?.description ?? "")
    }

    func testMissingManifestAndMissingFileAndMissingDirectory() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("model")
        XCTAssertEqual(loadError(url)?.kind, .missingDirectory)
        _ = try export(to: url)
        try FileManager.default.removeItem(at: url.appendingPathComponent("README.txt"))
        let missing = loadError(url)
        XCTAssertEqual(missing?.kind, .missingFile("README.txt"))
        XCTAssertTrue(missing?.description.contains("missing") ?? false)
        try FileManager.default.removeItem(at: url.appendingPathComponent("manifest.json"))
        let e = loadError(url)
        XCTAssertEqual(e?.kind, .missingManifest)
        XCTAssertTrue(e?.description.contains("has no manifest.json") ?? false, e?.description ?? "")
    }

    /// Rewrites the manifest through `edit` (as JSON objects).
    func editManifest(_ url: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let m = url.appendingPathComponent("manifest.json")
        var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: m)) as! [String: Any]
        edit(&obj)
        try JSONSerialization.data(withJSONObject: obj).write(to: m)
    }

    func testUnknownFormatVersionIsRefused() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("model")
        _ = try export(to: url)
        try editManifest(url) { $0["format_version"] = 7 }
        let e = loadError(url)
        XCTAssertEqual(e?.kind, .unsupportedFormatVersion(7))
        XCTAssertTrue(e?.description.contains("upgrade Herd") ?? false, e?.description ?? "")
        try Data("not json".utf8).write(to: url.appendingPathComponent("manifest.json"))
        XCTAssertEqual(loadError(url)?.kind, .invalidManifest)
    }

    func testUnparsableWeightsWithMatchingChecksumAreRefused() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("model")
        _ = try export(to: url)
        let garbage = Data("this is not a safetensors file at all".utf8)
        try garbage.write(to: url.appendingPathComponent("weights.safetensors"))
        try editManifest(url) {
            var files = $0["files"] as! [String: Any]
            files["weights.safetensors"] = ["sha256": SHA256.hex(of: garbage), "bytes": garbage.count]
            $0["files"] = files
        }
        let e = loadError(url)
        XCTAssertEqual(e?.kind, .invalidFile("weights.safetensors"))
        XCTAssertTrue(e?.description.contains("not a valid safetensors file") ?? false, e?.description ?? "")
    }

    func testPathTricksInManifestAreRefused() throws {
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("model")
        _ = try export(to: url)
        try editManifest(url) {
            var files = $0["files"] as! [String: Any]
            files["../escape"] = ["sha256": "00", "bytes": 1]
            $0["files"] = files
        }
        XCTAssertEqual(loadError(url)?.kind, .invalidManifest)
    }

    /// A 1.1 GB export and load; runs only with `HERD_BENCH=1` (use a release build:
    /// `HERD_BENCH=1 swift test -c release --filter ModelDirectoryTests/testLargeExport`).
    func testLargeExportRoundTrip() throws {
        guard ProcessInfo.processInfo.environment["HERD_BENCH"] == "1" else { throw XCTSkip("set HERD_BENCH=1") }
        let tmp = try TemporaryDirectory()
        defer { tmp.remove() }
        let url = tmp.url.appendingPathComponent("big")
        let n = 275_000_000
        let big = Tensor(shape: [n / 100, 100])
        for i in stride(from: 0, to: n, by: 4099) { big[i] = Float(i % 1000) }
        func seconds(_ body: () throws -> Void) rethrows -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        let writeTime = try seconds {
            try ModelDirectory.write(to: url, modelType: "dlrm", config: Data("{}".utf8), featureState: Data("{}".utf8), tensors: [("big", big)])
        }
        var loaded: LoadedModel?
        let loadTime = try seconds { loaded = try ModelDirectory.load(from: url) }
        let t = try XCTUnwrap(loaded?.tensors["big"])
        XCTAssertEqual(t.shape, big.shape)
        XCTAssertEqual(memcmp(t.data, big.data, n * 4), 0)
        let gb = Double(n * 4) / 1e9
        print(String(format: "export %.2f GB: write %.2f s, verified load %.2f s", gb, writeTime, loadTime))
    }
}
