import ArgumentParser
import Foundation
import HerdData
import HerdTensor

/// `herd bench preprocess --data FILE`: times the text → cache pipeline (vocabularies fitted and
/// the cache written in one pass, `CriteoDataset.fitAndOpen`; with `--two-pass`, fit then parse +
/// transform + cache write), and one epoch of shuffled batches from the cache. A synchronous
/// `ParsableCommand`, like `GenerateCriteo`.
public struct BenchPreprocess: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "preprocess",
        abstract: "Measure Criteo preprocessing throughput: vocabulary fit, parse+transform+cache write, cached epoch.")

    @Option(help: "Criteo text file (TSV or CSV).")
    var data: String

    @Option(help: "Cache directory (default: a fresh temporary directory, removed afterwards).")
    var cacheDir: String?

    @Option(help: "Hash every categorical into this many rows instead of fitting vocabularies.")
    var hashing: Int?

    @Option(help: "Vocabulary frequency limit (ignored with --hashing).")
    var freqLimit: Int = 2

    @Option(help: "Batch size for the cached epoch.")
    var batchSize: Int = 2048

    @Option(help: "Bytes per parse chunk.")
    var chunkMiB: Int = 8

    @Flag(help: "Fit with one pass over the text and build the cache with a second (the way before `CriteoDataset.fitAndOpen`), for comparison.")
    var twoPass = false

    @Flag(help: "Print one JSON object as the last line (rows_per_s = rows / (fit + transform-and-cache seconds), peak_rss_bytes).")
    var json = false

    public init() {}

    public func run() throws {
        let directory = cacheDir ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("herd-bench-preprocess-\(getpid())").path
        defer { if cacheDir == nil { try? FileManager.default.removeItem(atPath: directory) } }
        let chunkBytes = chunkMiB << 20
        let bytes = try FileManager.default.attributesOfItem(atPath: data)[.size] as? Int ?? 0

        var clock = Date()
        let config: FeatureConfig = hashing.map { .hashing(tableSize: $0) } ?? .vocabulary(freqLimit: freqLimit)
        let state: FeatureState, dataset: CriteoDataset
        let fitSeconds: Double, buildSeconds: Double
        let onePass = config.needsFit && !twoPass
        if onePass {
            let fitted = try CriteoDataset.fitAndOpen(path: data, config: config, cacheDirectory: directory, chunkBytes: chunkBytes)
            state = fitted.state
            dataset = fitted.dataset
            fitSeconds = Date().timeIntervalSince(clock)
            buildSeconds = 0
        } else {
            state = try FeatureState.fit(trainPath: data, config: config, chunkBytes: chunkBytes)
            fitSeconds = Date().timeIntervalSince(clock)
            let cachePath = CriteoDataset.cachePath(for: data, state: state, cacheDirectory: directory)
            try? FileManager.default.removeItem(atPath: cachePath)
            clock = Date()
            dataset = try CriteoDataset.open(path: data, state: state, cacheDirectory: directory, chunkBytes: chunkBytes)
            buildSeconds = Date().timeIntervalSince(clock)
        }

        clock = Date()
        var seen = 0
        for batch in dataset.batches(size: batchSize, shuffle: 1, epoch: 0) { seen += batch.count }
        let epochSeconds = Date().timeIntervalSince(clock)
        clock = Date()
        var seenBlocked = 0
        for batch in dataset.batches(size: batchSize, shuffle: 1, epoch: 0, blockRows: 1 << 16) { seenBlocked += batch.count }
        let blockedSeconds = Date().timeIntervalSince(clock)

        let rows = Double(dataset.rows)
        func line(_ name: String, _ seconds: Double) -> String {
            String(format: "%-38@ %8.2f s %12.0f rows/s %8.1f MB/s", name as NSString, seconds, rows / seconds,
                   Double(bytes) / 1e6 / seconds)
        }
        print("\(data): \(dataset.rows) rows, \(bytes) bytes, \(ProcessInfo.processInfo.activeProcessorCount) cores")
        if onePass {
            print(line("one pass: fit + transform + cache write", fitSeconds))
        } else {
            if config.needsFit { print(line("fit vocabularies (parse + count)", fitSeconds)) }
            print(line("parse + transform + cache write", buildSeconds))
        }
        print(String(format: "%-38@ %8.2f s %12.0f rows/s (%d rows, batch %d)", "shuffled epoch from cache" as NSString,
                     epochSeconds, Double(seen) / epochSeconds, seen, batchSize))
        print(String(format: "%-38@ %8.2f s %12.0f rows/s", "block-shuffled epoch (64k-row blocks)" as NSString,
                     blockedSeconds, Double(seenBlocked) / blockedSeconds))
        print("table sizes: \(state.tableSizes.map(String.init).joined(separator: ","))")
        if json {
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            let total = fitSeconds + buildSeconds
            print(jsonLine([
                "who": "herd", "rows": dataset.rows, "bytes": bytes, "rows_per_s": rows / total, "wall_s": total,
                "mb_per_s": Double(bytes) / 1e6 / total, "fit_seconds": fitSeconds, "transform_cache_seconds": buildSeconds,
                "shuffled_epoch_rows_per_s": Double(seen) / epochSeconds, "peak_rss_bytes": Int(usage.ru_maxrss) * 1024,
                "passes": onePass ? 1 : (config.needsFit ? 2 : 1), "freq_limit": hashing == nil ? freqLimit : 0, "hashing": hashing ?? 0, "threads": Parallel.threads,
            ]))
        }
    }
}
