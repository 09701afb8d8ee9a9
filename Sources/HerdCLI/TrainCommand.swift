import ArgumentParser
import Foundation
import HerdData
import HerdLayers
import HerdModels
import HerdTensor
import HerdTraining

/// `herd train`: Criteo click logs (fit features, train, export to OUT/model) or feature tables
/// with a model spec by column names (train on W/features/train.herdtable, export to
/// W/models/<name>/<version>).
struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a DLRM, Wide & Deep, DeepFM, DCN-v2 or two-tower model on Criteo click logs or on feature tables, and export it.",
        discussion: """
            Two modes.

            Criteo click logs: herd train --model M --train FILE [--valid FILE] --out DIR. Reads \
            Kaggle/Terabyte TSV or the same 40 columns as CSV (with or without a header). Dense \
            features become log(max(x,0)+1); categoricals are hashed (--max-ind-range) or mapped through a \
            vocabulary fitted on the training file (--freq-limit). Writes OUT/model (the export: \
            manifest.json + weights.safetensors) and OUT/checkpoints.

            Feature tables: herd train --workspace W --model wnd|twotower|dlrm|deepfm|dcn --spec FILE|recsys2021 \
            [--name NAME]. Trains on W/features/train.herdtable (written by herd preprocess), validates on \
            W/features/test.herdtable, and exports to W/models/NAME/<next version> (NAME defaults to the \
            model kind) with the fitted pipeline W/features/pipeline.fitted.json and the columns the model \
            reads; checkpoints go to W/models/NAME/checkpoints. The spec names the columns in BigDL \
            Friesian's words: {"model": "wnd", "labels": […], "wide_base_cols", "wide_cross_cols", \
            "indicator_cols", "embed_cols", "embed_out_dims", "continuous_cols", "hidden_units", \
            "batch_norm", "dropout"} or {"model": "twotower", "labels": […], "user": {"id", "indicator_cols", \
            "embed_cols", "numerical_cols"}, "item": {…}, "hidden_units", "embed_dim", "loss"}; DLRM, DeepFM \
            and DCN read a wnd spec's embed_cols and continuous_cols. --spec recsys2021 is the built-in \
            RecSys 2021 spec (examples/recsys2021/wnd.json or two_tower.json). Cardinalities come from the \
            tables, raised to W/features/sizes.json where it lists a column. Without a workspace, \
            --train X.herdtable [--valid Y.herdtable] --spec S --out DIR works the same (the fitted pipeline \
            is taken from pipeline.fitted.json beside the training table, if present).

            Settings come from defaults, then --config FILE (a JSON object whose keys are these flags' \
            names without dashes, e.g. {"epochs": 2, "batch-size": 4096}), then flags.
            """)

    @Option(help: "Model: dlrm, wnd, deepfm, dcn, or twotower (feature tables only).") var model: ModelKind
    @Option(help: "Training file: Criteo TSV/CSV, or a .herdtable with --spec (default with --workspace: W/features/train.herdtable).") var train: String?
    @Option(help: "Validation file (Criteo file or .herdtable); metrics in the summary are computed on it (default with --workspace: W/features/test.herdtable).") var valid: String?
    @Option(help: "Output directory: OUT/model (export) and OUT/checkpoints (not with --workspace).") var out: String?
    @Option(help: "Workspace directory (feature-table mode): reads W/features, exports to W/models/NAME/<version>.") var workspace: String?
    @Option(help: "Model spec by column names (feature-table mode): a JSON file, or a built-in name (recsys2021).") var spec: String?
    @Option(help: "Model name in the workspace: W/models/NAME (default: the model kind).") var name: String?
    @Option(help: "JSON file of settings (keys = flag names); flags override it.") var config: String?

    @Option(help: "Epochs (default 1).") var epochs: Int?
    @Option(help: "Stop after this many steps in all.") var maxSteps: Int?
    @Option(help: "Rows per step (default 2048).") var batchSize: Int?
    @Option(help: "Learning rate (default: 0.05 for adagrad, 0.001 for adam, 0.1 for sgd).") var lr: Double?
    @Option(help: "Optimizer for dense layers: sgd, adagrad, rowwise_adagrad, adam, ftrl (options as name:key=value). Default adam.") var optimizer: String?
    @Option(help: "Optimizer for embedding tables (default: rowwise_adagrad for adagrad, lazy_adam for adam, else the same).") var sparseOptimizer: String?
    @Option(help: "Optimizer for the W&D wide part (default ftrl).") var wideOptimizer: String?
    @Option(help: "Learning-rate multiplier for the wide part (default 1).") var wideLrScale: Double?
    @Option(help: "Linear learning-rate warm-up steps (default 0).") var warmupSteps: Int?
    @Option(help: "Step where polynomial decay starts (default 0).") var decayStart: Int?
    @Option(help: "Decay steps, 0 = no decay (default 0).") var decaySteps: Int?
    @Option(help: "Seed for initialisation and shuffling (default 0).") var seed: UInt64?
    @Flag(inversion: .prefixedNo, help: "Shuffle rows every epoch (default on).") var shuffle: Bool?
    @Option(help: "Shuffle blocks of N rows, then rows within each block, instead of all rows (for caches larger than memory: reads stay local).") var shuffleBlockRows: Int?

    @Option(help: "Validate every N steps as well as after each epoch (default 0 = per epoch only).") var validateEvery: Int?
    @Option(help: "Checkpoint every N steps as well as after each epoch (default 0 = per epoch only).") var checkpointEvery: Int?
    @Option(help: "Checkpoints kept (default 3).") var keepCheckpoints: Int?
    @Option(help: "Stop after N validations without a better AUC (default 0 = never).") var patience: Int?
    @Flag(help: "Continue from the newest checkpoint in OUT/checkpoints.") var resume = false

    @Option(help: "Reach this validation AUC, retrying from the last checkpoint if short.") var targetAuc: Double?
    @Option(help: "Reach this validation accuracy, retrying from the last checkpoint if short.") var targetAccuracy: Double?
    @Option(help: "Retries (each runs --epochs more epochs) when a target is missed (default 2).") var maxRetries: Int?

    @Option(help: "Hash categoricals modulo N rows per table (DLRM's --max-ind-range) instead of a vocabulary.") var maxIndRange: Int?
    @Option(help: "Vocabulary: values seen fewer times map to the out-of-vocabulary id (default 5).") var freqLimit: Int?
    @Option(help: "What to do with a malformed row: fail (default) or skip and count.") var onError: OnError?
    @Option(help: "Directory for the binary columnar caches (default: beside each data file).") var cacheDir: String?

    @Option(help: "Embedding dimension (default 16).") var embeddingDim: Int?
    @Option(help: "Two-tower on feature tables: items drawn per positive row from W/features/item.herdtable each epoch as label-0 rows (overrides the spec's negatives.per_positive; 0 = none). The table's own label-0 rows are dropped unless the spec says \"table_negatives\": \"keep\".") var negatives: Int?
    @Option(help: "DLRM bottom MLP widths, input excluded (default 512-256-64-16; last = embedding dim).") var bottomMlp: String?
    @Option(help: "DLRM top MLP widths after the interaction (default 512-256-1).") var topMlp: String?
    @Option(help: "DLRM interaction: dot or cat (default dot).") var interaction: String?
    @Option(help: "Deep MLP widths (W&D default 1024-512-256-1, DeepFM 400-400-400-1, DCN 512-256-1).") var deepMlp: String?
    @Option(help: "W&D hashed crosses for the wide part: field pairs like 0:1,2:5 (C1 is field 0).") var crosses: String?
    @Option(help: "W&D buckets per cross (default 10000).") var crossBuckets: Int?
    @Option(help: "DCN cross layers (default 3).") var crossLayers: Int?
    @Option(help: "GEMM precision of the MLPs: fp32 (default) or bf16 (BF16 operands, FP32 accumulation and master weights; native on CPUs with avx512_bf16, emulated elsewhere).") var precision: Precision?

    @Flag(help: "Print one JSON summary object as the last line (progress goes to stderr).") var json = false

    func run() async throws {
        let s = try Settings(file: config)
        try s.rejectUnknownKeys(settingKeys)
        let log = Log(json: json)
        let seedValue = try seed ?? s.uint64("seed") ?? 0
        let tableMode = workspace != nil || spec != nil || (train?.hasSuffix(".herdtable") ?? false)
        let job = tableMode ? try prepareTables(s, log: log, seed: seedValue) : try prepareCriteo(s, log: log, seed: seedValue)
        try runJob(job, s, log: log, seed: seedValue)
    }

    /// Criteo mode: fit the feature state, open the caches, build the model from the flags.
    func prepareCriteo(_ s: Settings, log: Log, seed seedValue: UInt64) throws -> TrainingJob {
        guard let train else { throw ValidationError("--train FILE is required (Criteo click logs), or give --workspace W --spec S to train on feature tables") }
        guard let out else { throw ValidationError("--out DIR is required with Criteo files (the export goes to DIR/model)") }
        if model == .twotower {
            throw ValidationError("--model twotower needs user and item features; Criteo click logs have no such split (train it on feature tables: --workspace W --spec recsys2021)")
        }
        let outURL = try outputDirectory(out)
        let onErr = try onError ?? s.enumValue("on-error") ?? .fail

        // Features.
        let featureConfig: FeatureConfig
        if let n = try maxIndRange ?? s.int("max-ind-range") {
            featureConfig = .hashing(tableSize: n)
        } else {
            featureConfig = .vocabulary(freqLimit: try freqLimit ?? s.int("freq-limit") ?? 5)
        }
        let cache = try cacheDir ?? s.string("cache-dir")
        log.line("fitting features on \(train) …")
        // NOTE: one pass over the training text fits the vocabularies and writes its cache (the
        // same state and cache bytes as `FeatureState.fit` + `open`, which parse it twice).
        let (state, trainData) = try CriteoDataset.fitAndOpen(path: train, config: featureConfig, cacheDirectory: cache, onError: onErr)
        let validData = try valid.map { try CriteoDataset.open(path: $0, state: state, cacheDirectory: cache, onError: onErr) }
        log.line("train \(trainData.rows) rows (\(trainData.skippedRows) skipped)" + (validData.map { ", valid \($0.rows) rows (\($0.skippedRows) skipped)" } ?? "")
                 + ", tables \(state.tableSizes.reduce(0, +)) rows in all")
        let modelConfig = try makeModelConfig(s, tableSizes: state.tableSizes, seed: seedValue)
        return TrainingJob(
            modelConfig: modelConfig, train: trainData, valid: validData, rows: trainData.rows,
            skippedRows: trainData.skippedRows + (validData?.skippedRows ?? 0),
            checkpoints: outURL.appendingPathComponent("checkpoints"), exportURL: outURL.appendingPathComponent("model"),
            transform: .criteo(state), keyColumns: [:], checkpointHint: "\(out)/checkpoints")
    }

    /// Creates `--out` (refusing a file there).
    func outputDirectory(_ out: String) throws -> URL {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw ValidationError("--out \(out): exists and is not a directory")
        }
        let url = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Trains `job` (retrying to a target), exports it and prints the summary.
    func runJob(_ job: TrainingJob, _ s: Settings, log: Log, seed seedValue: UInt64) throws {
        let modelConfig = job.modelConfig
        let m = try modelConfig.build()
        let trainData = job.train, validData = job.valid

        // Trainer.
        var tc = TrainerConfig()
        tc.epochs = try epochs ?? s.int("epochs") ?? 1
        tc.maxSteps = try maxSteps ?? s.int("max-steps")
        tc.batchSize = try batchSize ?? s.int("batch-size") ?? 2048
        tc.shuffleSeed = (try shuffle ?? s.bool("shuffle") ?? true) ? seedValue : nil
        tc.shuffleBlockRows = try shuffleBlockRows ?? s.int("shuffle-block-rows")
        tc.validateEvery = try validateEvery ?? s.int("validate-every") ?? 0
        tc.checkpointEvery = try checkpointEvery ?? s.int("checkpoint-every") ?? 0
        tc.keepCheckpoints = try keepCheckpoints ?? s.int("keep-checkpoints") ?? 3
        tc.patience = try patience ?? s.int("patience") ?? 0
        let dense = try optimizer ?? s.string("optimizer") ?? "adam"
        let denseName = dense.split(separator: ":").first.map(String.init) ?? dense
        let defaultSparse = ["adagrad": "rowwise_adagrad", "adam": "lazy_adam"][denseName] ?? dense
        tc.optimizers = ["dense": dense, "sparse": try sparseOptimizer ?? s.string("sparse-optimizer") ?? defaultSparse,
                         "wide": try wideOptimizer ?? s.string("wide-optimizer") ?? "ftrl"]
        tc.lrScale = ["wide": Float(try wideLrScale ?? s.double("wide-lr-scale") ?? 1)]
        let defaultLR = ["adam": 0.001, "lazy_adam": 0.001, "sgd": 0.1][denseName] ?? 0.05
        tc.schedule = LearningRateSchedule(
            base: Float(try lr ?? s.double("lr") ?? defaultLR), warmupSteps: try warmupSteps ?? s.int("warmup-steps") ?? 0,
            decayStartStep: try decayStart ?? s.int("decay-start") ?? 0, decaySteps: try decaySteps ?? s.int("decay-steps") ?? 0)
        let targetAUC = try targetAuc ?? s.double("target-auc"), targetAcc = try targetAccuracy ?? s.double("target-accuracy")
        let retries = try maxRetries ?? s.int("max-retries") ?? 2
        if (targetAUC != nil || targetAcc != nil) && validData == nil {
            throw ValidationError("--target-auc/--target-accuracy need --valid FILE to measure against")
        }

        let progress = TrainingProgress(log: log, epochs: tc.epochs)
        let trainer = try Trainer(model: m, config: tc, train: trainData, valid: validData,
                                  checkpointDirectory: job.checkpoints,
                                  onEvent: { progress.handle($0) })
        if let tt = m as? TwoTower, let source = trainData as? TwoTowerTrainingSource, tt.itemBias != nil {
            log.line("item bias started at the log popularity of \(source.startItemBias(of: tt)) items among the training positives")
        }
        if resume {
            if let step = try trainer.resume() { log.line("resumed from the checkpoint at step \(step)") } else { log.line("no checkpoint to resume from in \(job.checkpointHint); starting afresh") }
        }
        log.line("\(modelConfig.kind.rawValue): \(String(format: "%.2f", Double(m.trainingFLOPsPerSample) / 1e6)) MFLOP/sample, \(Parallel.threads) workers, batch \(tc.batchSize), \(tc.optimizers["dense"]!) lr \(tc.schedule.base), precision \(m.precision.rawValue)"
                 + (m.precision == .bf16 ? " [\(BF16GEMM.note)]" : ""))

        // NOTE: the summary and the target check need metrics of the final weights; a run that ends
        // mid-epoch (--max-steps) or resumes a finished run has none, or older ones, from the trainer.
        func finish(_ r: TrainResult) -> TrainResult {
            guard let validData, trainer.lastValidationStep != r.state.globalStep || r.validation == nil else { return r }
            var r = r
            r.validation = trainer.evaluate(validData).0
            log.line(String(format: "validation at step %d (end of run): AUC %.4f  logloss %.4f  accuracy %.4f", r.state.globalStep, r.validation!.auc, r.validation!.logloss, r.validation!.accuracy))
            return r
        }
        var result = finish(try trainer.run())
        var attempt = 0
        func met(_ v: BinaryMetrics?) -> Bool {
            guard let v else { return true }
            return (targetAUC.map { v.auc >= $0 } ?? true) && (targetAcc.map { v.accuracy >= $0 } ?? true)
        }
        while !met(result.validation) && attempt < retries {
            attempt += 1
            let v = result.validation!
            log.line(String(format: "target missed (AUC %.4f, accuracy %.4f); retry %d of %d: %d more epoch(s) from the last checkpoint", v.auc, v.accuracy, attempt, retries, tc.epochs))
            _ = try trainer.resume()
            trainer.extend(epochs: tc.epochs)
            result = finish(try trainer.run())
        }

        let exportURL = job.exportURL
        try ModelExport(config: modelConfig, model: m, featureState: job.transform, keyColumns: job.keyColumns)
            .write(to: exportURL, metadata: ["herd_version": Herd.configuration.version])
        log.line("exported \(exportURL.path)")

        var summary: [String: Any] = [
            "model": modelConfig.kind.rawValue, "export": exportURL.path, "epochs": result.state.epoch, "steps": result.state.globalStep,
            "samples_per_s": result.samplesPerSecond, "rows": job.rows, "skipped_rows": job.skippedRows,
            "stopped_early": result.state.stoppedEarly, "retries": attempt, "gemm_precision": m.precision.rawValue,
        ]
        if m.precision == .bf16 { summary["bf16_backend"] = BF16GEMM.backend.rawValue }
        summary.merge(job.summary) { a, _ in a }
        if let v = result.validation {
            summary.merge(metricsDictionary(v)) { a, _ in a }
            summary["valid_rows"] = v.count
        }
        let reached = met(result.validation)
        if targetAUC != nil || targetAcc != nil { summary["target_reached"] = reached }
        if json { print(jsonLine(summary)) } else if let v = result.validation {
            print(String(format: "validation: AUC %.4f  logloss %.4f  accuracy %.4f  precision %.4f  recall %.4f  (%d rows)", v.auc, v.logloss, v.accuracy, v.precision, v.recall, v.count))
            print(String(format: "training: %.0f samples/s over %d steps", result.samplesPerSecond, result.state.globalStep))
        }
        if !reached {
            throw TargetMissed(message: "the target was not reached after \(attempt) \(attempt == 1 ? "retry" : "retries")" + (result.validation.map { String(format: " (AUC %.4f, accuracy %.4f)", $0.auc, $0.accuracy) } ?? ""))
        }
    }

    /// The keys `--config` takes: every option's flag name (`maxIndRange` → `max-ind-range`), except
    /// the inputs and outputs and the flags that only make sense on the command line.
    var settingKeys: Set<String> {
        let names = Mirror(reflecting: self).children.compactMap { $0.label.map { $0.hasPrefix("_") ? String($0.dropFirst()) : $0 } }
        let kebab = names.map { name in
            name.reduce(into: "") { out, c in
                if c.isUppercase { out += "-" + c.lowercased() } else { out.append(c) }
            }
        }
        return Set(kebab).subtracting(["model", "train", "valid", "out", "config", "resume", "json", "workspace", "spec", "name"])
    }

    func makeModelConfig(_ s: Settings, tableSizes: [Int], seed: UInt64, defaultDim: Int = 16) throws -> ModelConfig {
        let dim = try embeddingDim ?? s.int("embedding-dim") ?? defaultDim
        let prec = try precision ?? s.enumValue("precision") ?? .fp32
        switch model {
        case .dlrm:
            var c = DLRMConfig(tableSizes: tableSizes)
            c.embeddingDim = dim
            c.bottomMLP = try widths(bottomMlp ?? s.string("bottom-mlp")) ?? [512, 256, 64, dim]
            c.topMLP = try widths(topMlp ?? s.string("top-mlp")) ?? [512, 256, 1]
            let inter = try interaction ?? s.string("interaction") ?? "dot"
            guard let k = InteractionKind(rawValue: inter) else { throw ValidationError("--interaction must be dot or cat, not '\(inter)'") }
            c.interaction = k
            c.seed = seed
            c.precision = prec
            return .dlrm(c)
        case .wnd:
            var c = WideAndDeepConfig(tableSizes: tableSizes)
            c.embeddingDim = dim
            c.deepMLP = try widths(deepMlp ?? s.string("deep-mlp")) ?? [1024, 512, 256, 1]
            if let x = try crosses ?? s.string("crosses") {
                c.crosses = try x.split(separator: ",").map { pair in
                    let f = pair.split(separator: ":").compactMap { Int($0) }
                    guard f.count >= 2 else { throw ValidationError("--crosses takes field lists like 0:1,2:5, not '\(pair)'") }
                    return f
                }
            }
            c.crossBuckets = try crossBuckets ?? s.int("cross-buckets") ?? 10_000
            c.seed = seed
            c.precision = prec
            return .wnd(c)
        case .deepfm where prec != .fp32, .dcn where prec != .fp32:
            throw ValidationError("--precision \(prec.rawValue) is supported for dlrm and wnd")
        case .deepfm:
            var c = DeepFMConfig(tableSizes: tableSizes)
            c.embeddingDim = dim
            c.deepMLP = try widths(deepMlp ?? s.string("deep-mlp")) ?? c.deepMLP
            c.seed = seed
            return .deepfm(c)
        case .dcn:
            var c = DCNConfig(tableSizes: tableSizes)
            c.embeddingDim = dim
            c.deepMLP = try widths(deepMlp ?? s.string("deep-mlp")) ?? c.deepMLP
            c.crossLayers = try crossLayers ?? s.int("cross-layers") ?? c.crossLayers
            c.seed = seed
            return .dcn(c)
        case .twotower:
            throw ValidationError("--model twotower needs user and item features; Criteo click logs have no such split (train it on a recsys feature table)")
        }
    }

    func widths(_ spec: String?) throws -> [Int]? {
        guard let spec else { return nil }
        let w = spec.split(separator: "-").map { Int($0) }
        guard !w.isEmpty, w.allSatisfy({ ($0 ?? 0) > 0 }) else { throw ValidationError("layer widths are written like 512-256-1, not '\(spec)'") }
        return w.map { $0! }
    }
}

