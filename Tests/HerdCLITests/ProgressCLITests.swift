import Foundation
import XCTest

/// Progress output: plain lines into files and pipes, a redrawn bar on a terminal.
final class ProgressCLITests: XCTestCase {
    func testProgressWithoutTerminalIsPlainAndInOrder() throws {
        let out = try CLIFixtures.scratch("progress-plain")
        let run = try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: out))
        XCTAssertTrue(run.succeeded, run.transcript)
        for s in [run.stdout, run.stderr] {
            XCTAssertFalse(s.contains("\r"), "carriage return in non-terminal output\n\(run.transcript)")
            XCTAssertFalse(s.contains("\u{1B}"), "escape code in non-terminal output\n\(run.transcript)")
        }
        // Human output on stdout, in the order it happened.
        let lines = run.stdoutLines
        func index(_ prefix: String) -> Int? { lines.firstIndex { $0.hasPrefix(prefix) } }
        let order = ["fitting features", "train 3000 rows", "dlrm:", "Epoch 1/2", "12/12 (100%)", "validation at step 12", "Epoch 2/2",
                     "validation at step 24", "exported ", "validation: AUC", "training: "]
        let positions = order.map(index)
        for (p, name) in zip(positions, order) { XCTAssertNotNil(p, "no line starting with '\(name)'\n\(run.transcript)") }
        let found = positions.compactMap { $0 }
        XCTAssertEqual(found, found.sorted(), "stdout lines out of order: \(zip(order, positions).map { "\($0.0)@\($0.1 ?? -1)" })\n\(run.transcript)")
        XCTAssertEqual(lines.filter { $0.hasPrefix("12/12 (100%)") }.count, 2, "one final progress line per epoch\n\(run.transcript)")
        XCTAssertEqual(run.stderr, "", "nothing on stderr in a good run without --json")
    }

    func testJSONModeKeepsStdoutForTheSummary() throws {
        let out = try CLIFixtures.scratch("progress-json")
        let run = try HerdBinary.run(try CLIFixtures.trainArgs("dlrm", out: out, epochs: 1, ["--json"]))
        let json = try assertSucceededJSON(run)
        XCTAssertEqual(run.stdoutLines.count, 1, "stdout holds exactly the JSON line\n\(run.transcript)")
        XCTAssertTrue(run.stdout.hasSuffix("}\n"))
        XCTAssertNotNil(json["auc"])
        for expected in ["Epoch 1/1", "12/12 (100%)", "validation at step 12", "exported "] {
            XCTAssertTrue(run.stderr.contains(expected), "progress '\(expected)' should be on stderr\n\(run.transcript)")
        }
        XCTAssertFalse(run.stderr.contains("\r") || run.stderr.contains("\u{1B}"), run.transcript)
    }

    func testProgressBarOnATerminal() throws {
        let tmux = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let tmux else { throw XCTSkip("tmux is not installed (scripts/bootstrap installs it); the terminal progress bar is not tested") }
        let herd = try HerdBinary.url()
        let out = try CLIFixtures.scratch("progress-tty")
        let done = out.appendingPathComponent("done")
        let args = try CLIFixtures.trainArgs("dlrm", out: out, epochs: 2, ["--batch-size", "64"])
        let quoted = ([herd.path] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        // A private tmux server (its own socket in the scratch directory, no user config) running herd
        // in a 200×50 pane; the shell keeps the pane open after herd ends so that it can be captured.
        let socket = out.appendingPathComponent("tmux.sock").path
        let log = out.appendingPathComponent("tmux.txt").path
        func tmuxRun(_ a: [String]) throws -> (Int32, String) {
            // NOTE: posix_spawn + waitpid, not Foundation's Process: Process did not see the tmux
            // client exit while the server it starts (a daemon holding inherited descriptors) ran.
            let argv = [tmux, "-S", socket, "-f", "/dev/null"] + a
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
            let env = ProcessInfo.processInfo.environment.filter { $0.key != "TMUX" }.map { "\($0.key)=\($0.value)" }
            var cArgs = argv.map { strdup($0) } + [nil]
            var cEnv = env.map { strdup($0) } + [nil]
            defer { (cArgs + cEnv).forEach { free($0) } }
            var pid: pid_t = 0
            let rc = posix_spawn(&pid, tmux, &actions, nil, &cArgs, &cEnv)
            guard rc == 0 else { return (rc, "posix_spawn failed: \(rc)") }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let exited = status & 0x7f == 0
            return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }
        let command = "TERM=xterm-256color \(quoted); echo \"herd exit $?\" > '\(done.path)'; sleep 60"
        let (status, text) = try tmuxRun(["new-session", "-d", "-x", "200", "-y", "50", "sh", "-c", command])
        guard status == 0 else { throw XCTSkip("tmux could not start a session here: \(text)") }
        defer { _ = try? tmuxRun(["kill-server"]) }
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: done.path) && Date() < deadline { usleep(50_000) }
        let (_, screen) = try tmuxRun(["capture-pane", "-p", "-J", "-S", "-200"])
        let exit = (try? String(contentsOf: done, encoding: .utf8)) ?? "herd did not finish within 60 s"
        XCTAssertEqual(exit.trimmingCharacters(in: .whitespacesAndNewlines), "herd exit 0", screen)
        let steps = Int((Double(CLIFixtures.trainRows) / 64).rounded(.up))
        let finalBar = "\(steps)/\(steps) [" + String(repeating: "=", count: 30) + "]"
        let barLines = screen.split(separator: "\n").filter { $0.contains(finalBar) }
        XCTAssertEqual(barLines.count, 2, "one finished bar per epoch, each on its own line:\n\(screen)")
        XCTAssertTrue(screen.contains("Epoch 1/2") && screen.contains("Epoch 2/2"), screen)
        XCTAssertTrue(screen.contains("validation at step \(steps):"), screen)
        // Redrawn in place: no plain (non-terminal) progress lines.
        XCTAssertFalse(screen.contains("(100%)"), screen)
        XCTAssertFalse(screen.contains("ETA"), "the finished bar replaced the running one:\n\(screen)")
    }
}
