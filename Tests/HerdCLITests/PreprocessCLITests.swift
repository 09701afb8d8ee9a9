import Foundation
import XCTest

/// `herd generate recsys2021` → `herd preprocess` (fit on train, `--apply` on test) as a user runs it.
final class PreprocessCLITests: XCTestCase {
    func testRecSysFilesPreprocessWithTheExamplePipelineAndApplyToTheTestSplit() throws {
        let dir = try CLIFixtures.scratch("recsys")
        let data = dir.appendingPathComponent("data").path
        let gen = try HerdBinary.run(["generate", "recsys2021", "--rows", "3000", "--seed", "2", "--out", data])
        XCTAssertTrue(gen.succeeded, gen.transcript)
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let pipeline = root.appendingPathComponent("examples/recsys2021/pipeline.json").path
        let trainOut = dir.appendingPathComponent("train").path, testOut = dir.appendingPathComponent("test").path
        let fit = try HerdBinary.run(["preprocess", "--pipeline", pipeline, "--input", data + "/train.txt", "--schema", data + "/schema.json",
                                      "--out", trainOut, "--csv", "--json"])
        XCTAssertTrue(fit.succeeded, fit.transcript)
        let summary = try fit.lastJSON()
        XCTAssertEqual(summary["rows"] as? Int, 2700, fit.transcript)
        for f in ["table.herdtable", "table.csv", "pipeline.fitted.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: trainOut + "/" + f), f)
        }
        let apply = try HerdBinary.run(["preprocess", "--apply", trainOut + "/pipeline.fitted.json", "--input", data + "/test.txt",
                                        "--schema", data + "/schema.json", "--out", testOut, "--json"])
        XCTAssertTrue(apply.succeeded, apply.transcript)
        XCTAssertEqual(try apply.lastJSON()["rows"] as? Int, 300)
        XCTAssertTrue(FileManager.default.fileExists(atPath: testOut + "/table.herdtable"))

        // A pipeline naming a column the data does not have is refused with the step and key.
        let bad = dir.appendingPathComponent("bad.json").path
        try #"{"steps":[{"op":"fillna","columns":["no_such_column"],"value":0}]}"#.write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try HerdBinary.run(["preprocess", "--pipeline", bad, "--input", data + "/train.txt", "--schema", data + "/schema.json", "--out", dir.appendingPathComponent("bad").path])
        XCTAssertFalse(refused.succeeded)
        XCTAssertTrue(refused.stderr.contains("steps[0]") && refused.stderr.contains("no_such_column"), refused.transcript)
        XCTAssertEqual(refused.crashSigns, [])
    }
}
