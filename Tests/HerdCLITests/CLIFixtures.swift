import Foundation
import HerdTraining
import XCTest

/// Data and models shared by the CLI tests, made once per test process through the CLI itself
/// (`herd generate criteo`, `herd train`) and removed when the process ends.
enum CLIFixtures {
    private static let lock = NSRecursiveLock()
    nonisolated(unsafe) private static var root: URL?
    nonisolated(unsafe) private static var generated: HerdRun?
    nonisolated(unsafe) private static var trained: [String: (URL, HerdRun)] = [:]

    /// Rows generated: 3000 train + 1000 test.
    static let rows = 4000
    static let trainRows = 3000
    static let testRows = 1000

    static func rootDirectory() throws -> URL {
        if let root { return root }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("herd-cli-tests-\(ProcessInfo.processInfo.processIdentifier)-\(UInt64.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        root = url
        atexit { if let r = CLIFixtures.root { try? FileManager.default.removeItem(at: r) } }
        return url
    }

    /// `herd generate criteo --rows 4000 --seed 7 --test-fraction 0.25` into a shared directory.
    static func data() throws -> (dir: URL, generate: HerdRun) {
        try lock.withLock {
            let dir = try rootDirectory().appendingPathComponent("data")
            if let generated { return (dir, generated) }
            let run = try HerdBinary.run(["generate", "criteo", "--rows", "\(rows)", "--seed", "7", "--out", dir.path, "--test-fraction", "0.25"])
            guard run.succeeded else { throw FixtureError("herd generate failed\n\(run.transcript)") }
            generated = run
            return (dir, run)
        }
    }

    static func trainFile() throws -> String { try data().dir.appendingPathComponent("train.txt").path }
    static func testFile() throws -> String { try data().dir.appendingPathComponent("test.txt").path }

    /// Small-model flags for each model kind (fast in a debug build, learning rates that find the
    /// planted signal in 2 epochs of 3000 rows).
    static func modelFlags(_ model: String) -> [String] {
        switch model {
        case "dlrm": return ["--model", "dlrm", "--bottom-mlp", "8-4", "--top-mlp", "8-1", "--embedding-dim", "4", "--batch-size", "256", "--lr", "0.03"]
        default: return ["--model", "wnd", "--deep-mlp", "16-1", "--embedding-dim", "4", "--crosses", "0:1", "--batch-size", "256", "--lr", "0.05"]
        }
    }

    /// `herd train` arguments on the shared data, writing to `out`.
    static func trainArgs(_ model: String, out: URL, epochs: Int = 2, valid: Bool = true, _ extra: [String] = []) throws -> [String] {
        var a = ["train"] + modelFlags(model) + ["--train", try trainFile(), "--out", out.path, "--epochs", "\(epochs)", "--seed", "3"]
        if valid { a += ["--valid", try testFile()] }
        return a + extra
    }

    /// A `--json` training run of `model` for 2 epochs on the shared data: its output directory and run.
    static func trainedModel(_ model: String) throws -> (out: URL, run: HerdRun) {
        try lock.withLock {
            if let t = trained[model] { return t }
            let out = try rootDirectory().appendingPathComponent("trained-\(model)")
            let run = try HerdBinary.run(try trainArgs(model, out: out, ["--json"]))
            guard run.succeeded else { throw FixtureError("training the shared \(model) model failed\n\(run.transcript)") }
            trained[model] = (out, run)
            return (out, run)
        }
    }

    /// A fresh directory for one test.
    static func scratch(_ name: String) throws -> URL {
        let url = try rootDirectory().appendingPathComponent("\(name)-\(UInt64.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A served RecSys workspace, as the workflow's commands make it: generate `rows` rows (`seed`) →
    /// preprocess recsys2021 → train wnd and twotower (1 epoch) → predict (embeddings) → nearline
    /// (Flat index). Throws with the failing command's transcript.
    static func servedWorkspace(_ name: String, seed: Int, rows: Int = 3000, timeout: Double = 120) throws -> Workspace {
        let ws = Workspace(path: try scratch(name).path)
        let w = ws.root.path
        for args in [["generate", "recsys2021", "--rows", String(rows), "--seed", String(seed), "--workspace", w],
                     ["preprocess", "recsys2021", "--workspace", w],
                     ["train", "--workspace", w, "--model", "wnd", "--spec", "recsys2021", "--epochs", "1", "--batch-size", "512"],
                     ["train", "--workspace", w, "--model", "twotower", "--spec", "recsys2021", "--epochs", "1", "--batch-size", "512"],
                     ["predict", "--workspace", w, "--name", "twotower"],
                     ["nearline", "--workspace", w, "--index", "Flat"]] {
            let run = try HerdBinary.run(args, timeout: timeout)
            guard run.succeeded else { throw FixtureError("served workspace: herd \(args.joined(separator: " ")) failed\n\(run.transcript)") }
        }
        return ws
    }

    /// Lines of a text file.
    static func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Every tensor of a safetensors file as raw bytes, by name (bit-exact comparison).
func tensorBytes(_ url: URL) throws -> [String: [UInt8]] {
    let f = try SafeTensorsFile(url: url)
    var out: [String: [UInt8]] = [:]
    for name in f.names { out[name] = Array(try f.bytes(of: name)) }
    return out
}

/// Asserts that two exports hold bit-identical weights, naming the first tensor that differs.
func assertSameWeights(_ a: URL, _ b: URL, file: StaticString = #filePath, line: UInt = #line) throws {
    let x = try tensorBytes(a.appendingPathComponent("model/weights.safetensors"))
    let y = try tensorBytes(b.appendingPathComponent("model/weights.safetensors"))
    XCTAssertEqual(x.keys.sorted(), y.keys.sorted(), "tensor names differ", file: file, line: line)
    XCTAssertFalse(x.isEmpty, "no tensors in \(a.path)", file: file, line: line)
    for name in x.keys.sorted() where x[name] != y[name] {
        var maxDiff: Float = 0
        if let p = x[name], let q = y[name], p.count == q.count {
            let fp = p.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let fq = q.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            maxDiff = zip(fp, fq).map { abs($0 - $1) }.max() ?? 0
        }
        XCTFail("tensor \(name) differs (max |Δ| \(maxDiff))", file: file, line: line)
        return
    }
}

/// Asserts a successful run and returns its JSON summary (the last stdout line).
@discardableResult
func assertSucceededJSON(_ run: HerdRun, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    XCTAssertTrue(run.succeeded, "herd failed\n\(run.transcript)", file: file, line: line)
    XCTAssertEqual(run.crashSigns, [], run.transcript, file: file, line: line)
    return try run.lastJSON(file: file, line: line)
}

/// `ids` one per line in a scratch file named after `scratch` (a `herd loadtest --ids` file).
func idsFile(_ ids: [String], scratch: String) throws -> URL {
    let url = try CLIFixtures.scratch(scratch).appendingPathComponent("ids.txt")
    try ids.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
    return url
}

/// A one-second closed-loop `herd loadtest` of `base`'s recommend route (k 10, canK 50) that must
/// answer some requests and no errors; returns its JSON summary.
@discardableResult
func assertCleanLoadTest(base: String, ids: URL, concurrency: Int, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    let load = try HerdBinary.run(["loadtest", "--url", "\(base)/recommender/recommend/{id}?k=10&canK=50",
                                   "--ids", ids.path, "--concurrency", "\(concurrency)", "--duration", "1", "--warmup", "0", "--json"])
    let summary = try assertSucceededJSON(load, file: file, line: line)
    XCTAssertEqual(summary["errors"] as? Int, 0, load.transcript, file: file, line: line)
    XCTAssertGreaterThan(summary["requests"] as? Int ?? 0, 0, file: file, line: line)
    return summary
}

/// Asserts a clean failure: non-zero exit (not a signal), no crash output, and `expected` in stderr.
func assertFailsCleanly(_ run: HerdRun, mentioning expected: [String], file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertFalse(run.timedOut, run.transcript, file: file, line: line)
    XCTAssertFalse(run.signaled, "herd died of a signal\n\(run.transcript)", file: file, line: line)
    XCTAssertNotEqual(run.status, 0, "herd should have failed\n\(run.transcript)", file: file, line: line)
    XCTAssertEqual(run.crashSigns, [], "a crash, not a handled error\n\(run.transcript)", file: file, line: line)
    for e in expected {
        XCTAssertTrue(run.stderr.contains(e), "stderr does not mention \"\(e)\"\n\(run.transcript)", file: file, line: line)
    }
}

func number(_ json: [String: Any], _ key: String) -> Double? { (json[key] as? NSNumber)?.doubleValue }
