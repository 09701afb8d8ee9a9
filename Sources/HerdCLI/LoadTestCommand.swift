import ArgumentParser
import Foundation

/// `herd loadtest --url URL --ids FILE --concurrency C --duration D [--rate QPS] [--json]`: drives
/// an HTTP endpoint (the recommender, TF-Serving predict, anything) and reports throughput and
/// latency percentiles — the seed's multi-thread client, with percentiles instead of an average.
struct LoadTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Load an HTTP endpoint with C concurrent keep-alive connections and report QPS and latency percentiles.",
        discussion: """
            `{id}` in the URL (and in --body) is replaced by an id drawn at random from --ids for each \
            request, e.g. --url 'http://127.0.0.1:8080/recommender/recommend/{id}?k=10&canK=50'. \
            Without --rate the test is a closed loop (each connection sends its next request when the \
            previous answer arrives: the saturation QPS). With --rate the requests are sent on a fixed \
            schedule and latency counts from the scheduled time, so a stalled server shows in the \
            percentiles (no coordinated omission). A response with a status other than 2xx, a timeout \
            or a connection failure counts as an error.
            """)

    @Option(help: "Target URL (http://host:port/path?query); {id} is replaced per request.") var url: String
    @Option(help: "File of ids, one per line, drawn uniformly at random (needed when the URL or body contains {id}).") var ids: String?
    @Option(help: "Concurrent connections (one thread each).") var concurrency = 8
    @Option(help: "How long to measure: seconds, or with a unit (500ms, 10s, 2m).") var duration = "10s"
    @Option(help: "Time before measuring starts (same units; requests then are not counted).") var warmup = "1s"
    @Option(help: "Target requests per second over all connections (open loop); default: as fast as answered.") var rate: Double?
    @Option(help: "HTTP method.") var method = "GET"
    @Option(help: "Request body (for POST), with {id} replaced; sent with Content-Type: application/json unless a header sets it.") var body: String?
    @Option(name: .customLong("header"), help: "Extra request header 'Name: value' (repeatable).") var headers: [String] = []
    @Option(help: "Seconds to wait for a connection or a response before counting an error.") var timeout = 5.0
    @Option(help: "Seed for the id draw.") var seed: UInt64 = 1
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func validate() throws {
        guard concurrency > 0 && concurrency <= 4096 else { throw ValidationError("--concurrency must be in 1…4096, got \(concurrency)") }
        guard try seconds(duration, "--duration") > 0 else { throw ValidationError("--duration must be positive") }
        _ = try seconds(warmup, "--warmup")
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive, got \(rate)") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        for h in headers where !h.contains(":") { throw ValidationError("--header '\(h)' must look like 'Name: value'") }
    }

    func run() throws {
        let target = try HTTPTarget(url: url)
        let needsIDs = url.contains("{id}") || (body?.contains("{id}") ?? false)
        var idList: [String] = [""]
        if let ids {
            guard let text = try? String(contentsOfFile: ids, encoding: .utf8) else { throw LoadTestError("cannot read --ids file \(ids)") }
            idList = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard !idList.isEmpty else { throw LoadTestError("\(ids) holds no ids (one per line expected)") }
        } else if needsIDs {
            throw ValidationError("the URL or body contains {id}: give --ids FILE (one id per line)")
        }
        // Fail fast with a clear message when nothing listens.
        let probe = HTTPConnection(target: target, timeout: timeout)
        try probe.connect()
        probe.close()

        let plan = LoadPlan(target: target, method: method.uppercased(), body: body, headers: headers, ids: idList, concurrency: concurrency,
                            duration: try seconds(duration, "--duration"), warmup: try seconds(warmup, "--warmup"), rate: rate, timeout: timeout, seed: seed)
        if !json {
            print("loading \(url) with \(concurrency) connections for \(plan.duration) s" + (rate.map { " at \($0) requests/s" } ?? " (closed loop)") + " …")
        }
        let report = plan.run()
        if json {
            print(jsonLine(report.dictionary))
        } else {
            print(report.text)
        }
    }

    private func seconds(_ text: String, _ flag: String) throws -> Double {
        let t = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            if let v = Double(t.dropLast(suffix.count)), v >= 0 { return v * scale }
        }
        if let v = Double(t), v >= 0 { return v }
        throw ValidationError("\(flag) '\(text)' is not a duration (e.g. 30, 500ms, 10s, 2m)")
    }
}

/// What to send, how hard and for how long.
struct LoadPlan: Sendable {
    let target: HTTPTarget
    let method: String
    let body: String?
    let headers: [String]
    let ids: [String]
    let concurrency: Int
    let duration: Double
    let warmup: Double
    let rate: Double?
    let timeout: Double
    let seed: UInt64

    func request(id: String) -> [UInt8] {
        let path = target.pathTemplate.replacingOccurrences(of: "{id}", with: id)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(target.host):\(target.port)\r\nConnection: keep-alive\r\nUser-Agent: herd-loadtest\r\n"
        for h in headers { head += h + "\r\n" }
        var bodyBytes: [UInt8] = []
        if let body {
            bodyBytes = Array(body.replacingOccurrences(of: "{id}", with: id).utf8)
            if !headers.contains(where: { $0.lowercased().hasPrefix("content-type:") }) { head += "Content-Type: application/json\r\n" }
            head += "Content-Length: \(bodyBytes.count)\r\n"
        }
        return Array((head + "\r\n").utf8) + bodyBytes
    }

