import Foundation
import HerdData
import HerdLayers
import HerdModels
import HerdTensor

/// A few replicas of one ranking model for concurrent inference.
///
/// NOTE: `RankingModel.forward` is not re-entrant: it keeps its activations (and returns its logits
/// buffer) in the instance for `backward`, so two threads in one model's forward overwrite each
/// other. `replica()` gives instances over the same weights with their own buffers; each call
/// borrows one, so concurrent requests never share one and no weights are copied or reloaded.
/// The pool grows when all are busy and keeps at most `maxIdle` for reuse.
public final class ModelPool: @unchecked Sendable {
    public let model: any RankingModel
    public let maxIdle: Int
    private let lock = NSLock()
    private var idle: [any RankingModel]
    private var created: Int

    /// `prepared` replicas are made up front (at least one). The model is frozen for inference
    /// first (`RankingModel.freezeForInference`: BF16 weights rounded once, shared by replicas),
    /// so it must not be trained afterwards.
    ///
    /// `rowCacheBytes`: the budget of the first layer's row cache (`RankingModel.setRowCache`,
    /// shared by the replicas; 0: none).
    /// `dedupesRows`: the deep MLP runs a batch's repeated rows once (`RankingModel.setDedupesRows`;
    /// logits within float rounding of ranking every row).
    public init(model: any RankingModel, prepared: Int = Parallel.threads, maxIdle: Int? = nil,
                rowCacheBytes: Int = ModelPool.defaultRowCacheBytes, dedupesRows: Bool = true) {
        model.freezeForInference()
        model.setRowCache(bytes: rowCacheBytes)
        model.setDedupesRows(dedupesRows)
        self.model = model
        let n = max(1, prepared)
        self.maxIdle = max(n, maxIdle ?? 2 * n)
        idle = (0..<n).map { _ in
            let r = model.replica()
            r.setMode(.inference)
            return r
        }
        created = n
    }

    /// The default row-cache budget (`init`'s `rowCacheBytes`).
    ///
    /// NOTE: on the serving workspace the recommend load (random users, canK 50 or 200) touches
    /// only ≈ 50–165 distinct first-layer rows (≈ 0.7 MB; recall returns popular items, many with
    /// equal feature rows): every budget ≥ 1 MB hits 100 % after warm-up. Random candidates (`herd
    /// bench ranking`) need ≈ 4.3 KB per distinct row (O = 1024). 64 MB holds ≈ 15k rows; memory
    /// is taken only as rows are cached.
    public static let defaultRowCacheBytes = 64 << 20

    /// Hits, misses and size of the first layer's row cache (nil: none).
    public var rowCacheStats: RowContributionCache.Stats? { model.rowCache?.stats }

    /// Rows ranked and the MLP multiply–adds executed for them (`RankingModel.lastForwardMLPMACs`)
    /// by `forward` since the pool was made: executed FLOPs per row = 2 · macs / rows.
    public struct Work: Sendable, Equatable {
        public var rows = 0
        public var macs = 0
        public init(rows: Int = 0, macs: Int = 0) {
            self.rows = rows
            self.macs = macs
        }
    }

    public var work: Work { lock.withLock { counted } }
    private var counted = Work()

    /// `m.forward(batch)` (`m` borrowed from this pool), counted in `work`.
    public func forward(_ m: any RankingModel, _ batch: Batch) -> Tensor {
        let logits = m.forward(batch)
        let macs = m.lastForwardMLPMACs
        lock.withLock {
            counted.rows += batch.count
            counted.macs += macs
        }
        return logits
    }

    /// Replicas made so far (for tests and logs).
    public var replicasCreated: Int { lock.withLock { created } }

    /// Runs `body` with a replica no other thread holds meanwhile.
    public func withReplica<T>(_ body: (any RankingModel) throws -> T) rethrows -> T {
        let borrowed: any RankingModel = lock.withLock {
            if let r = idle.popLast() { return r }
            created += 1
            let r = model.replica()
            r.setMode(.inference)
            return r
        }
        defer { lock.withLock { if idle.count < maxIdle { idle.append(borrowed) } } }
        return try body(borrowed)
    }

    /// Probabilities `[B]` of `batch`: sigmoid of the logits, in micro-batches of `microBatch`
    /// rows run concurrently (each on its own replica).
    public func probabilities(_ batch: Batch, microBatch: Int) -> [Float] {
        let n = batch.count, step = max(1, microBatch)
        var probs = [Float](repeating: 0, count: n)
        guard n > 0 else { return probs }
        let chunks = (n + step - 1) / step
        probs.withUnsafeMutableBufferPointer { buffer in
            let out = UncheckedSendable(buffer.baseAddress!)
            Parallel.forEach(chunks) { c in
                let range = (c * step)..<min(n, (c + 1) * step)
                let part = chunks == 1 ? batch : batch.slice(range)
                withReplica { m in
                    let logits = forward(m, part)
                    Kernels.sigmoid(logits.data, into: out.value + range.lowerBound, count: range.count)
                }
            }
        }
        return probs
    }
}
