import Foundation
import HerdData
import HerdModels
import HerdTensor

/// How to train: epochs, batches, validation, checkpoints, early stopping, optimizers.
public struct TrainerConfig: Codable, Sendable, Equatable {
    public var epochs = 1
    /// Stop after this many steps in all (nil: run every epoch).
    public var maxSteps: Int?
    public var batchSize = 2048
    /// Shuffle seed (nil: file order).
    public var shuffleSeed: UInt64? = 0
    /// Shuffle blocks of this many rows, then rows within a block (nil: all rows). Keeps reads of a
    /// cache larger than memory local.
    public var shuffleBlockRows: Int?
    /// Validate every N steps (0: only at the end of each epoch).
    public var validateEvery = 0
    /// Checkpoint every N steps (0: only at the end of each epoch), when a checkpoint directory is set.
    public var checkpointEvery = 0
    /// Checkpoints kept.
    public var keepCheckpoints = 3
    /// Stop after this many validations without a better AUC (0: never).
    public var patience = 0
    public var schedule = LearningRateSchedule(base: 0.1)
    /// Optimizer spec per parameter group: `dense`, `sparse`, `wide` (see `makeOptimizer`).
    public var optimizers: [String: String] = ["dense": "sgd", "sparse": "sgd", "wide": "ftrl"]
    /// Learning-rate multiplier per group.
    public var lrScale: [String: Float] = [:]
    /// Rows per batch when evaluating.
    public var evalBatchSize = 8192

    public init() {}
}

/// Where a run stands; saved in every checkpoint so a killed run continues exactly.
public struct TrainerState: Codable, Sendable, Equatable {
    public var epoch = 0
    public var stepInEpoch = 0
    public var globalStep = 0
    public var bestAUC: Double?
    public var badRounds = 0
    public var samplesSeen = 0
    public var trainingSeconds = 0.0
    public var stoppedEarly = false
    /// What fixes the sequence of batches and steps; a resumed run must use the same (nil in
    /// checkpoints written before it was recorded).
    public var schedule: StepSchedule?
    public init() {}
}

/// The settings that fix which rows every step sees and how a step is split across workers: a
/// run resumed with different ones would match neither the old nor the new setting.
public struct StepSchedule: Codable, Sendable, Equatable {
    public var batchSize: Int
    public var shuffleSeed: UInt64?
    public var shuffleBlockRows: Int?
    public var workers: Int
    public var trainRows: Int

    /// The first difference from `other`, in words, or nil.
    func difference(from other: StepSchedule) -> String? {
        if batchSize != other.batchSize { return "batch size \(other.batchSize) (checkpoint) vs \(batchSize) (now)" }
        if shuffleSeed != other.shuffleSeed { return "shuffle seed \(other.shuffleSeed.map(String.init) ?? "off") (checkpoint) vs \(shuffleSeed.map(String.init) ?? "off") (now)" }
        if shuffleBlockRows != other.shuffleBlockRows { return "shuffle block rows \(other.shuffleBlockRows.map(String.init) ?? "none") (checkpoint) vs \(shuffleBlockRows.map(String.init) ?? "none") (now)" }
        if workers != other.workers { return "\(other.workers) workers (checkpoint) vs \(workers) (now; set HERD_THREADS=\(other.workers))" }
        if trainRows != other.trainRows { return "\(other.trainRows) training rows (checkpoint) vs \(trainRows) (now)" }
        return nil
    }
}

/// What a trainer reports while it runs.
public enum TrainerEvent: Sendable {
    case started(epochs: Int, stepsPerEpoch: Int, resumedAtStep: Int?)
    /// After every step: the running mean loss of the epoch so far and recent samples/s.
    case step(epoch: Int, step: Int, stepsPerEpoch: Int, meanLoss: Double, samplesPerSecond: Double)
    case validated(epoch: Int, globalStep: Int, metrics: BinaryMetrics, improved: Bool)
    case checkpointed(globalStep: Int)
    case epochEnded(epoch: Int, meanLoss: Double, samplesPerSecond: Double)
    case stoppedEarly(epoch: Int, globalStep: Int, bestAUC: Double)
}

/// The outcome of `Trainer.run`.
public struct TrainResult: Sendable {
    public var state: TrainerState
    /// Metrics of the last validation (nil without a validation set).
    public var validation: BinaryMetrics?
    /// Training throughput over compute time (excludes validation and checkpoints).
    public var samplesPerSecond: Double
}