    /// Runs the workers and gathers their samples.
    func run() -> LoadReport {
        let clock = MonotonicClock()
        let start = clock.now() + 0.05
        let measureFrom = start + warmup
        let stop = measureFrom + duration
        let results = WorkerResults(count: concurrency)
        let group = DispatchGroup()
        for w in 0..<concurrency {
            group.enter()
            let thread = Thread {
                results.set(w, self.worker(w, start: start, measureFrom: measureFrom, stop: stop, clock: clock))
                group.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        group.wait()
        return LoadReport(plan: self, samples: results.all, measuredSeconds: duration)
    }

    private func worker(_ w: Int, start: Double, measureFrom: Double, stop: Double, clock: MonotonicClock) -> WorkerSamples {
        var out = WorkerSamples()
        var rng = UInt64(truncatingIfNeeded: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(w) &* 0xBF58_476D_1CE4_E5B9) | 1
        let conn = HTTPConnection(target: target, timeout: timeout)
        // Open loop: this worker's share of the rate, offset so the workers interleave.
        let interval = rate.map { Double(concurrency) / $0 }
        var next = start + (interval ?? 0) * Double(w) / Double(concurrency)
        while true {
            var now = clock.now()
            if interval != nil {
                if next >= stop { break }
                if next > now { usleep(useconds_t(min((next - now) * 1e6, 1e6))); continue }
            } else if now >= stop {
                break
            }
            let scheduled = interval == nil ? now : next
            if let step = interval { next += step }
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
            let id = ids[Int(rng % UInt64(ids.count))]
            let request = request(id: id)
            var failure: String?
            var status = 0
            do {
                status = try conn.roundTrip(request).status
            } catch {
                failure = "\(error)"
                conn.close()
            }
            now = clock.now()
            guard scheduled >= measureFrom, now <= stop + timeout else { continue }
            if scheduled >= stop { continue }
            out.latencies.append(now - scheduled)
            if let failure {
                out.errors[failure, default: 0] += 1
            } else if !(200..<300).contains(status) {
                out.errors["HTTP \(status)", default: 0] += 1
            }
        }
        conn.close()
        return out
    }
}

struct WorkerSamples: Sendable {
    /// Seconds from sending (or the scheduled time) to the complete response, errors included.
    var latencies: [Double] = []
    /// Error kind → count.
    var errors: [String: Int] = [:]
}

final class WorkerResults: @unchecked Sendable {
    private var slots: [WorkerSamples]
    private let lock = NSLock()
    init(count: Int) { slots = Array(repeating: WorkerSamples(), count: count) }
    func set(_ i: Int, _ s: WorkerSamples) { lock.lock(); slots[i] = s; lock.unlock() }
    var all: [WorkerSamples] { lock.lock(); defer { lock.unlock() }; return slots }
}

struct MonotonicClock: Sendable {
    func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// Throughput and latency percentiles of a run.
struct LoadReport {
    let requests: Int
    let errors: Int
    let errorKinds: [String: Int]
    let qps: Double
    /// Milliseconds: p50, p90, p95, p99, p99.9, max, mean.
    let latencyMS: [String: Double]
    let plan: LoadPlan

    init(plan: LoadPlan, samples: [WorkerSamples], measuredSeconds: Double) {
        self.plan = plan
        var all: [Double] = []
        var kinds: [String: Int] = [:]
        for s in samples {
            all += s.latencies
            for (k, v) in s.errors { kinds[k, default: 0] += v }
        }
        all.sort()
        requests = all.count
        errorKinds = kinds
        errors = kinds.values.reduce(0, +)
        qps = Double(requests) / measuredSeconds
        var l: [String: Double] = [:]
        for (name, q) in [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)] {
            l[name] = LoadReport.percentile(all, q) * 1000
        }
        l["max"] = (all.last ?? 0) * 1000
        l["mean"] = all.isEmpty ? 0 : all.reduce(0, +) / Double(all.count) * 1000
        latencyMS = l
    }

    /// Nearest-rank percentile of sorted values (0 for none).
    static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((q * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    var dictionary: [String: Any] {
        ["requests": requests, "errors": errors, "error_kinds": errorKinds, "qps": qps, "latency_ms": latencyMS,
         "concurrency": plan.concurrency, "duration_s": plan.duration, "rate": plan.rate ?? NSNull(), "url_template": "http://\(plan.target.host):\(plan.target.port)\(plan.target.pathTemplate)"]
    }

    var text: String {
        var s = String(format: "%d requests in %.1f s: %.1f requests/s, %d errors", requests, plan.duration, qps, errors)
        s += String(format: "\nlatency ms: p50 %.2f  p90 %.2f  p95 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f",
                    latencyMS["p50"]!, latencyMS["p90"]!, latencyMS["p95"]!, latencyMS["p99"]!, latencyMS["p999"]!, latencyMS["max"]!, latencyMS["mean"]!)
        for (k, v) in errorKinds.sorted(by: { $0.value > $1.value }).prefix(5) { s += "\nerror ×\(v): \(k)" }
        return s
    }
}
