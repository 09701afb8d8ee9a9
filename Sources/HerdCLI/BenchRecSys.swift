import ArgumentParser
import Foundation
import HerdData
import HerdFeatures
import HerdModels
import HerdTensor
import HerdTraining

/// `herd bench recsys --table T.herdtable --model wnd|twotower`: training and inference samples/s
/// of Friesian's RecSys 2021 Wide & Deep or the two-tower model on a table preprocessed with
/// `examples/recsys2021/pipeline.json` — the same specs as `benchmarks/peers/torch_recsys.py` and
/// the library test `RecSysWorkflowTrainingTests`, at the full sizes.
struct BenchRecSys: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recsys",
        abstract: "Training and inference samples/s of Friesian's RecSys W&D or the two-tower model on a preprocessed RecSys 2021 table.",
        discussion: """
            wnd (examples/recsys2021/wnd.json's columns): the two user ids, hashtags and present_domains embedded; \
            present_media, tweet_type, language, engagee_follows_engager and the four follower/following bins as \
            one-hot indicators; len_hashtags/domains/links dense; deep MLP 1024-512-256-1 with batch norm and dropout \
            0.1; wide part over the two is_verified columns and the present_media x language cross. Optimizers adam \
            (dense), lazy_adam (embeddings), ftrl (wide).
            twotower (examples/recsys2021/two_tower.json's columns): user tower (enaging user id embedded; its \
            is_verified and follower/following bins as indicators), item tower (author id, hashtags, present_links, \
            present_domains embedded; is_verified, present_media, tweet_type, language, the author's bins as \
            indicators; the three lengths dense), MLPs 1024-512-128, L2-normalised, logit <u, v>/0.2, BCE. \
            Optimizers adam and lazy_adam.
            Label: any engagement. Batches are consecutive rows of the table (cycling); slicing is timed with the step. \
            The table -> Batch conversion is timed separately (batch_s).
            """)

    enum Model: String, ExpressibleByArgument, CaseIterable { case wnd, twotower }

    @Option(help: "Preprocessed table (table.herdtable of `herd preprocess --pipeline examples/recsys2021/pipeline.json`).")
    var table: String
    @Option(help: "Model: wnd (Friesian's RecSys Wide & Deep) or twotower.") var model: Model = .wnd
    @Option(help: "Rows per batch.") var batchSize = 1024
    @Option(help: "Timed steps (after warm-up), for training and for inference each.") var steps = 50
    @Option(help: "Warm-up steps (not timed).") var warmup = 10
    @Option(help: "Embedding dimension.") var embeddingDim = 16
    @Option(help: "Learning rate of every optimizer (Adam, lazy Adam, FTRL's alpha).") var lr: Float = 0.001
    @Option(help: "GEMM precision of the MLPs: fp32 or bf16 (first layers with indicator columns stay FP32).") var precision: Precision = .fp32
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func validate() throws {
        guard batchSize > 0, steps > 0, warmup >= 0, embeddingDim > 0, lr > 0 else {
            throw ValidationError("--batch-size, --steps, --embedding-dim and --lr must be positive, --warmup >= 0")
        }
    }

    func run() throws {
        let t0 = DispatchTime.now().uptimeNanoseconds
        let spec = model == .wnd ? RecSysBenchSpec.wideAndDeep : RecSysBenchSpec.twoTower
        let data = try TableFile.read(path: table, columns: spec.columns)
        let t1 = DispatchTime.now().uptimeNanoseconds
        let batchSpec = try BatchSpec.infer(sparse: spec.sparse, dense: spec.dense, labels: spec.labels, tables: [data])
        let full = try data.batch(batchSpec)
        let t2 = DispatchTime.now().uptimeNanoseconds
        guard full.count >= batchSize else {
            throw ValidationError("\(table): \(full.count) rows, fewer than one batch of \(batchSize)")
        }
        let m = try spec.makeModel(batchSpec.sparse.map(\.cardinality), embeddingDim, precision)
        let dp = DataParallel(model: m)
        let opts = OptimizerSet(byGroup: ["dense": try makeOptimizer(spec: "adam"), "sparse": try makeOptimizer(spec: "lazy_adam"),
                                          "wide": try makeOptimizer(spec: "ftrl")])
        let batches = full.count / batchSize
        func rows(_ i: Int) -> Range<Int> { (i % batches) * batchSize..<((i % batches) + 1) * batchSize }

        let before = MachineLoad.sample()
        var losses: [Double] = []
        for i in 0..<warmup {
            _ = dp.forwardBackward(full.slice(rows(i)), step: i)
            opts.step(m, lr: lr)
        }
        let t3 = DispatchTime.now().uptimeNanoseconds
        for i in warmup..<(warmup + steps) {
            let (loss, _) = dp.forwardBackward(full.slice(rows(i)), step: i)
            opts.step(m, lr: lr)
            losses.append(loss / Double(batchSize))
        }
        let t4 = DispatchTime.now().uptimeNanoseconds
        for i in 0..<warmup { _ = dp.predict(full.slice(rows(i))) }
        let t5 = DispatchTime.now().uptimeNanoseconds
        for i in warmup..<(warmup + steps) { _ = dp.predict(full.slice(rows(i))) }
        let t6 = DispatchTime.now().uptimeNanoseconds
        let others = before.flatMap { b in MachineLoad.sample().map { $0.othersBusy(since: b) } }

        let seconds = { (a: UInt64, b: UInt64) in Double(b - a) / 1e9 }
        let trainSps = Double(steps * batchSize) / seconds(t3, t4)
        let inferSps = Double(steps * batchSize) / seconds(t5, t6)
        let finalLoss = losses.suffix(10).reduce(0, +) / Double(min(10, losses.count))
        print(MachineLoad.verdict(others))
        print("model \(model.rawValue) (recsys), precision \(precision.rawValue), batch \(batchSize), \(Parallel.threads) workers, \(full.count) rows, embedding \(embeddingDim), "
              + "tables \(batchSpec.sparse.map(\.cardinality))")
        print(String(format: "read %.2f s, table -> batch %.2f s", seconds(t0, t1), seconds(t1, t2)))
        print(String(format: "train: %.0f samples/s (final loss %.4f)", trainSps, finalLoss))
        print(String(format: "infer: %.0f samples/s", inferSps))
        if json {
            print(jsonLine([
                "model": model.rawValue, "gemm_precision": precision.rawValue, "batch_size": batchSize, "workers": Parallel.threads, "rows": full.count,
                "train_samples_per_s": trainSps, "infer_samples_per_s": inferSps, "final_loss": finalLoss,
                "read_s": seconds(t0, t1), "batch_s": seconds(t1, t2), "embedding_dim": embeddingDim, "lr": Double(lr),
                "table_sizes": batchSpec.sparse.map(\.cardinality), "others_busy": others ?? -1,
            ]))
        }
    }
}

