import Foundation

/// Progress of long work: a Keras-style bar redrawn in place on a terminal, plain lines (at most
/// one every `plainInterval` seconds, plus the last) when the output is a file or a pipe.
///
/// ```
/// 1234/5000 [======>.......................] - ETA: 12s - loss: 0.4567 - 45.1k samples/s
/// ```
final class ProgressBar: @unchecked Sendable {
    let total: Int
    let label: String
    let handle: FileHandle
    let isTerminal: Bool
    var plainInterval = 10.0
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var lastPlain = Date()

    init(total: Int, label: String, toStandardError: Bool) {
        self.total = max(total, 1)
        self.label = label
        handle = toStandardError ? .standardError : .standardOutput
        isTerminal = isatty(toStandardError ? 2 : 1) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    /// Updates to `done` of `total` with extra `name: value` fields.
    func update(_ done: Int, _ fields: [(String, String)]) {
        let now = Date()
        let finished = done >= total
        let elapsed = now.timeIntervalSince(start)
        let extra = fields.map { " - \($0.0): \($0.1)" }.joined()
        if isTerminal {
            guard finished || now.timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = now
            let width = 30
            let filled = min(width, done * width / total)
            let bar = String(repeating: "=", count: max(filled - (finished ? 0 : 1), 0)) + (finished ? "" : ">") + String(repeating: ".", count: width - filled)
            let digits = String(total).count
            let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
            let time = finished ? " - \(Self.format(seconds: elapsed))" : " - ETA: \(Self.format(seconds: eta))"
            write("\r\(label)\(String(repeating: " ", count: max(0, digits - String(done).count)))\(done)/\(total) [\(bar)]\(time)\(extra)\u{1B}[K" + (finished ? "\n" : ""))
        } else {
            guard finished || now.timeIntervalSince(lastPlain) >= plainInterval else { return }
            lastPlain = now
            write("\(label)\(done)/\(total) (\(Int(100 * Double(done) / Double(total)))%) \(Self.format(seconds: elapsed))\(extra)\n")
        }
    }

    /// A whole line outside the bar (validation results, notices).
    func line(_ text: String) {
        write((isTerminal ? "\r\u{1B}[K" : "") + text + "\n")
    }

    private func write(_ s: String) { handle.write(Data(s.utf8)) }

    static func format(seconds s: Double) -> String {
        if s < 60 { return String(format: "%.0fs", s) }
        if s < 3600 { return String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) }
        return String(format: "%dh%02dm", Int(s) / 3600, Int(s) % 3600 / 60)
    }

    static func rate(_ r: Double) -> String {
        r >= 1e6 ? String(format: "%.2fM", r / 1e6) : r >= 1e3 ? String(format: "%.1fk", r / 1e3) : String(format: "%.0f", r)
    }
}
