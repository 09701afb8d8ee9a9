import Foundation
import HerdFeatures
import HerdTraining
import XCTest

/// `herd generate recsys2021 --workspace W` → `herd preprocess recsys2021 --workspace W` as a user
/// runs it: the workspace files, side tables keyed uniquely and encoded as the training table,
/// sizes covering every id, and the errors.
final class PreprocessRecSys2021CLITests: XCTestCase {
    func testGenerateThenPreprocessFillsTheWorkspace() throws {
        let ws = Workspace(path: try CLIFixtures.scratch("recsys-ws").appendingPathComponent("w").path)
        let gen = try HerdBinary.run(["generate", "recsys2021", "--rows", "3000", "--seed", "3", "--workspace", ws.root.path])
        XCTAssertTrue(gen.succeeded, gen.transcript)
        for f in ["train.txt", "test.txt", "schema.json", "oracle.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: ws.data.appendingPathComponent(f).path), f)
        }
        let run = try HerdBinary.run(["preprocess", "recsys2021", "--workspace", ws.root.path, "--json"])
        XCTAssertTrue(run.succeeded, run.transcript)
        XCTAssertEqual(run.stdoutLines.count, 1, "with --json stdout holds only the summary\n\(run.transcript)")
        XCTAssertTrue(run.stderr.contains("reading "), run.transcript)
        let json = try run.lastJSON()
        XCTAssertEqual(json["rows_train"] as? Int, 2700)
        XCTAssertEqual(json["rows_test"] as? Int, 300)
        for key in ["users", "items", "sizes", "seconds", "rows_per_s"] { XCTAssertNotNil(json[key], "summary lacks \(key)") }
        for url in [ws.table("train"), ws.table("test"), ws.table("user"), ws.table("item"), ws.fittedPipeline, ws.sizes] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: url.path), url.path)
        }

        let train = try TableFile.read(path: ws.table("train").path)
        let test = try TableFile.read(path: ws.table("test").path)
        let users = try TableFile.read(path: ws.table("user").path)
        let items = try TableFile.read(path: ws.table("item").path)
        XCTAssertEqual(json["users"] as? Int, users.rowCount)
        XCTAssertEqual(json["items"] as? Int, items.rowCount)
        let sizes = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: ws.sizes)) as? [String: Int], "sizes.json is a flat {column: Int}")
        XCTAssertEqual(sizes["present_media_language"], 600)
        XCTAssertEqual(sizes["enaging_user_id"], sizes["engaged_with_user_id"], "one shared user index")

        for (side, key) in [(users, "enaging_user_id"), (items, "tweet_id")] {
            let keys = try XCTUnwrap(side[key].int64Values)
            XCTAssertGreaterThan(keys.count, 100, key)
            XCTAssertEqual(Set(keys).count, keys.count, "\(key) is unique in its side table")
            for name in side.names {
                XCTAssertEqual(side[name].type, train[name].type, "\(name) has the type it has in train.herdtable")
            }
        }
        // Each user row holds the values of one of that user's train/test rows (ids as in train).
        func rowsByKey(_ t: FeatureTable, _ key: String, _ columns: [String]) throws -> [Int64: Set<[Value]>] {
            var out: [Int64: Set<[Value]>] = [:]
            let s = try t.select(columns), ids = t[key].int64Values!
            for r in 0..<t.rowCount { out[ids[r], default: []].insert(s.row(r)) }
            return out
        }
        for (side, key) in [(users, "enaging_user_id"), (items, "tweet_id")] {
            var seen = try rowsByKey(train, key, side.names)
            for (k, v) in try rowsByKey(test, key, side.names) { seen[k, default: []].formUnion(v) }
            for r in 0..<side.rowCount {
                XCTAssertTrue(seen[side[key].int64Values![r]]?.contains(side.row(r)) ?? false, "\(key) row \(r) \(side.row(r)) is no train/test row")
            }
        }
        // sizes.json covers every id in the train, test and side tables.
        for table in [train, test, users, items] {
            for (name, size) in sizes where table.contains(name) {
                let c = table[name]
                XCTAssertLessThan(c.int64Values?.max() ?? 0, Int64(size), name)
                XCTAssertGreaterThanOrEqual(c.int64Values?.min() ?? 0, 0, name)
            }
        }
    }

    func testMissingDataAndMalformedRowsAreClearErrors() throws {
        let ws = Workspace(path: try CLIFixtures.scratch("recsys-err").appendingPathComponent("w").path)
        let missing = try HerdBinary.run(["preprocess", "recsys2021", "--workspace", ws.root.path])
        XCTAssertFalse(missing.succeeded)
        XCTAssertTrue(missing.stderr.contains("data/train.txt") && missing.stderr.contains("herd generate recsys2021 --workspace"), missing.transcript)
        XCTAssertEqual(missing.crashSigns, [])

        let gen = try HerdBinary.run(["generate", "recsys2021", "--rows", "500", "--seed", "4", "--workspace", ws.root.path])
        XCTAssertTrue(gen.succeeded, gen.transcript)
        // Real challenge files come without schema.json: the built-in layout reads them.
        try FileManager.default.removeItem(at: ws.data.appendingPathComponent("schema.json"))
        let train = ws.data.appendingPathComponent("train.txt")
        let handle = try FileHandle(forWritingTo: train)
        handle.seekToEndOfFile()
        handle.write(Data("not\u{1}a row\n".utf8))
        try handle.close()
        let bad = try HerdBinary.run(["preprocess", "recsys2021", "--workspace", ws.root.path])
        XCTAssertFalse(bad.succeeded)
        XCTAssertTrue(bad.stderr.contains("train.txt:451:"), bad.transcript)
        XCTAssertEqual(bad.crashSigns, [])
        let skipped = try HerdBinary.run(["preprocess", "recsys2021", "--workspace", ws.root.path, "--on-error", "skip", "--freq-limit", "1",
                                          "--cross-buckets", "50", "--json"])
        XCTAssertTrue(skipped.succeeded, skipped.transcript)
        let json = try skipped.lastJSON()
        XCTAssertEqual(json["skipped_rows_train"] as? Int, 1)
        XCTAssertEqual(json["rows_train"] as? Int, 450)
        XCTAssertEqual((json["sizes"] as? [String: Int])?["present_media_language"], 50)

        let both = try HerdBinary.run(["generate", "recsys2021", "--rows", "10", "--out", ws.data.path, "--workspace", ws.root.path])
        XCTAssertFalse(both.succeeded)
        XCTAssertTrue(both.stderr.contains("not both"), both.transcript)
    }

    func testPreprocessWithoutSubcommandIsStillTheTableCommand() throws {
        let r = try HerdBinary.run(["preprocess", "--help"])
        XCTAssertTrue(r.succeeded, r.transcript)
        XCTAssertTrue(r.stdout.contains("table (default)") && r.stdout.contains("recsys2021"), r.transcript)
        let help = try HerdBinary.run(["preprocess", "recsys2021", "--help"])
        for flag in ["--workspace", "--freq-limit", "--cross-buckets", "--on-error", "--json"] {
            XCTAssertTrue(help.stdout.contains(flag), "herd preprocess recsys2021 --help does not mention \(flag)\n\(help.transcript)")
        }
    }
}
