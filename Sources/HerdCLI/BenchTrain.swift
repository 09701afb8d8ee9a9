import ArgumentParser
import Foundation
import HerdData
import HerdLayers
import HerdModels
import HerdTensor
import HerdTraining

struct BenchTrain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training and inference samples/s of DLRM or W&D on synthetic batches (no I/O), against the measured GEMM roofline.")

    @Option(help: "Model: dlrm, wnd, deepfm, dcn or twotower.") var model: ModelKind = .dlrm
    @Option(help: "Rows per batch.") var batchSize = 2048
    @Option(help: "Rows of each of the 26 embedding tables.") var tableSize = 100_000
    @Option(help: "Timed training steps (after warm-up).") var steps = 30
    @Option(help: "Warm-up steps (not timed).") var warmup = 5
    @Option(help: "Optimizer spec for the dense layers (sgd, adagrad, adam, …).") var optimizer = "sgd"
    @Option(help: "Measure training only, inference only, or both (default).") var phase: Phase = .both
    @Option(help: "GEMM precision of the MLPs: fp32 or bf16.") var precision: Precision = .fp32
    @Option(help: "With bf16: layers narrower than this (input or output) stay FP32.") var bf16MinWidth = MLP.defaultBF16MinWidth
    @Flag(help: "Print one JSON object as the last line.") var json = false

    enum Phase: String, ExpressibleByArgument { case train, infer, both }

    func run() async throws {
        let tables = Array(repeating: tableSize, count: 26)
        var dc = DLRMConfig(tableSizes: tables), wc = WideAndDeepConfig(tableSizes: tables)
        dc.precision = precision
        wc.precision = precision
        dc.bf16MinWidth = bf16MinWidth
        wc.bf16MinWidth = bf16MinWidth
        if precision != .fp32 && model != .dlrm && model != .wnd {
            throw ValidationError("--precision \(precision.rawValue) is supported for dlrm and wnd")
        }
        let m: any RankingModel
        switch model {
        case .dlrm: m = try DLRM(config: dc)
        case .wnd: m = try WideAndDeep(config: wc)
        case .deepfm: m = try DeepFM(config: DeepFMConfig(tableSizes: tables))
        case .dcn: m = try DCN(config: DCNConfig(tableSizes: tables))
        case .twotower:
            // Criteo-shaped two-tower: fields 0–12 for the user tower, 13–25 and the dense columns for the item tower.
            m = try TwoTower(config: TwoTowerConfig(tableSizes: tables, user: TowerConfig(sparseFeatures: Array(0..<13)),
                                                    item: TowerConfig(sparseFeatures: Array(13..<26), denseFeatures: Array(0..<13))))
        }
        let batches = (0..<4).map { syntheticBatch(rows: batchSize, dense: 13, tableSizes: tables, seed: UInt64($0)) }
        let dp = DataParallel(model: m)
        let sparseSpec = optimizer == "adam" ? "lazy_adam" : optimizer
        let opts = OptimizerSet(byGroup: ["dense": try makeOptimizer(spec: optimizer), "sparse": try makeOptimizer(spec: sparseSpec), "wide": try makeOptimizer(spec: "ftrl")])
        let before = MachineLoad.sample()
        let trainSteps = phase == .infer ? 0 : steps, inferSteps = phase == .train ? 0 : steps * 2
        for i in 0..<(trainSteps > 0 ? warmup : 0) { _ = dp.forwardBackward(batches[i % 4]); opts.step(m, lr: 0.01) }
        let t0 = DispatchTime.now().uptimeNanoseconds
        for i in 0..<trainSteps { _ = dp.forwardBackward(batches[i % 4]); opts.step(m, lr: 0.01) }
        let trainSeconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        for i in 0..<(inferSteps > 0 ? warmup : 0) { _ = dp.predict(batches[i % 4]) }
        let t1 = DispatchTime.now().uptimeNanoseconds
        for i in 0..<inferSteps { _ = dp.predict(batches[i % 4]) }
        let inferSeconds = Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9
        let others = before.flatMap { b in MachineLoad.sample().map { $0.othersBusy(since: b) } }
        let roof = HERDBenchEnv.skipRoofline ? 1 : measureGemmRoofline()
        let trainSps = trainSteps > 0 ? Double(trainSteps * batchSize) / trainSeconds : 0
        let inferSps = inferSteps > 0 ? Double(inferSteps * batchSize) / inferSeconds : 0
        let trainFlops = Double(m.trainingFLOPsPerSample), inferFlops = Double(2 * m.forwardMACsPerSample)
        print(MachineLoad.verdict(others))
        print("model \(model.rawValue), batch \(batchSize), \(Parallel.threads) workers, optimizer \(optimizer), tables 26×\(tableSize), precision \(precision.rawValue)"
              + (precision == .bf16 ? " (layers ≥ \(bf16MinWidth) wide) [\(BF16GEMM.note)]" : "") + " [FP32 GEMM: \(SGEMM.note)]")
        let roofText = { (flops: Double) in HERDBenchEnv.skipRoofline ? "" : String(format: " = %.0f%% of the %.1f GFLOP/s GEMM roofline", 100 * flops / roof, roof / 1e9) }
        if trainSteps > 0 {
            print(String(format: "train: %.0f samples/s  (%.2f MFLOP/sample, %.1f GFLOP/s", trainSps, trainFlops / 1e6, trainSps * trainFlops / 1e9) + roofText(trainSps * trainFlops) + ")")
        }
        if inferSteps > 0 {
            print(String(format: "infer: %.0f samples/s  (%.2f MFLOP/sample, %.1f GFLOP/s", inferSps, inferFlops / 1e6, inferSps * inferFlops / 1e9) + roofText(inferSps * inferFlops) + ")")
        }
        if json {
            print(jsonLine([
                "model": model.rawValue, "gemm_precision": precision.rawValue, "sgemm_backend": SGEMM.backend.rawValue, "bf16_backend": precision == .bf16 ? BF16GEMM.backend.rawValue : "",
                "bf16_min_width": bf16MinWidth, "batch_size": batchSize, "workers": Parallel.threads, "optimizer": optimizer,
                "train_samples_per_s": trainSps, "infer_samples_per_s": inferSps,
                "train_flops_per_sample": trainFlops, "infer_flops_per_sample": inferFlops,
                "roofline_gflops": roof / 1e9, "train_roofline_fraction": trainSps * trainFlops / roof,
                "infer_roofline_fraction": inferSps * inferFlops / roof, "others_busy": others ?? -1,
            ]))
        }
    }
}

extension ModelKind: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}

/// `HERD_BENCH_NO_ROOFLINE=1` skips the roofline measurement (for profiling the model alone).
enum HERDBenchEnv {
    static let skipRoofline = ProcessInfo.processInfo.environment["HERD_BENCH_NO_ROOFLINE"] == "1"
}
