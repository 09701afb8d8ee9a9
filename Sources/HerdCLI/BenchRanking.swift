import ArgumentParser
import Foundation
import HerdData
import HerdFeatures
import HerdLayers
import HerdModels
import HerdServing
import HerdTensor
import HerdTraining

/// `herd bench ranking --workspace W`: the recommender's ranking stage alone — one user's canK
/// candidates per request, assembled from the workspace's feature store the way `herd serve`
/// does, scored by the ranking export on replicas, one request per worker at a time — with the
/// first layer hoisting the columns equal across candidates (the serving default) and without
/// (the plain path), interleaved. Reports rows/s, the dense-equivalent and the executed FLOP rates.
struct BenchRanking: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ranking",
        abstract: "Ranking-stage rows/s of the workspace's W&D on request-shaped batches (one user, canK candidates): hoisted vs plain first layer (and hoisted with the row cache).",
        discussion: """
            Requests: users drawn from W/embeddings/user.safetensors, canK candidates drawn from the item embeddings' ids, \
            their rows read from the workspace's feature store (herd nearline) and assembled like herd serve's ranking \
            batch. Each worker scores whole requests (micro-batch = canK) on its own replica. FLOPs: dense-equivalent = \
            2 x the MLP's multiply-adds per row as if every input column were multiplied; executed = 2 x the \
            multiply-adds the layers ran (indicator nonzeros, hoisted columns once per request). Also prints, per \
            layer, how many of its outputs are 0 after ReLU and how many output columns are 0 in every row of a request.
            """)

    @Option(help: "Workspace with a W&D export, the feature store (herd nearline) and embeddings (herd predict).") var workspace: String
    @Option(help: "Ranking model name in the workspace (or an export directory).") var model = "wnd"
    @Option(name: .customLong("cank"), help: "Candidates per request.") var canK = 200
    @Option(help: "Requests per timed pass.") var requests = 200
    @Option(help: "Timed passes per variant (interleaved).") var repeats = 3
    @Option(help: "GEMM precision: fp32 or bf16.") var precision: Precision = .fp32
    @Option(help: "Random seed for users and candidates.") var seed: UInt64 = 1
    @Option(help: "Concurrent requests (each on its own replica); default: the worker threads.") var workers = Parallel.threads
    @Option(help: "A third variant, hoisted with the first-layer row cache of this many MB (herd serve --ranking-cache-mb; 0 = no such variant). Its hit rate here is the bench's: the same requests repeat every pass.")
    var rankingCacheMb = RecommenderConfig().rankingCacheBytes >> 20
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func validate() throws {
        guard canK > 1, requests > 0, repeats > 0 else { throw ValidationError("--cank must be > 1, --requests and --repeats positive") }
    }

    func run() throws {
        let w = Workspace(path: workspace)
        let exportURL = try Recommender.rankingExportURL(w, rankingModel: model)
        let store = try makeFeatureStore(spec: try Recommender.nearlineStoreSpec(w))
        guard let userSchema = try store.schema(kind: .user), let itemSchema = try store.schema(kind: .item) else {
            throw ValidationError("the feature store has no user or item rows: run herd nearline --workspace \(workspace)")
        }
        let userIDs = try SafeTensorsFile(url: w.embeddingTable("user")).int64s("ids")
        let itemIDs = try SafeTensorsFile(url: w.embeddingTable("item")).int64s("ids")
        guard !userIDs.isEmpty, itemIDs.count >= canK else { throw ValidationError("need users and at least \(canK) items in \(w.embeddings.path)") }

        let plainExport = try ModelExport.load(from: exportURL, precision: precision)
        let hoistedExport = try ModelExport.load(from: exportURL, precision: precision)
        guard let spec = plainExport.featureState.batchSpec else { throw ValidationError("\(exportURL.path) is not a feature-table export") }
        let input = RankingInput(spec: spec, userSchema: userSchema, itemSchema: itemSchema)
        plainExport.model.freezeForInference(hoistUniformColumns: false)
        hoistedExport.model.freezeForInference(hoistUniformColumns: true)
        let cachedExport = rankingCacheMb > 0 ? try ModelExport.load(from: exportURL, precision: precision) : nil
        cachedExport?.model.freezeForInference(hoistUniformColumns: true)
        let rowCache = cachedExport?.model.setRowCache(bytes: rankingCacheMb << 20)

        var rng = SplitMix64(seed: seed)
        var batches: [Batch] = []
        for _ in 0..<requests {
            let u = userIDs[Int(rng.next() % UInt64(userIDs.count))]
            var items: [Int64] = []
            var seen = Set<Int64>()
            while items.count < canK {
                let i = itemIDs[Int(rng.next() % UInt64(itemIDs.count))]
                if seen.insert(i).inserted { items.append(i) }
            }
            batches.append(try input.batch(userID: u, user: try store.get(kind: .user, ids: [u]), items: try store.get(kind: .item, ids: items)))
        }

        let requestBatches = batches
        let workers = max(1, self.workers)
        func replicas(_ m: any RankingModel) -> [any RankingModel] {
            (0..<workers).map { _ in let r = m.replica(); r.setMode(.inference); return r }
        }
        var variants: [(name: String, replicas: [any RankingModel])] = [("plain", replicas(plainExport.model)), ("hoisted", replicas(hoistedExport.model))]
        if let cachedExport, rowCache != nil { variants.append(("cached", replicas(cachedExport.model))) }

        // Executed multiply-adds per row and a check that both variants agree, on every request.
        var executed: [String: Double] = [:]
        var maxDiff: Float = 0
        var stats: [(zeros: Double, deadColumns: Double)] = []
        for (name, rs) in variants {
            var macs = 0
            for b in batches {
                _ = rs[0].forward(b)
                macs += Self.mlp(rs[0])?.lastForwardMACs ?? 0
            }
            executed[name] = Double(macs) / Double(requests * canK)
        }
        // The cold pass (the executed-MAC pass above) misses every row not seen before.
        let coldStats = rowCache?.stats
        var cachedDiffers = 0
        for b in batches {
            let p = variants[0].replicas[0].forward(b).array, h = variants[1].replicas[0].forward(b).array
            maxDiff = max(maxDiff, zip(p, h).map { abs($0 - $1) }.max() ?? 0)
            if variants.count > 2 {
                // The row cache is exact: the cached logits equal the hoisted ones bit for bit.
                cachedDiffers += zip(variants[2].replicas[0].forward(b).array, h).filter { $0.bitPattern != $1.bitPattern }.count
            }
            if let mlp = Self.mlp(variants[0].replicas[0]) {
                for (k, l) in mlp.activeLayers.dropLast().enumerated() {
                    guard let y = l.lastOutput else { continue }
                    let rows = y.rows, cols = y.columns
                    // A layer feeding a BF16 layer may leave only its rounded output (`omitsFP32Output`).
                    let rounded = l.omitsFP32Output ? l.lastOutputBF16 : nil
                    var zeros = 0, dead = 0
                    for c in 0..<cols {
                        var z = 0
                        for r in 0..<rows where (rounded.map { $0[r * cols + c] } ?? y[r, c]) == 0 { z += 1 }
                        zeros += z
                        if z == rows { dead += 1 }
                    }
                    if stats.count <= k { stats.append((0, 0)) }
                    stats[k].zeros += Double(zeros) / Double(rows * cols) / Double(requests)
                    stats[k].deadColumns += Double(dead) / Double(cols) / Double(requests)
                }
            }
        }

        let warmStats = rowCache?.stats
        let before = MachineLoad.sample()
        var seconds: [String: [Double]] = [:], cpu: [String: [Double]] = [:]
        func processCPU() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
        }
        for _ in 0..<repeats {
            for (name, rs) in variants {
                let c0 = processCPU()
                let t0 = DispatchTime.now().uptimeNanoseconds
                DispatchQueue.concurrentPerform(iterations: workers) { t in
                    var r = t
                    while r < requestBatches.count {
                        _ = rs[t].forward(requestBatches[r])
                        r += workers
                    }
                }
                seconds[name, default: []].append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                cpu[name, default: []].append(processCPU() - c0)
            }
        }
        let others = before.flatMap { b in MachineLoad.sample().map { $0.othersBusy(since: b) } }
        let dense = Double(plainExport.model.forwardMACsPerSample)
        print(MachineLoad.verdict(others))
        print("ranking \(plainExport.config.kind.rawValue) (\(precision.rawValue)) from \(exportURL.path): \(requests) requests x canK \(canK), "
              + "\(workers) workers, best of \(repeats) interleaved passes; max |Δlogit| hoisted vs plain \(maxDiff)")
        print(String(format: "dense-equivalent %.3f MFLOP/row; executed: plain %.3f, hoisted %.3f MFLOP/row",
                     2 * dense / 1e6, 2 * executed["plain"]! / 1e6, 2 * executed["hoisted"]! / 1e6))
        for (k, s) in stats.enumerated() {
            print(String(format: "layer %d output: %.1f%% zeros, %.1f%% of columns 0 in every row of a request", k, 100 * s.zeros, 100 * s.deadColumns))
        }
        var cacheOut: [String: Any] = [:]
        if let rowCache, let coldStats, let warmStats {
            let s = rowCache.stats
            let timedHits = s.hits - warmStats.hits, timedMisses = s.misses - warmStats.misses
            print(String(format: "row cache %d MB: cold pass %.1f%% hits; timed passes %.1f%% hits (%d hits, %d misses); %d entries, %.1f MB; cached logits differing from hoisted: %d",
                         rankingCacheMb, 100 * coldStats.hitRate, 100 * Double(timedHits) / Double(max(1, timedHits + timedMisses)), timedHits, timedMisses,
                         s.entries, Double(s.bytes) / 1048576, cachedDiffers))
            cacheOut = ["mb": rankingCacheMb, "cold_hit_rate": coldStats.hitRate, "timed_hits": timedHits, "timed_misses": timedMisses,
                        "entries": s.entries, "bytes": s.bytes, "differing_logits": cachedDiffers]
        }
        var out: [String: Any] = ["model": plainExport.config.kind.rawValue, "precision": precision.rawValue, "cank": canK, "requests": requests,
                                  "workers": workers, "dense_mflop_per_row": 2 * dense / 1e6, "max_abs_logit_diff": Double(maxDiff),
                                  "others_busy": others ?? -1]
        for (name, _) in variants {
            let best = seconds[name]!.min()!, bestCPU = cpu[name]!.min()!
            let rows = Double(requests * canK) / best
            let ex = executed[name]!
            // NOTE: CPU time per request is the figure that survives a busy machine (wall time does not).
            print(String(format: "%-8@ %8.0f rows/s  %6.3f ms/request/worker  dense-equivalent %6.1f GFLOP/s  executed %6.1f GFLOP/s  |  CPU %6.3f ms/request (best), per CPU-second: dense-eq. %6.1f, executed %6.1f GFLOP",
                         name as NSString, rows, best * 1e3 * Double(workers) / Double(requests), rows * 2 * dense / 1e9, rows * 2 * ex / 1e9,
                         bestCPU * 1e3 / Double(requests), Double(requests * canK) * 2 * dense / bestCPU / 1e9, Double(requests * canK) * 2 * ex / bestCPU / 1e9))
            out[name] = ["rows_per_s": rows, "seconds": seconds[name]!, "cpu_seconds": cpu[name]!, "executed_mflop_per_row": 2 * ex / 1e6,
                         "cpu_ms_per_request": bestCPU * 1e3 / Double(requests),
                         "dense_equivalent_gflops": rows * 2 * dense / 1e9, "executed_gflops": rows * 2 * ex / 1e9]
        }
        if !cacheOut.isEmpty { out["row_cache"] = cacheOut }
        if json { print(jsonLine(out)) }
    }

    static func mlp(_ m: any RankingModel) -> MLP? {
        switch m {
        case let w as WideAndDeep: return w.deepArch
        case let d as DeepFM: return d.deepArch
        case let d as DCN: return d.deepArch
        default: return nil
        }
    }
}