/// The columns and model of one RecSys benchmark (see `BenchRecSys`'s discussion).
struct RecSysBenchSpec: Sendable {
    var sparse: [String]
    var dense: [String]
    var labels = ["reply", "retweet", "retweet_with_comment", "like"]
    var makeModel: @Sendable ([Int], Int, Precision) throws -> any RankingModel

    var columns: [String] { sparse + dense + labels }

    /// Friesian's RecSys W&D (examples/recsys2021/wnd.json's columns; embeddings of dim `dim`).
    static let wideAndDeep = RecSysBenchSpec(
        sparse: ["engaged_with_user_id", "enaging_user_id", "hashtags", "present_domains",  // embedded
                 "present_media", "tweet_type", "language", "engagee_follows_engager",
                 "engaged_with_user_follower_count", "engaged_with_user_following_count",
                 "enaging_user_follower_count", "enaging_user_following_count",  // indicators 4–11
                 "engaged_with_user_is_verified", "enaging_user_is_verified", "present_media_language"],  // wide 12–14
        dense: ["len_hashtags", "len_domains", "len_links"],
        makeModel: { sizes, dim, precision in
            var cfg = WideAndDeepConfig(tableSizes: sizes)
            cfg.precision = precision
            cfg.denseFeatures = 3
            cfg.embeddingDims = [dim, dim, dim, dim] + Array(repeating: 0, count: 11)
            cfg.indicators = Array(4...11)
            cfg.wideFeatures = [12, 13, 14]
            cfg.deepMLP = [1024, 512, 256, 1]
            cfg.batchNorm = true
            cfg.dropout = 0.1
            cfg.pooling = .mean
            return try WideAndDeep(config: cfg)
        })

    /// The two-tower model (examples/recsys2021/two_tower.json's columns).
    static let twoTower = RecSysBenchSpec(
        sparse: ["enaging_user_id",  // user: embedded
                 "enaging_user_is_verified", "enaging_user_follower_count", "enaging_user_following_count",  // user: indicators
                 "engaged_with_user_id", "hashtags", "present_links", "present_domains",  // item: embedded
                 "engaged_with_user_is_verified", "present_media", "tweet_type", "language",
                 "engaged_with_user_follower_count", "engaged_with_user_following_count"],  // item: indicators
        dense: ["len_hashtags", "len_domains", "len_links"],
        makeModel: { sizes, dim, precision in
            var cfg = TwoTowerConfig(tableSizes: sizes,
                                     user: TowerConfig(sparseFeatures: [0], indicators: [1, 2, 3], mlp: [1024, 512, 128]),
                                     item: TowerConfig(sparseFeatures: [4, 5, 6, 7], denseFeatures: [0, 1, 2], indicators: Array(8...13),
                                                       mlp: [1024, 512, 128]))
            cfg.embeddingDim = dim
            cfg.loss = .bce
            cfg.precision = precision
            return try TwoTower(config: cfg)
        })
}