/// Errors a run reports to the user.
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Mini-batch training with data-parallel steps, validation, early stopping and checkpoints.
///
/// The loop is the reference single-process trainer; with `workers == 1` it is the plain
/// sequential algorithm.
public final class Trainer: @unchecked Sendable {
    public let model: any RankingModel
    public var config: TrainerConfig
    public let train: any BatchSource
    public let valid: (any BatchSource)?
    public let parallel: DataParallel
    public let optimizers: OptimizerSet
    public let checkpoints: CheckpointStore?
    public private(set) var state = TrainerState()
    public private(set) var lastValidation: BinaryMetrics?
    /// The global step `lastValidation` was measured at.
    public private(set) var lastValidationStep: Int?
    private let onEvent: @Sendable (TrainerEvent) -> Void

    public init(model: any RankingModel, config: TrainerConfig, train: any BatchSource, valid: (any BatchSource)?,
                checkpointDirectory: URL? = nil, workers: Int = Parallel.threads,
                onEvent: @escaping @Sendable (TrainerEvent) -> Void = { _ in }) throws {
        guard config.batchSize > 0 else { throw TrainingError("batch size must be positive, got \(config.batchSize)") }
        guard config.epochs > 0 else { throw TrainingError("epochs must be positive, got \(config.epochs)") }
        if let m = config.maxSteps, m <= 0 { throw TrainingError("max steps must be positive, got \(m)") }
        guard train.rows > 0 else { throw TrainingError("the training data has no rows") }
        guard config.keepCheckpoints >= 1 else { throw TrainingError("checkpoints kept must be at least 1, got \(config.keepCheckpoints)") }
        self.model = model
        self.config = config
        self.train = train
        self.valid = valid
        self.onEvent = onEvent
        parallel = DataParallel(model: model, workers: workers)
        var opts: [String: any Optimizer] = [:]
        for g in model.groups {
            let spec = config.optimizers[g.name] ?? config.optimizers["dense"] ?? "sgd"
            do { opts[g.name] = try makeOptimizer(spec: spec) } catch { throw TrainingError("\(g.name) optimizer: \(error)") }
        }
        optimizers = OptimizerSet(byGroup: opts, lrScale: config.lrScale)
        checkpoints = checkpointDirectory.map { CheckpointStore(directory: $0, keepLast: config.keepCheckpoints) }
    }

    /// Loads the newest valid checkpoint, if any; returns its step.
    @discardableResult
    public func resume() throws -> Int? {
        guard let store = checkpoints, let ck = try store.latest() else { return nil }
        let s: TrainerState
        do { s = try JSONDecoder().decode(TrainerState.self, from: ck.state) } catch {
            throw TrainingError("checkpoint at step \(ck.step) has an unreadable state.json: \(error)")
        }
        if let saved = s.schedule, let diff = currentSchedule.difference(from: saved) {
            throw TrainingError("cannot resume from the checkpoint at step \(ck.step): it was trained with \(diff); resume with the same settings or start afresh in another --out directory")
        }
        do { try model.loadWeights(ck.tensors) } catch { throw TrainingError("checkpoint at step \(ck.step) does not fit this model: \(error)") }
        try optimizers.load(state: ck.tensors)
        state = s
        return ck.step
    }

    /// The step schedule of this trainer's configuration and data.
    var currentSchedule: StepSchedule {
        StepSchedule(batchSize: config.batchSize, shuffleSeed: config.shuffleSeed, shuffleBlockRows: config.shuffleBlockRows,
                     workers: parallel.workers, trainRows: train.rows)
    }

    /// Writes a checkpoint of weights, optimizer slots and state now.
    public func saveCheckpoint() throws {
        guard let store = checkpoints else { return }
        var saved = state
        saved.schedule = currentSchedule
        let data = try JSONEncoder().encode(saved)
        try store.save(step: state.globalStep, tensors: model.namedWeights + optimizers.state, state: data)
        onEvent(.checkpointed(globalStep: state.globalStep))
    }

    private var finished: Bool {
        state.stoppedEarly || state.epoch >= config.epochs || (config.maxSteps.map { state.globalStep >= $0 } ?? false)
    }

