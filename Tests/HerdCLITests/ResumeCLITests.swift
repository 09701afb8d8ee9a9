import Foundation
import XCTest

/// `--resume`: an interrupted run (stopped by `--max-steps` or killed) ends with exactly the
/// weights of an uninterrupted one.
final class ResumeCLITests: XCTestCase {
    /// 2 epochs × 12 steps, checkpoints every 3 steps (and at each epoch end).
    private func args(_ out: URL, _ extra: [String] = []) throws -> [String] {
        try CLIFixtures.trainArgs("dlrm", out: out, epochs: 2, ["--json", "--checkpoint-every", "3"] + extra)
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var reference: URL?

    /// The uninterrupted run, made once.
    private func uninterrupted() throws -> URL {
        try Self.lock.withLock {
            if let r = Self.reference { return r }
            let out = try CLIFixtures.scratch("uninterrupted")
            let run = try HerdBinary.run(try args(out))
            XCTAssertEqual(number(try assertSucceededJSON(run), "steps"), 24, run.transcript)
            Self.reference = out
            return out
        }
    }

    /// Steps of the complete checkpoints in `OUT/checkpoints` (`ckpt-<10 digits>`).
    private func checkpointSteps(_ out: URL) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("checkpoints").path)) ?? []
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("ckpt-") else { return nil }
            let digits = name.dropFirst(5)
            guard digits.count == 10, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
            return Int(digits)
        }.sorted()
    }

    func testResumeAfterMaxStepsEqualsUninterruptedRun() throws {
        let reference = try uninterrupted()
        let out = try CLIFixtures.scratch("resume-maxsteps")
        let first = try HerdBinary.run(try args(out, ["--max-steps", "7"]))
        XCTAssertEqual(number(try assertSucceededJSON(first), "steps"), 7, first.transcript)
        XCTAssertEqual(checkpointSteps(out), [3, 6], "checkpoints every 3 steps")
        // Stopping at step 7 of 24 is not the uninterrupted result.
        XCTAssertNotEqual(try tensorBytes(out.appendingPathComponent("model/weights.safetensors")),
                          try tensorBytes(reference.appendingPathComponent("model/weights.safetensors")))

        let second = try HerdBinary.run(try args(out, ["--resume"]))
        let json = try assertSucceededJSON(second)
        XCTAssertTrue(second.stderr.contains("resumed from the checkpoint at step 6"), second.transcript)
        XCTAssertEqual(number(json, "steps"), 24, second.transcript)
        XCTAssertEqual(number(json, "epochs"), 2)
        try assertSameWeights(out, reference)
    }

    func testResumeAfterSIGKILLEqualsUninterruptedRun() throws {
        let reference = try uninterrupted()
        let out = try CLIFixtures.scratch("resume-kill")
        let running = try HerdBinary.start(try args(out))
        let deadline = Date().addingTimeInterval(60)
        while checkpointSteps(out).isEmpty && running.isRunning && Date() < deadline { usleep(5_000) }
        let stillRunning = running.isRunning
        kill(running.pid, SIGKILL)
        let killed = running.wait(timeout: 30)
        XCTAssertTrue(stillRunning, "the run ended before it could be killed\n\(killed.transcript)")
        XCTAssertTrue(killed.signaled && killed.status == SIGKILL, killed.transcript)
        XCTAssertEqual(killed.stdout, "", "a killed run prints no summary")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("model").path), "a killed run exports nothing")
        let steps = checkpointSteps(out)
        let newest = try XCTUnwrap(steps.last, "no complete checkpoint after the kill")
        XCTAssertLessThan(newest, 24, "killed before the end")
        XCTAssertEqual(newest % 3, 0, "checkpoints are at fixed steps")

        let resumed = try HerdBinary.run(try args(out, ["--resume"]))
        let json = try assertSucceededJSON(resumed)
        XCTAssertTrue(resumed.stderr.contains("resumed from the checkpoint at step \(newest)\n"), "expected to resume at step \(newest)\n\(resumed.transcript)")
        XCTAssertEqual(number(json, "steps"), 24, resumed.transcript)
        try assertSameWeights(out, reference)
    }

    func testResumeWithoutCheckpointsStartsAfresh() throws {
        let out = try CLIFixtures.scratch("resume-fresh")
        let run = try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: out, epochs: 1, ["--json", "--resume", "--max-steps", "2"]))
        XCTAssertEqual(number(try assertSucceededJSON(run), "steps"), 2)
        XCTAssertTrue(run.stderr.contains("no checkpoint to resume from"), run.transcript)
    }
}
