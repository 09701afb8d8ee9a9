import ArgumentParser
import Foundation
import HerdServing
import HerdTensor

/// `herd bench ann`: recall@k against the exact index and single-query throughput of Herd's Flat,
/// IVF and HNSW indexes on clustered embeddings.
struct BenchANN: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ann",
        abstract: "ANN indexes on clustered embeddings: recall@k vs exact and one-query-at-a-time queries/s (Flat, IVF nprobe sweep, HNSW efSearch sweep).",
        discussion: "benchmarks/compare-ann.sh runs this and faiss-cpu / hnswlib on the same vectors (--write-data).")

    @Option(help: "Indexed vectors.") var items = 100_000
    @Option(help: "Dimension.") var dim = 128
    @Option(help: "Queries (drawn from the same clusters).") var queries = 1000
    // NOTE: broad clusters of ≈ 670 points (150 at 100k, spread over several IVF lists) make pip's faiss IVF1024
    // need nprobe 8 for recall@10 0.995 and hnswlib M16 ef 64, as on the issue's data; 1000 tight clusters were
    // too easy (IVF nprobe 2 → 0.9998). The count scales with the items: 150 clusters at 1M (6 700 points each,
    // over ~27 of the 4096 lists) needed nprobe 32.
    @Option(help: "Clusters in the generator (default: one per ≈ 667 items, 150 at 100k).") var clusters: Int?
    @Option(help: "Generator noise around each cluster centre, relative to the centre's scale (larger: clusters overlap, harder for IVF/HNSW).") var noise: Float = 0.35
    @Option(help: "Neighbours per query.") var k = 10
    @Option(help: "IVF lists (default ≈ 4·√items, a power of two).") var nlist: Int?
    @Option(help: "HNSW M.") var hnswM = 16
    @Option(help: "HNSW efConstruction.") var efConstruction = 200
    // NOTE: at 1M items an HNSW build takes many minutes on 2 cores; with a cache directory the IVF and HNSW
    // indexes (Herd's and, through meta.json, the Python peers') are built once per data set and settings and
    // loaded by later runs, which then only re-measure queries. The build seconds of the run that built them
    // are kept beside each file and reported again.
    @Option(help: "Keep built IVF/HNSW indexes in this directory (keyed by data and settings) and load them on later runs.") var cache: String?
    @Option(help: "Recall@k to reach.") var target = 0.99
    @Flag(help: "Measure IVF only (no HNSW build: at 1M items it takes many minutes on 2 cores).") var ivfOnly = false
    @Flag(help: "Measure the exact Flat index only (one query at a time; no IVF/HNSW builds).") var flatOnly = false
    @Option(help: "Generator seed.") var seed: UInt64 = 42
    @Option(help: "Also write base.f32, queries.f32, truth.i64 and meta.json to this directory (for the Python peers).") var writeData: String?
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let log: (String) -> Void = { line in if json { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) } }
        log(MachineLoad.verdict(MachineLoad.othersBusy(over: 0.5)))
        let d = dim
        let clusters = self.clusters ?? max(10, items * 3 / 2000)
        var t0 = Date()
        let base = ClusteredVectors.generate(count: items, dimension: d, clusters: clusters, noise: noise, seed: seed)
        let query = ClusteredVectors.generate(count: queries, dimension: d, clusters: clusters, noise: noise, seed: seed, stream: 1)
        log(String(format: "data: %d × %d base, %d queries, %d clusters, noise %.2f (%.1f s)", items, d, queries, clusters, noise, Date().timeIntervalSince(t0)))
        let ids = (0..<items).map { Int64($0) }

        t0 = Date()
        let flat = FlatIndex(dimension: d, metric: .innerProduct)
        try flat.add(ids: ids, vectors: base)
        let truth = try flat.search(batch: query, k: k)
        log(String(format: "exact top-%d of every query (batched GEMM): %.2f s", k, Date().timeIntervalSince(t0)))
        if let dir = writeData { try write(dir, base: base, query: query, truth: truth) }

        var rows: [[String: Any]] = []
        func measure(_ name: String, _ setting: String, _ index: any ANNIndex) throws {
            var found = ANNResults(queries: queries, k: k)
            var ids = [Int64](repeating: -1, count: k), scores = [Float](repeating: 0, count: k)
            let start = DispatchTime.now().uptimeNanoseconds
            query.withUnsafeBufferPointer { q in
                for b in 0..<queries {
                    let n = index.search(q.baseAddress! + b * d, k: k, ids: &ids, scores: &scores)
                    for i in 0..<n { found.ids[b * k + i] = ids[i] }
                }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            var hit = 0
            for b in 0..<queries { hit += Set(found.ids(of: b)).intersection(truth.ids(of: b)).count }
            let recall = Double(hit) / Double(queries * k)
            let qps = Double(queries) / seconds
            rows.append(["index": name, "setting": setting, "recall": recall, "qps": qps])
            log(String(format: "%-28@ %-14@ recall@%d %.4f  %8.0f queries/s", name as NSString, setting as NSString, k, recall, qps))
        }

        if !ivfOnly { try measure("Flat", "exact", flat) }
        if flatOnly {
            let row = rows.last ?? [:]
            if json {
                let out: [String: Any] = ["items": items, "dim": d, "queries": queries, "k": k, "target": target, "clusters": clusters,
                                          "noise": Double(noise), "threads": Parallel.threads, "results": rows, "best": row]
                print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
            }
            return
        }
        var builds: [String: Any] = [:]
        let dataKey = "\(items)x\(d)-c\(clusters)-n\(String(format: "%.3f", Double(noise)))-s\(seed)"
        let ivf = try cached("herd-ivf\(lists)-\(dataKey)", log: log, builds: &builds, name: "IVF\(lists),Flat") { () -> IVFIndex in
            let ivf = try IVFIndex(dimension: d, metric: .innerProduct, nlist: lists)
            try ivf.add(ids: ids, vectors: base)
            return ivf
        }
        for p in [1, 2, 4, 8, 16, 32, 64, 128] where p <= lists {
            ivf.nprobe = p
            try measure("IVF\(lists),Flat", "nprobe=\(p)", ivf)
            if (rows.last!["recall"] as! Double) >= target { break }
        }
        if !ivfOnly {
            let hnsw = try cached("herd-hnsw\(hnswM)-efc\(efConstruction)-\(dataKey)", log: log, builds: &builds,
                                  name: "HNSW\(hnswM) (efConstruction \(efConstruction))") { () -> HNSWIndex in
                let hnsw = try HNSWIndex(dimension: d, metric: .innerProduct, m: hnswM, efConstruction: efConstruction, capacity: items)
                try hnsw.add(ids: ids, vectors: base)
                return hnsw
            }
            for ef in Self.efLadder where ef >= k {
                hnsw.efSearch = ef
                try measure("HNSW\(hnswM)", "efSearch=\(ef)", hnsw)
                if (rows.last!["recall"] as! Double) >= target { break }
            }
        }

        let reaching = rows.filter { ($0["recall"] as! Double) >= target && ($0["index"] as! String) != "Flat" }
        let best = reaching.max { ($0["qps"] as! Double) < ($1["qps"] as! Double) }
        if let best {
            log(String(format: "best at recall@%d ≥ %.2f: %@ %@ — %.0f queries/s", k, target, best["index"] as! String, best["setting"] as! String, best["qps"] as! Double))
        } else {
            log("no approximate setting reached recall@\(k) ≥ \(target)")
        }
        if json {
            let out: [String: Any] = ["items": items, "dim": d, "queries": queries, "k": k, "target": target, "clusters": clusters, "noise": Double(noise),
                                      "hnsw_m": hnswM, "ef_construction": efConstruction, "build_s": builds, "results": rows, "best": best ?? [:]]
            print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    /// The efSearch values tried, smallest first, until one reaches the target (the same ladder as the peers').
    static let efLadder = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024]

    /// Builds an index with `make`, or loads it from `cache/<key>.index` when a previous run left it there; the
    /// build seconds (of the run that built it) go to `builds[name]` and `cache/<key>.json`.
    private func cached<T: ANNIndex>(_ key: String, log: (String) -> Void, builds: inout [String: Any], name: String,
                                     make: () throws -> T) throws -> T {
        let t0 = Date()
        guard let cache else {
            let index = try make()
            builds[name] = Date().timeIntervalSince(t0)
            log(String(format: "%@ built in %.1f s", name, builds[name] as! Double))
            return index
        }
        let dir = URL(fileURLWithPath: cache, isDirectory: true)
        let file = dir.appendingPathComponent("\(key).index"), info = dir.appendingPathComponent("\(key).json")
        if FileManager.default.fileExists(atPath: file.path), let data = try? Data(contentsOf: info),
           let meta = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let seconds = meta["build_s"] as? Double,
           let index = try loadIndex(from: file) as? T {
            builds[name] = seconds
            log(String(format: "%@ loaded from %@ in %.1f s (built in %.1f s)", name, file.path, Date().timeIntervalSince(t0), seconds))
            return index
        }
        let index = try make()
        let seconds = Date().timeIntervalSince(t0)
        builds[name] = seconds
        log(String(format: "%@ built in %.1f s", name, seconds))
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try index.save(to: file)
        try JSONSerialization.data(withJSONObject: ["build_s": seconds, "threads": Parallel.threads]).write(to: info)
        return index
    }

    private var lists: Int { nlist ?? (1 << Int((log2(4 * Double(items).squareRoot())).rounded())) }

    private func write(_ dir: String, base: [Float], query: [Float], truth: ANNResults) throws {
        let url = URL(fileURLWithPath: dir, isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try base.withUnsafeBytes { try Data($0).write(to: url.appendingPathComponent("base.f32")) }
        try query.withUnsafeBytes { try Data($0).write(to: url.appendingPathComponent("queries.f32")) }
        try truth.ids.withUnsafeBytes { try Data($0).write(to: url.appendingPathComponent("truth.i64")) }
        let meta: [String: Any] = ["items": items, "dim": dim, "queries": queries, "k": k, "metric": "ip", "nlist": lists, "target": target,
                                   "clusters": clusters ?? max(10, items * 3 / 2000), "noise": Double(noise), "ivf_only": ivfOnly,
                                   "flat_only": flatOnly, "hnsw_m": hnswM, "ef_construction": efConstruction, "seed": seed,
                                   "cache": cache.map { URL(fileURLWithPath: $0).standardizedFileURL.path } ?? NSNull()]
        try JSONSerialization.data(withJSONObject: meta).write(to: url.appendingPathComponent("meta.json"))
    }
}
