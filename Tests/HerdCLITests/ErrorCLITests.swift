import Foundation
import XCTest

/// Bad input and damaged exports: clean messages with a non-zero exit, never a crash.
final class ErrorCLITests: XCTestCase {
    /// The first `count` rows of the shared training file with some rows replaced.
    private func dataFile(_ dir: URL, _ name: String, rows count: Int = 600, replacing: [Int: String]) throws -> String {
        var rows = Array(try CLIFixtures.lines(try CLIFixtures.trainFile()).prefix(count))
        for (lineNumber, row) in replacing { rows[lineNumber - 1] = row }
        let path = dir.appendingPathComponent(name).path
        try (rows.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func fields(_ row: String) -> [String] { row.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }

    private func trainArgs(_ data: String, out: URL, _ extra: [String] = []) -> [String] {
        ["train"] + CLIFixtures.modelFlags("dlrm") + ["--train", data, "--out", out.path, "--json"] + extra
    }

    func testShortRowsFailWithFileAndLineOrAreSkipped() throws {
        let dir = try CLIFixtures.scratch("short-rows")
        let original = try CLIFixtures.lines(try CLIFixtures.trainFile())
        let short1 = fields(original[56]).prefix(30).joined(separator: "\t")
        let short2 = fields(original[299]).prefix(12).joined(separator: "\t")
        let path = try dataFile(dir, "short.txt", replacing: [57: short1, 300: short2])

        let failed = try HerdBinary.run(trainArgs(path, out: dir.appendingPathComponent("fail")))
        assertFailsCleanly(failed, mentioning: ["\(path):57: expected 40 fields, found 30"])
        XCTAssertFalse(failed.stderr.contains(":300:"), "the run stops at the first bad row\n\(failed.transcript)")
        XCTAssertEqual(failed.stdout, "", "no summary on failure\n\(failed.transcript)")

        let skipped = try HerdBinary.run(trainArgs(path, out: dir.appendingPathComponent("skip"), ["--on-error", "skip"]))
        let json = try assertSucceededJSON(skipped)
        XCTAssertEqual(number(json, "skipped_rows"), 2, skipped.transcript)
        XCTAssertEqual(number(json, "rows"), 598, skipped.transcript)

        // A bad row in the validation file is reported with that file's name and line.
        let valid = try dataFile(dir, "valid.txt", rows: 200, replacing: [150: short2])
        let failedValid = try HerdBinary.run(trainArgs(path, out: dir.appendingPathComponent("fail-valid"), ["--on-error", "skip", "--valid", valid]))
        XCTAssertEqual(number(try assertSucceededJSON(failedValid), "skipped_rows"), 3, failedValid.transcript)
        let failedValid2 = try HerdBinary.run(trainArgs(try CLIFixtures.trainFile(), out: dir.appendingPathComponent("fail-valid2"), ["--valid", valid, "--epochs", "1", "--max-steps", "1"]))
        assertFailsCleanly(failedValid2, mentioning: ["\(valid):150: expected 40 fields, found 12"])
    }

    func testBadLabelAndBadValuesNameTheLineAndTheProblem() throws {
        let dir = try CLIFixtures.scratch("bad-values")
        let original = try CLIFixtures.lines(try CLIFixtures.trainFile())
        var row = fields(original[9])
        row[0] = "2"
        let labelPath = try dataFile(dir, "label.txt", replacing: [10: row.joined(separator: "\t")])
        assertFailsCleanly(try HerdBinary.run(trainArgs(labelPath, out: dir.appendingPathComponent("a"))),
                           mentioning: ["\(labelPath):10: label must be 0 or 1, found '2'"])

        var dense = fields(original[19])
        dense[3] = "abc"
        let densePath = try dataFile(dir, "dense.txt", replacing: [20: dense.joined(separator: "\t")])
        assertFailsCleanly(try HerdBinary.run(trainArgs(densePath, out: dir.appendingPathComponent("b"))),
                           mentioning: ["\(densePath):20: I3: expected an integer, found 'abc'"])

        // The same bad row through evaluate/predict of a working export.
        let (trained, _) = try CLIFixtures.trainedModel("dlrm")
        let model = trained.appendingPathComponent("model").path
        assertFailsCleanly(try HerdBinary.run(["evaluate", "--model", model, "--data", labelPath, "--cache-dir", dir.path]),
                           mentioning: ["\(labelPath):10: label must be 0 or 1"])
        let skipped = try HerdBinary.run(["evaluate", "--model", model, "--data", labelPath, "--cache-dir", dir.path, "--on-error", "skip", "--json"])
        XCTAssertEqual(number(try assertSucceededJSON(skipped), "skipped_rows"), 1, skipped.transcript)
    }

    func testMissingAndEmptyFilesAreReported() throws {
        let dir = try CLIFixtures.scratch("missing")
        let missing = dir.appendingPathComponent("nope.txt").path
        assertFailsCleanly(try HerdBinary.run(trainArgs(missing, out: dir.appendingPathComponent("a"))), mentioning: ["\(missing): no such file"])
        let empty = dir.appendingPathComponent("empty.txt").path
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        assertFailsCleanly(try HerdBinary.run(trainArgs(empty, out: dir.appendingPathComponent("b"))), mentioning: ["\(empty): the file is empty"])
        // A directory given as the data file.
        assertFailsCleanly(try HerdBinary.run(trainArgs(dir.path, out: dir.appendingPathComponent("c"))), mentioning: [dir.path])
        // Only malformed rows, skipped: nothing left to train on.
        let allBad = dir.appendingPathComponent("allbad.txt").path
        try "1\t2\t3\n0\t1\n".write(toFile: allBad, atomically: true, encoding: .utf8)
        assertFailsCleanly(try HerdBinary.run(trainArgs(allBad, out: dir.appendingPathComponent("d"), ["--on-error", "skip"])), mentioning: [allBad])

        let (trained, _) = try CLIFixtures.trainedModel("dlrm")
        let model = trained.appendingPathComponent("model").path
        assertFailsCleanly(try HerdBinary.run(["evaluate", "--model", model, "--data", missing]), mentioning: ["\(missing): no such file"])
        assertFailsCleanly(try HerdBinary.run(["predict", "--model", model, "--data", empty, "--out", dir.appendingPathComponent("p.txt").path]),
                           mentioning: ["\(empty): the file is empty"])
        let noModel = dir.appendingPathComponent("no-model").path
        assertFailsCleanly(try HerdBinary.run(["evaluate", "--model", noModel, "--data", try CLIFixtures.testFile()]), mentioning: ["no directory at \(noModel)"])
    }

    /// A copy of the trained DLRM export in a fresh directory.
    private func exportCopy(_ name: String) throws -> URL {
        let (trained, _) = try CLIFixtures.trainedModel("dlrm")
        let copy = try CLIFixtures.scratch(name).appendingPathComponent("model")
        try FileManager.default.copyItem(at: trained.appendingPathComponent("model"), to: copy)
        return copy
    }

    private func evaluate(_ model: URL) throws -> HerdRun {
        try HerdBinary.run(["evaluate", "--model", model.path, "--data", try CLIFixtures.testFile(), "--json"])
    }

    func testDamagedExportsAreRefused() throws {
        // The untouched copy works.
        let good = try exportCopy("export-good")
        XCTAssertNotNil(number(try assertSucceededJSON(try evaluate(good)), "auc"))

        let truncated = try exportCopy("export-truncated")
        let weights = truncated.appendingPathComponent("weights.safetensors")
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: weights.path)[.size] as? NSNumber).intValue
        let h = try FileHandle(forWritingTo: weights)
        try h.truncate(atOffset: UInt64(size / 2))
        try h.close()
        assertFailsCleanly(try evaluate(truncated), mentioning: ["weights.safetensors is truncated", "size mismatch"])

        let flipped = try exportCopy("export-flipped")
        let flippedWeights = flipped.appendingPathComponent("weights.safetensors")
        var bytes = try Data(contentsOf: flippedWeights)
        bytes[bytes.count - 5] ^= 0x10
        try bytes.write(to: flippedWeights)
        assertFailsCleanly(try evaluate(flipped), mentioning: ["weights.safetensors fails its SHA-256 checksum"])
        assertFailsCleanly(try HerdBinary.run(["predict", "--model", flipped.path, "--data", try CLIFixtures.testFile(), "--out", flipped.deletingLastPathComponent().appendingPathComponent("p.txt").path]),
                           mentioning: ["checksum"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: flipped.deletingLastPathComponent().appendingPathComponent("p.txt").path), "no predictions from a damaged export")

        let noManifest = try exportCopy("export-nomanifest")
        try FileManager.default.removeItem(at: noManifest.appendingPathComponent("manifest.json"))
        assertFailsCleanly(try evaluate(noManifest), mentioning: ["has no manifest.json"])

        let noWeights = try exportCopy("export-noweights")
        try FileManager.default.removeItem(at: noWeights.appendingPathComponent("weights.safetensors"))
        assertFailsCleanly(try evaluate(noWeights), mentioning: ["weights.safetensors is missing"])

        let badManifest = try exportCopy("export-badmanifest")
        try Data("{not json".utf8).write(to: badManifest.appendingPathComponent("manifest.json"))
        assertFailsCleanly(try evaluate(badManifest), mentioning: ["manifest.json is not valid JSON"])
    }
}