/// What one training run reads and writes, whichever the mode.
struct TrainingJob {
    let modelConfig: ModelConfig
    let train: any BatchSource
    let valid: (any BatchSource)?
    /// Training rows and rows skipped (training + validation), for the summary.
    let rows: Int
    let skippedRows: Int
    let checkpoints: URL
    let exportURL: URL
    let transform: FeatureTransform
    let keyColumns: [String: String]
    /// The checkpoint directory as the user named it, for messages.
    let checkpointHint: String
    /// Extra summary fields (workspace mode: name, version).
    var summary: [String: Any] = [:]
}

/// A missed train-to-target goal: the summary is printed, then the run exits non-zero.
struct TargetMissed: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// The standard metrics as JSON fields.
func metricsDictionary(_ v: BinaryMetrics) -> [String: Any] {
    func num(_ x: Double) -> Any { x.isFinite ? x : NSNull() }
    return ["auc": num(v.auc), "logloss": num(v.logloss), "accuracy": num(v.accuracy), "precision": num(v.precision),
            "recall": num(v.recall), "positive_rate": num(v.positiveRate)]
}

/// Human output: stdout normally, stderr when stdout carries a JSON summary.
struct Log {
    let json: Bool
    func line(_ s: String) {
        if json { FileHandle.standardError.write(Data((s + "\n").utf8)) } else { print(s) }
    }
}

