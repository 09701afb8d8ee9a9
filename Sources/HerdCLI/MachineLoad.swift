import Foundation

/// Measures how busy the machine is *apart from this process*, from /proc/stat and /proc/self/stat.
///
/// NOTE: on a 2-core machine any other busy process halves a benchmark's figure; benchmarks sample
/// this before and during a timed run and say so in their output.
public struct MachineLoad: Sendable {
    var total: Double
    var busy: Double
    var own: Double

    /// A sample now; nil where /proc is unavailable.
    public static func sample() -> MachineLoad? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let cpu = stat.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return nil }
        let v = cpu.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard v.count >= 5 else { return nil }
        let idle = v[3] + v[4]
        let total = v.reduce(0, +)
        var own = 0.0
        if let s = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let close = s.lastIndex(of: ")") {
            let f = s[s.index(after: close)...].split(separator: " ")
            // fields after the command: state(0) … utime(11) stime(12)
            if f.count > 12, let u = Double(f[11]), let st = Double(f[12]) { own = u + st }
        }
        return MachineLoad(total: total, busy: total - idle, own: own)
    }

    /// Fraction of all cores' time, between `earlier` and `self`, used by *other* processes (0…1).
    public func othersBusy(since earlier: MachineLoad) -> Double {
        let dt = total - earlier.total
        guard dt > 0 else { return 0 }
        return max(0, ((busy - earlier.busy) - (own - earlier.own)) / dt)
    }

    /// Samples over `seconds` while idle and returns the others' busy fraction.
    public static func othersBusy(over seconds: Double) -> Double? {
        guard let a = sample() else { return nil }
        Thread.sleep(forTimeInterval: seconds)
        guard let b = sample() else { return nil }
        return b.othersBusy(since: a)
    }

    /// A one-line verdict for benchmark output.
    public static func verdict(_ fraction: Double?) -> String {
        guard let f = fraction else { return "machine load: unknown (no /proc)" }
        let pct = String(format: "%.0f%%", f * 100)
        return f > 0.10 ? "WARNING: machine busy — other processes used \(pct) of the CPU; figures are not trustworthy"
                        : "machine quiet: other processes used \(pct) of the CPU"
    }
}