    /// Trains from the current state until the configured epochs (or steps) are done or early
    /// stopping triggers.
    public func run() throws -> TrainResult {
        let size = config.batchSize
        let steps = train.batchCount(size: size)
        onEvent(.started(epochs: config.epochs, stepsPerEpoch: steps, resumedAtStep: state.globalStep > 0 ? state.globalStep : nil))
        while !finished {
            var lossSum = 0.0, rowsInEpoch = 0
            let epochStart = state.trainingSeconds, epochSamples = state.samplesSeen
            while state.stepInEpoch < steps && !finished {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let batch = train.trainingBatch(at: state.stepInEpoch, size: size, seed: config.shuffleSeed, epoch: state.epoch, blockRows: config.shuffleBlockRows)
                let (loss, _) = parallel.forwardBackward(batch, step: state.globalStep)
                // NOTE: the gradients too: a diverged layer can leave the loss finite (a ReLU that maps
                // NaN to 0, as oneDNN's fused one does, hides it from the layers above).
                guard loss.isFinite, model.denseGradientsAreFinite else {
                    let what = loss.isFinite ? "a gradient became non-finite (loss \(loss))" : "the loss became \(loss)"
                    throw TrainingError("\(what) at step \(state.globalStep) (epoch \(state.epoch + 1)); lower the learning rate (--lr) or check the input for extreme values")
                }
                optimizers.step(model, lr: config.schedule.rate(at: state.globalStep))
                let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                state.trainingSeconds += dt
                state.samplesSeen += batch.count
                state.stepInEpoch += 1
                state.globalStep += 1
                lossSum += loss
                rowsInEpoch += batch.count
                let sps = Double(state.samplesSeen - epochSamples) / max(state.trainingSeconds - epochStart, 1e-9)
                onEvent(.step(epoch: state.epoch, step: state.stepInEpoch, stepsPerEpoch: steps, meanLoss: lossSum / Double(rowsInEpoch), samplesPerSecond: sps))
                if config.validateEvery > 0 && state.globalStep % config.validateEvery == 0 && state.stepInEpoch < steps { validate() }
                if config.checkpointEvery > 0 && state.globalStep % config.checkpointEvery == 0 { try saveCheckpoint() }
            }
            if state.stepInEpoch >= steps {
                let sps = Double(state.samplesSeen - epochSamples) / max(state.trainingSeconds - epochStart, 1e-9)
                onEvent(.epochEnded(epoch: state.epoch, meanLoss: rowsInEpoch > 0 ? lossSum / Double(rowsInEpoch) : .nan, samplesPerSecond: sps))
                state.epoch += 1
                state.stepInEpoch = 0
                validate()
                if checkpoints != nil { try saveCheckpoint() }
            }
        }
        return TrainResult(state: state, validation: lastValidation,
                           samplesPerSecond: Double(state.samplesSeen) / max(state.trainingSeconds, 1e-9))
    }

    /// Validates (when there is a validation set), updating the best AUC and early-stopping state.
    private func validate() {
        guard let valid else { return }
        let (m, _) = evaluate(valid)
        lastValidation = m
        lastValidationStep = state.globalStep
        let improved = state.bestAUC.map { m.auc > $0 } ?? true
        if improved {
            state.bestAUC = m.auc
            state.badRounds = 0
        } else {
            state.badRounds += 1
        }
        onEvent(.validated(epoch: state.epoch, globalStep: state.globalStep, metrics: m, improved: improved))
        if config.patience > 0 && state.badRounds >= config.patience {
            state.stoppedEarly = true
            onEvent(.stoppedEarly(epoch: state.epoch, globalStep: state.globalStep, bestAUC: state.bestAUC ?? .nan))
        }
    }

    /// Metrics and probabilities of the model on `data`, in file order.
    public func evaluate(_ data: any BatchSource) -> (BinaryMetrics, [Float]) {
        Evaluation.run(parallel, data, batchSize: config.evalBatchSize)
    }

    /// Adds `epochs` more epochs to the plan (train-to-target retries).
    public func extend(epochs: Int) {
        config.epochs = state.epoch + epochs
        state.stoppedEarly = false
        state.badRounds = 0
    }
}

/// Batch-wise prediction over a data set, with metrics when it has labels.
public enum Evaluation {
    public static func predict(_ parallel: DataParallel, _ data: any BatchSource, batchSize: Int) -> (probabilities: [Float], labels: [Float]) {
        var p: [Float] = [], y: [Float] = []
        p.reserveCapacity(data.rows)
        for i in 0..<data.batchCount(size: batchSize) {
            let b = data.batch(range: (i * batchSize)..<min((i + 1) * batchSize, data.rows))
            p += parallel.predict(b)
            y += b.labels
        }
        return (p, y)
    }

    public static func run(_ parallel: DataParallel, _ data: any BatchSource, batchSize: Int) -> (BinaryMetrics, [Float]) {
        let (p, y) = predict(parallel, data, batchSize: batchSize)
        return (BinaryMetrics(probabilities: p, labels: y), p)
    }
}
