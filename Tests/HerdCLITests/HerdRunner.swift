import Foundation
import XCTest

/// What one run of the `herd` executable produced.
struct HerdRun {
    let arguments: [String]
    /// Exit status (the signal number when `signaled`).
    let status: Int32
    let signaled: Bool
    let stdout: String
    let stderr: String
    let timedOut: Bool
    let seconds: Double

    var succeeded: Bool { !signaled && !timedOut && status == 0 }

    /// Non-empty stdout lines.
    var stdoutLines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }

    /// The last stdout line parsed as a JSON object.
    func lastJSON(file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let last = try XCTUnwrap(stdoutLines.last, "no stdout at all\n\(transcript)", file: file, line: line)
        let object = try? JSONSerialization.jsonObject(with: Data(last.utf8))
        return try XCTUnwrap(object as? [String: Any], "the last stdout line is not a JSON object: \(last)\n\(transcript)", file: file, line: line)
    }

    /// Everything about the run, for failure messages.
    var transcript: String {
        """
        $ herd \(arguments.joined(separator: " "))
        exit \(signaled ? "signal " : "")\(status)\(timedOut ? " (timed out)" : "") after \(String(format: "%.1f", seconds)) s
        --- stdout ---
        \(stdout)
        --- stderr ---
        \(stderr)
        """
    }

    /// Signs of a crash rather than a handled error: the Swift runtime's messages and stack dumps.
    var crashSigns: [String] {
        ["Fatal error", "Stack dump", "Current stack trace", "Illegal instruction", "Segmentation fault", "Trace/breakpoint trap"]
            .filter { stderr.contains($0) || stdout.contains($0) }
    }
}

/// Runs the built `herd` executable as a subprocess, as a user would.
enum HerdBinary {
    /// The `herd` executable in the build directory of this test bundle (`$HERD_BINARY` overrides).
    static func url() throws -> URL {
        let fm = FileManager.default
        if let explicit = ProcessInfo.processInfo.environment["HERD_BINARY"], !explicit.isEmpty {
            guard fm.isExecutableFile(atPath: explicit) else { throw XCTSkip("HERD_BINARY=\(explicit) is not an executable file") }
            return URL(fileURLWithPath: explicit)
        }
        var directories: [URL] = []
        // On Linux the test bundle is an executable run directly: argv[0] is
        // `.build/<triple>/debug/HerdPackageTests.xctest`, beside `herd`.
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        directories.append(argv0.deletingLastPathComponent())
        directories.append(Bundle.main.bundleURL)
        directories.append(Bundle.main.bundleURL.deletingLastPathComponent())
        if let exe = Bundle.main.executableURL { directories.append(exe.deletingLastPathComponent()) }
        // macOS: the .xctest bundle lives in the build directory too.
        for b in Bundle.allBundles where b.bundlePath.hasSuffix(".xctest") { directories.append(b.bundleURL.deletingLastPathComponent()) }
        // Last resort: the package's default debug build directory.
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        directories.append(packageRoot.appendingPathComponent(".build/debug"))
        for d in directories {
            let candidate = d.appendingPathComponent("herd")
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue, fm.isExecutableFile(atPath: candidate.path) {
                return candidate
            }
        }
        throw XCTSkip("the herd executable was not found beside the test bundle (looked in \(directories.map(\.path).joined(separator: ", "))); build it with `swift build --build-tests` or set HERD_BINARY")
    }

    /// Runs `herd args…` and waits for it (killing it after `timeout` seconds). stdout and stderr go
    /// to files, as when a user redirects them: neither is a terminal.
    static func run(_ args: [String], timeout: TimeInterval = 60, environment: [String: String] = [:]) throws -> HerdRun {
        let running = try start(args, environment: environment)
        return running.wait(timeout: timeout)
    }

    /// Starts `herd args…` without waiting.
    static func start(_ args: [String], environment: [String: String] = [:]) throws -> RunningHerd {
        let exe = try url()
        let fm = FileManager.default
        let logs = fm.temporaryDirectory.appendingPathComponent("herd-cli-run-\(UInt64.random(in: 0 ... .max))")
        try fm.createDirectory(at: logs, withIntermediateDirectories: true)
        let outURL = logs.appendingPathComponent("stdout"), errURL = logs.appendingPathComponent("stderr")
        _ = fm.createFile(atPath: outURL.path, contents: nil)
        _ = fm.createFile(atPath: errURL.path, contents: nil)
        let p = Process()
        p.executableURL = exe
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let outHandle = try FileHandle(forWritingTo: outURL), errHandle = try FileHandle(forWritingTo: errURL)
        p.standardOutput = outHandle
        p.standardError = errHandle
        p.standardInput = FileHandle.nullDevice
        let t0 = Date()
        try p.run()
        try? outHandle.close()
        try? errHandle.close()
        return RunningHerd(process: p, arguments: args, logs: logs, started: t0)
    }
}

/// A `herd` subprocess started by `HerdBinary.start`.
final class RunningHerd {
    let process: Process
    let arguments: [String]
    let logs: URL
    let started: Date

    init(process: Process, arguments: [String], logs: URL, started: Date) {
        self.process = process
        self.arguments = arguments
        self.logs = logs
        self.started = started
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// stderr so far.
    var stderrSoFar: String { (try? String(contentsOf: logs.appendingPathComponent("stderr"), encoding: .utf8)) ?? "" }

    /// Waits for the process to end (SIGKILLing it after `timeout` seconds) and collects its output.
    func wait(timeout: TimeInterval) -> HerdRun {
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while process.isRunning {
            if Date() > deadline {
                timedOut = true
                kill(process.processIdentifier, SIGKILL)
                break
            }
            usleep(10_000)
        }
        process.waitUntilExit()
        let seconds = Date().timeIntervalSince(started)
        func read(_ name: String) -> String {
            (try? String(contentsOf: logs.appendingPathComponent(name), encoding: .utf8)) ?? "<unreadable \(name)>"
        }
        let run = HerdRun(
            arguments: arguments, status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
            stdout: read("stdout"), stderr: read("stderr"), timedOut: timedOut, seconds: seconds)
        try? FileManager.default.removeItem(at: logs)
        return run
    }
}