/// Renders trainer events as a progress bar per epoch and validation lines.
final class TrainingProgress: @unchecked Sendable {
    let log: Log
    let epochs: Int
    var bar: ProgressBar?

    init(log: Log, epochs: Int) {
        self.log = log
        self.epochs = epochs
    }

    func handle(_ e: TrainerEvent) {
        switch e {
        case .started(_, _, let resumed):
            if let r = resumed { log.line("continuing at step \(r)") }
        case .step(let epoch, let step, let steps, let loss, let sps):
            if bar == nil || step == 1 {
                log.line("Epoch \(epoch + 1)/\(epochs)")
                bar = ProgressBar(total: steps, label: "", toStandardError: log.json)
            }
            bar?.update(step, [("loss", String(format: "%.4f", loss)), ("samples/s", ProgressBar.rate(sps))])
        case .validated(_, let step, let m, let improved):
            let text = String(format: "validation at step %d: AUC %.4f  logloss %.4f  accuracy %.4f%@", step, m.auc, m.logloss, m.accuracy, improved ? "  (best)" : "")
            if let bar { bar.line(text) } else { log.line(text) }
        case .checkpointed:
            break
        case .epochEnded:
            bar = nil
        case .stoppedEarly(_, let step, let best):
            log.line(String(format: "early stopping at step %d: no better validation AUC than %.4f", step, best))
        }
    }
}
