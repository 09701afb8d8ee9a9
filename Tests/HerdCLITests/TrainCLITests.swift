import Foundation
import HerdTraining
import XCTest

/// `herd generate`, `train`, `evaluate`, `predict` end to end through the built executable.
final class TrainCLITests: XCTestCase {
    static let summaryKeys = ["auc", "logloss", "accuracy", "precision", "recall", "samples_per_s", "rows", "skipped_rows"]

    func testGenerateWritesTheRequestedRows() throws {
        let (dir, run) = try CLIFixtures.data()
        XCTAssertTrue(run.stdout.contains("oracle test AUC"), run.transcript)
        XCTAssertEqual(try CLIFixtures.lines(dir.appendingPathComponent("train.txt").path).count, CLIFixtures.trainRows)
        let test = try CLIFixtures.lines(dir.appendingPathComponent("test.txt").path)
        XCTAssertEqual(test.count, CLIFixtures.testRows)
        XCTAssertEqual(test.first?.split(separator: "\t", omittingEmptySubsequences: false).count, 40)
        let oracle = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("oracle.json"))) as? [String: Any])
        XCTAssertFalse(oracle.isEmpty)
    }

    private func checkTrainedModel(_ model: String) throws {
        let (out, run) = try CLIFixtures.trainedModel(model)
        let json = try assertSucceededJSON(run)
        XCTAssertEqual(run.stdoutLines.count, 1, "with --json stdout holds only the summary\n\(run.transcript)")
        for key in Self.summaryKeys { XCTAssertNotNil(number(json, key), "summary lacks \(key): \(json)") }
        XCTAssertEqual(json["model"] as? String, model)
        XCTAssertEqual(number(json, "rows"), Double(CLIFixtures.trainRows))
        XCTAssertEqual(number(json, "skipped_rows"), 0)
        XCTAssertEqual(number(json, "valid_rows"), Double(CLIFixtures.testRows))
        XCTAssertEqual(number(json, "steps"), Double(2 * Int((Double(CLIFixtures.trainRows) / 256).rounded(.up))))
        let auc = try XCTUnwrap(number(json, "auc"))
        XCTAssertGreaterThan(auc, 0.6, "the planted signal should be learnt\n\(run.transcript)")
        XCTAssertLessThan(auc, 1)
        XCTAssertGreaterThan(try XCTUnwrap(number(json, "samples_per_s")), 0)
        let fm = FileManager.default
        XCTAssertTrue(fm.fileExists(atPath: out.appendingPathComponent("model/manifest.json").path))
        XCTAssertTrue(fm.fileExists(atPath: out.appendingPathComponent("model/weights.safetensors").path))
        XCTAssertEqual(json["export"] as? String, out.appendingPathComponent("model").path)
        // The export loads and is the model asked for.
        let export = try ModelExport.load(from: out.appendingPathComponent("model"))
        XCTAssertEqual(export.config.kind.rawValue, model)
    }

    func testTrainDLRMPrintsJSONSummaryAndExports() throws { try checkTrainedModel("dlrm") }

    func testTrainWideAndDeepPrintsJSONSummaryAndExports() throws { try checkTrainedModel("wnd") }

    func testEvaluateMatchesTrainingValidationAndPredictWritesOneProbabilityPerRow() throws {
        let (out, train) = try CLIFixtures.trainedModel("dlrm")
        let trainJSON = try assertSucceededJSON(train)
        let model = out.appendingPathComponent("model").path
        let scratch = try CLIFixtures.scratch("evaluate")
        // A cache directory of its own: evaluate must transform the file itself from the export's
        // feature state, not reuse the cache training built.
        let eval = try HerdBinary.run(["evaluate", "--model", model, "--data", try CLIFixtures.testFile(), "--json", "--cache-dir", scratch.path])
        let evalJSON = try assertSucceededJSON(eval)
        XCTAssertEqual(eval.stdoutLines.count, 1, eval.transcript)
        for key in ["auc", "logloss", "accuracy", "precision", "recall"] {
            let a = try XCTUnwrap(number(trainJSON, key)), b = try XCTUnwrap(number(evalJSON, key), "evaluate lacks \(key)")
            XCTAssertEqual(a, b, accuracy: 1e-6, "\(key): train's validation \(a), evaluate \(b)")
        }
        XCTAssertEqual(number(evalJSON, "rows"), Double(CLIFixtures.testRows))
        XCTAssertEqual(number(evalJSON, "skipped_rows"), 0)

        let predictions = scratch.appendingPathComponent("p.txt").path
        let predict = try HerdBinary.run(["predict", "--model", model, "--data", try CLIFixtures.testFile(), "--out", predictions])
        XCTAssertTrue(predict.succeeded, predict.transcript)
        XCTAssertTrue(predict.stdout.contains("wrote \(CLIFixtures.testRows) probabilities"), predict.transcript)
        let text = try String(contentsOfFile: predictions, encoding: .utf8)
        XCTAssertTrue(text.hasSuffix("\n"))
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        XCTAssertEqual(lines.count, CLIFixtures.testRows)
        var values: [Double] = []
        for (i, l) in lines.enumerated() {
            guard let v = Double(l) else { XCTFail("line \(i + 1) is not a number: '\(l)'"); return }
            XCTAssertTrue(v > 0 && v < 1, "line \(i + 1): \(v) is not a probability in (0, 1)")
            values.append(v)
        }
        XCTAssertGreaterThan(Set(values).count, 10, "the predictions should vary with the rows")
        // The probabilities are the ones evaluate scored: their mean is the model's calibration, close
        // to the test file's positive rate (≈ 0.27), not something arbitrary.
        let mean = values.reduce(0, +) / Double(values.count)
        XCTAssertEqual(mean, try XCTUnwrap(number(evalJSON, "positive_rate")), accuracy: 0.1)

        // An unlabelled copy (39 columns) gives the same probabilities.
        let unlabelled = scratch.appendingPathComponent("unlabelled.txt").path
        let rows = try CLIFixtures.lines(try CLIFixtures.testFile())
        try (rows.map { $0.split(separator: "\t", omittingEmptySubsequences: false).dropFirst().joined(separator: "\t") }.joined(separator: "\n") + "\n")
            .write(toFile: unlabelled, atomically: true, encoding: .utf8)
        let predictions2 = scratch.appendingPathComponent("p2.txt").path
        let predict2 = try HerdBinary.run(["predict", "--model", model, "--data", unlabelled, "--out", predictions2])
        XCTAssertTrue(predict2.succeeded, predict2.transcript)
        XCTAssertEqual(try String(contentsOfFile: predictions2, encoding: .utf8), text)
        // evaluate needs labels.
        assertFailsCleanly(try HerdBinary.run(["evaluate", "--model", model, "--data", unlabelled]), mentioning: ["no label column"])
    }

    func testCSVWithAndWithoutHeaderGivesTheSameResultsAsTSV() throws {
        let (out, _) = try CLIFixtures.trainedModel("dlrm")
        let model = out.appendingPathComponent("model").path
        let dir = try CLIFixtures.scratch("csv")
        let rows = try CLIFixtures.lines(try CLIFixtures.testFile()).map { $0.replacingOccurrences(of: "\t", with: ",") }
        let header = (["label"] + (1...13).map { "I\($0)" } + (1...26).map { "C\($0)" }).joined(separator: ",")
        let withHeader = dir.appendingPathComponent("eval.csv").path, bare = dir.appendingPathComponent("bare.csv").path
        try (([header] + rows).joined(separator: "\n") + "\n").write(toFile: withHeader, atomically: true, encoding: .utf8)
        try (rows.joined(separator: "\n") + "\n").write(toFile: bare, atomically: true, encoding: .utf8)
        var results: [[String: Any]] = []
        var predictions: [String] = []
        for path in [try CLIFixtures.testFile(), withHeader, bare] {
            results.append(try assertSucceededJSON(try HerdBinary.run(["evaluate", "--model", model, "--data", path, "--json"])))
            let p = dir.appendingPathComponent("p\(predictions.count).txt").path
            XCTAssertTrue(try HerdBinary.run(["predict", "--model", model, "--data", path, "--out", p]).succeeded)
            predictions.append(try String(contentsOfFile: p, encoding: .utf8))
        }
        for r in results {
            XCTAssertEqual(number(r, "rows"), Double(CLIFixtures.testRows))
            XCTAssertEqual(number(r, "auc"), number(results[0], "auc"))
            XCTAssertEqual(number(r, "logloss"), number(results[0], "logloss"))
        }
        XCTAssertEqual(Set(predictions).count, 1, "the same probabilities from TSV and CSV")
        // A bad row in the CSV with a header: line numbers count the header.
        var bad = rows
        bad[4] = "1,2,3"
        try (([header] + bad).joined(separator: "\n") + "\n").write(toFile: withHeader, atomically: true, encoding: .utf8)
        assertFailsCleanly(try HerdBinary.run(["evaluate", "--model", model, "--data", withHeader]), mentioning: ["\(withHeader):6: expected 40 fields, found 3"])
    }

    func testTargetAUCMissedExitsNonZeroAfterTheGivenRetries() throws {
        let out = try CLIFixtures.scratch("target")
        let run = try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: out, epochs: 1, ["--json", "--target-auc", "0.999", "--max-retries", "1"]))
        assertFailsCleanly(run, mentioning: ["target was not reached after 1 retry (AUC "])
        let json = try run.lastJSON()
        XCTAssertEqual(number(json, "retries"), 1, run.transcript)
        XCTAssertEqual(json["target_reached"] as? Bool, false)
        // One epoch, then one retry of one more epoch.
        XCTAssertEqual(number(json, "steps"), Double(2 * 12), run.transcript)
        XCTAssertEqual(run.stderr.components(separatedBy: "target missed").count - 1, 1, run.transcript)
        XCTAssertTrue(run.stderr.contains("retry 1 of 1"), run.transcript)
        XCTAssertFalse(run.stderr.contains("retry 2"), run.transcript)
        // The model of the last attempt is still exported.
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("model/manifest.json").path))
    }

    func testTargetAUCReachedExitsZero() throws {
        let out = try CLIFixtures.scratch("target-ok")
        let run = try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: out, epochs: 2, ["--json", "--target-auc", "0.55", "--max-retries", "1"]))
        let json = try assertSucceededJSON(run)
        XCTAssertEqual(json["target_reached"] as? Bool, true)
        XCTAssertEqual(number(json, "retries"), 0)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(number(json, "auc")), 0.55)
    }

    func testSummaryMetricsDescribeTheExportedModelWhenStoppedMidEpoch() throws {
        // Epoch 1 ends (and validates) at step 12; the run stops at step 17, mid-epoch 2.
        let out = try CLIFixtures.scratch("midepoch")
        let run = try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: out, epochs: 2, ["--json", "--max-steps", "17"]))
        let json = try assertSucceededJSON(run)
        XCTAssertEqual(number(json, "steps"), 17)
        let eval = try HerdBinary.run(["evaluate", "--model", out.appendingPathComponent("model").path, "--data", try CLIFixtures.testFile(), "--json"])
        let evalJSON = try assertSucceededJSON(eval)
        let auc = try XCTUnwrap(number(json, "auc"), "the summary has the validation metrics\n\(run.transcript)")
        XCTAssertEqual(auc, try XCTUnwrap(number(evalJSON, "auc")), accuracy: 1e-6, "the summary's AUC is that of the exported weights\n\(run.transcript)")

        // Stopped before any validation: a target is checked against a real measurement, not assumed met.
        let early = try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: try CLIFixtures.scratch("midepoch-target"), epochs: 1,
                                                                ["--json", "--max-steps", "2", "--target-auc", "0.99", "--max-retries", "0"]))
        assertFailsCleanly(early, mentioning: ["target was not reached"])
        XCTAssertEqual(try early.lastJSON()["target_reached"] as? Bool, false, early.transcript)
        XCTAssertNotNil(number(try early.lastJSON(), "auc"), early.transcript)
    }

    func testTargetWithoutValidationFileIsRefused() throws {
        let out = try CLIFixtures.scratch("target-novalid")
        let run = try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: out, epochs: 1, valid: false, ["--target-auc", "0.6"]))
        assertFailsCleanly(run, mentioning: ["--valid"])
    }

    func testConfigFileIsHonouredAndFlagsOverrideIt() throws {
        let dir = try CLIFixtures.scratch("config")
        let config = dir.appendingPathComponent("train.json")
        try Data(#"{"epochs": 2, "batch-size": 512}"#.utf8).write(to: config)
        // Like trainArgs, but without --epochs and --batch-size, which the config sets.
        func args(_ out: String, _ extra: [String]) throws -> [String] {
            ["train", "--model", "dlrm", "--bottom-mlp", "8-4", "--top-mlp", "8-1", "--embedding-dim", "4", "--lr", "0.03",
             "--train", try CLIFixtures.trainFile(), "--out", dir.appendingPathComponent(out).path, "--json", "--config", config.path] + extra
        }
        let stepsPerEpoch = Int((Double(CLIFixtures.trainRows) / 512).rounded(.up))
        let fromConfig = try assertSucceededJSON(try HerdBinary.run(try args("a", [])))
        XCTAssertEqual(number(fromConfig, "steps"), Double(2 * stepsPerEpoch), "\(fromConfig)")
        XCTAssertEqual(number(fromConfig, "epochs"), 2)
        let overridden = try assertSucceededJSON(try HerdBinary.run(try args("b", ["--epochs", "1"])))
        XCTAssertEqual(number(overridden, "steps"), Double(stepsPerEpoch), "the batch size still comes from the config: \(overridden)")
        XCTAssertEqual(number(overridden, "epochs"), 1)

        // Settings of every kind are accepted…
        try Data(#"{"epochs": 1, "max-ind-range": 1000, "target-auc": 0.5, "on-error": "fail", "shuffle": true, "bottom-mlp": "8-4"}"#.utf8).write(to: config)
        let keys = try assertSucceededJSON(try HerdBinary.run(try args("keys", ["--valid", try CLIFixtures.testFile()])))
        XCTAssertEqual(keys["target_reached"] as? Bool, true, "target-auc from the config is used")
        // …and a misspelt one is an error, not silently ignored.
        try Data(#"{"epochs": 2, "batch_size": 512}"#.utf8).write(to: config)
        assertFailsCleanly(try HerdBinary.run(try args("typo", [])), mentioning: ["unknown setting \"batch_size\" (did you mean \"batch-size\"?)"])
        try Data(#"{"json": true}"#.utf8).write(to: config)
        assertFailsCleanly(try HerdBinary.run(try args("json", [])), mentioning: ["unknown setting \"json\""])
        try Data(#"{"valid": "test.txt"}"#.utf8).write(to: config)
        assertFailsCleanly(try HerdBinary.run(try args("valid", [])), mentioning: ["unknown setting \"valid\""])

        try Data(#"{"epochs": "two"}"#.utf8).write(to: config)
        assertFailsCleanly(try HerdBinary.run(try args("c", [])), mentioning: [config.path, "\"epochs\" must be an integer"])
        try Data(#"{"batch-size": 2.5}"#.utf8).write(to: config)
        assertFailsCleanly(try HerdBinary.run(try args("d", [])), mentioning: ["\"batch-size\" must be an integer"])
        try Data(#"[1, 2]"#.utf8).write(to: config)
        assertFailsCleanly(try HerdBinary.run(try args("e", [])), mentioning: ["not a JSON object"])
        assertFailsCleanly(try HerdBinary.run(try args("f", ["--config", dir.appendingPathComponent("missing.json").path])),
                           mentioning: ["missing.json: no such file"])
    }

    func testHelpMentionsTheImportantFlags() throws {
        let root = try HerdBinary.run(["--help"])
        XCTAssertTrue(root.succeeded, root.transcript)
        for sub in ["generate", "train", "evaluate", "predict", "bench"] {
            XCTAssertTrue(root.stdout.contains(sub), "herd --help does not list \(sub)\n\(root.transcript)")
        }
        let train = try HerdBinary.run(["train", "--help"])
        XCTAssertTrue(train.succeeded, train.transcript)
        for flag in ["--model", "--train", "--valid", "--out", "--config", "--epochs", "--max-steps", "--batch-size", "--lr", "--optimizer",
                     "--seed", "--checkpoint-every", "--resume", "--target-auc", "--target-accuracy", "--max-retries", "--on-error",
                     "--max-ind-range", "--freq-limit", "--crosses", "--json"] {
            XCTAssertTrue(train.stdout.contains(flag), "herd train --help does not mention \(flag)\n\(train.transcript)")
        }
        for (sub, flags) in [(["evaluate", "--help"], ["--model", "--data", "--json", "--on-error"]), (["predict", "--help"], ["--model", "--data", "--out"]),
                             (["generate", "criteo", "--help"], ["--rows", "--seed", "--out", "--test-fraction"])] {
            let r = try HerdBinary.run(sub)
            XCTAssertTrue(r.succeeded, r.transcript)
            for flag in flags { XCTAssertTrue(r.stdout.contains(flag), "herd \(sub.joined(separator: " ")) does not mention \(flag)\n\(r.transcript)") }
        }
        let version = try HerdBinary.run(["--version"])
        XCTAssertTrue(version.succeeded, version.transcript)
        XCTAssertFalse(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    func testUnknownFlagAndBadValuesAreUsageErrors() throws {
        let out = try CLIFixtures.scratch("usage")
        assertFailsCleanly(try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: out, ["--no-such-flag"])), mentioning: ["--no-such-flag"])
        assertFailsCleanly(try HerdBinary.run(["train", "--model", "xgboost", "--train", try CLIFixtures.trainFile(), "--out", out.path]), mentioning: ["xgboost"])
        assertFailsCleanly(try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: out, ["--on-error", "ignore"])), mentioning: ["ignore"])
        assertFailsCleanly(try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: out, ["--top-mlp", "8-x-1"])), mentioning: ["8-x-1"])
        // Values out of range are errors, not crashes.
        for (extra, message) in [(["--keep-checkpoints", "0"], "checkpoints kept must be at least 1, got 0"),
                                 (["--batch-size", "0"], "batch size must be positive, got 0"),
                                 (["--max-ind-range", "0"], "hashing table size"),
                                 (["--bottom-mlp", "8-5"], "bottom MLP must end in the embedding dimension 4"),
                                 (["--optimizer", "nope"], "unknown optimizer 'nope'")] {
            assertFailsCleanly(try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: out, epochs: 1, extra + ["--max-steps", "1"])), mentioning: [message])
        }
        assertFailsCleanly(try HerdBinary.run(try CLIFixtures.trainArgs("wnd", out: out, epochs: 1, ["--crosses", "0:99", "--max-steps", "1"])), mentioning: ["0..<26"])
        let file = out.appendingPathComponent("a-file").path
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        assertFailsCleanly(try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: URL(fileURLWithPath: file), epochs: 1)), mentioning: ["\(file): exists and is not a directory"])
        let (trained, _) = try CLIFixtures.trainedModel("dlrm")
        for command in ["evaluate", "predict"] {
            assertFailsCleanly(try HerdBinary.run([command, "--model", trained.appendingPathComponent("model").path, "--data", try CLIFixtures.testFile(),
                                                   "--batch-size", "0", "--out", out.appendingPathComponent("p.txt").path].dropLast(command == "evaluate" ? 2 : 0)),
                               mentioning: ["--batch-size must be positive, got 0"])
        }
    }
}
