import HerdData
import HerdLayers
import HerdModels
import HerdTensor

/// Runs a model data-parallel across the cores of one process: a batch is split into one shard
/// per worker, each worker runs a replica (same weights, own activations and gradients), and the
/// gradients are summed into the primary model. The single-shard path *is* the plain model.
///
/// NOTE: shards are fixed by row ranges and reduced in a fixed order, so a step is deterministic
/// for a given worker count — `--resume` relies on it.
public final class DataParallel: @unchecked Sendable {
    /// The primary model; its gradients hold the sum over shards after `forwardBackward`.
    public let model: any RankingModel
    let replicas: [any RankingModel]
    /// Rows below which a batch is not split.
    public var minRowsPerShard = 64

    public init(model: any RankingModel, workers: Int = Parallel.threads) {
        self.model = model
        replicas = [model] + (1..<max(workers, 1)).map { _ in model.replica() }
    }

    public var workers: Int { replicas.count }

    private func shards(_ rows: Int) -> [Range<Int>] {
        Parallel.ranges(rows, parts: max(1, min(replicas.count, rows / minRowsPerShard)))
    }

    /// Forward + BCE + backward over `batch` (which must have labels). The loss is the mean over
    /// the batch; returns the summed loss and the probabilities `[B]`. Gradients are left summed in
    /// `model` (dense) and merged per table in its collections (sparse). `step` seeds dropout masks.
    public func forwardBackward(_ batch: Batch, step: Int = 0) -> (lossSum: Double, probabilities: [Float]) {
        precondition(batch.labels.count == batch.count, "training batch without labels")
        let parts = shards(batch.count)
        let scale = 1 / Float(batch.count)
        var losses = [Double](repeating: 0, count: parts.count)
        var probs = [Float](repeating: 0, count: batch.count)
        losses.withUnsafeMutableBufferPointer { lossBuffer in
            probs.withUnsafeMutableBufferPointer { probBuffer in
                let lossBox = UncheckedSendable(lossBuffer.baseAddress!), probBox = UncheckedSendable(probBuffer.baseAddress!)
                Parallel.forEach(parts.count) { i in
                    let r = parts[i]
                    let shard = parts.count == 1 ? batch : batch.slice(r)
                    let m = replicas[i]
                    m.zeroGrad()
                    m.setMode(.training(step: step, shard: i))
                    if let custom = m as? any CustomLossModel, let (loss, p) = custom.customTrainStep(shard, gradScale: scale) {
                        lossBox.value[i] = loss
                        (probBox.value + r.lowerBound).update(from: p, count: r.count)
                        return
                    }
                    let logits = m.forward(shard)
                    let dz = Tensor(shape: [r.count, 1])
                    let loss = shard.labels.withUnsafeBufferPointer { labels in
                        Kernels.sigmoidBCE(logits: logits.data, labels: labels.baseAddress!, count: r.count,
                                           probabilities: probBox.value + r.lowerBound, gradient: dz.data, gradScale: scale)
                    }
                    lossBox.value[i] = loss
                    m.backward(dz)
                }
            }
        }
        reduceGradients(shards: parts.count)
        return (losses.reduce(0, +), probs)
    }

    /// Sums dense gradients of replicas `1..<shards` into the primary and merges sparse ones.
    private func reduceGradients(shards: Int) {
        guard shards > 1 else { return }
        let primaryGroups = model.groups
        let others = replicas[1..<shards].map(\.groups)
        // Work items: every dense parameter and every table of every collection whose shards
        // left row gradients. Collections that kept bag gradients on every shard just collect
        // them (in shard order); the optimizer step consumes them per table.
        var items: [(g: Int, p: Int?, c: Int, t: Int)] = []
        var mergedCollections: [(g: Int, c: Int)] = []
        for (gi, g) in primaryGroups.enumerated() {
            for pi in g.parameters.indices { items.append((gi, pi, 0, 0)) }
            for (ci, c) in g.collections.enumerated() {
                let shardCollections = others.map { $0[gi].collections[ci] }
                if c.keepsBagGradients && shardCollections.allSatisfy(\.keepsBagGradients) {
                    c.appendBagGradients(of: shardCollections)
                } else {
                    mergedCollections.append((gi, ci))
                    for ti in c.tables.indices { items.append((gi, nil, ci, ti)) }
                }
            }
        }
        var merged = [SparseRowGradient?](repeating: nil, count: items.count)
        merged.withUnsafeMutableBufferPointer { buffer in
            let out = UncheckedSendable(buffer.baseAddress!)
            Parallel.forEach(items.count) { k in
                let it = items[k]
                if let pi = it.p {
                    let dst = primaryGroups[it.g].parameters[pi].grad
                    for o in others { Kernels.axpy(1, o[it.g].parameters[pi].grad.data, dst.data, count: dst.count) }
                } else {
                    let parts = [primaryGroups[it.g].collections[it.c].gradient(table: it.t)]
                        + others.map { $0[it.g].collections[it.c].gradient(table: it.t) }
                    out.value[k] = Kernels.mergeSparse(parts)
                }
            }
        }
        // Items list each merged collection's tables consecutively, in order.
        var k = 0
        for (gi, g) in primaryGroups.enumerated() {
            k += g.parameters.count
            for (ci, c) in g.collections.enumerated() where mergedCollections.contains(where: { $0 == (gi, ci) }) {
                c.setGradients(merged[k..<(k + c.tables.count)].map { $0! })
                k += c.tables.count
            }
        }
    }

    /// Probabilities `[B]` for `batch`, shards run in parallel.
    public func predict(_ batch: Batch) -> [Float] {
        let parts = shards(batch.count)
        var probs = [Float](repeating: 0, count: batch.count)
        probs.withUnsafeMutableBufferPointer { buffer in
            let probBox = UncheckedSendable(buffer.baseAddress!)
            Parallel.forEach(parts.count) { i in
                let r = parts[i]
                replicas[i].setMode(.inference)
                let logits = replicas[i].forward(parts.count == 1 ? batch : batch.slice(r))
                Kernels.sigmoid(logits.data, into: probBox.value + r.lowerBound, count: r.count)
            }
        }
        return probs
    }
}

/// One optimizer per parameter group (`dense`, `sparse`, `wide`), applied in parallel over
/// parameters and tables.
public final class OptimizerSet: @unchecked Sendable {
    public let byGroup: [String: any Optimizer]
    /// Learning-rate multiplier per group (e.g. the wide part's FTRL rate).
    public let lrScale: [String: Float]

    public init(byGroup: [String: any Optimizer], lrScale: [String: Float] = [:]) {
        self.byGroup = byGroup
        self.lrScale = lrScale
    }

    /// Applies one step to every group of `model` at base rate `lr`.
    public func step(_ model: any RankingModel, lr: Float) {
        let groups = model.groups
        for g in groups { optimizer(for: g.name).beginStep() }
        var items: [(g: Int, p: Int?, c: Int, t: Int)] = []
        for (gi, g) in groups.enumerated() {
            for pi in g.parameters.indices { items.append((gi, pi, 0, 0)) }
            for (ci, c) in g.collections.enumerated() { for ti in c.tables.indices { items.append((gi, nil, ci, ti)) } }
        }
        Parallel.forEach(items.count) { k in
            let it = items[k]
            let g = groups[it.g]
            let opt = self.optimizer(for: g.name)
            let rate = lr * (self.lrScale[g.name] ?? 1)
            if let pi = it.p {
                opt.update(g.parameters[pi], lr: rate)
            } else {
                opt.update(collection: g.collections[it.c], table: it.t, lr: rate)
            }
        }
    }

    func optimizer(for group: String) -> any Optimizer {
        guard let o = byGroup[group] ?? byGroup["dense"] else { preconditionFailure("no optimizer for group \(group)") }
        return o
    }

    /// Every optimizer's state, names prefixed with `optimizer.<group>.`.
    public var state: [(String, Tensor)] {
        byGroup.sorted { $0.key < $1.key }.flatMap { g, o in o.state.map { ("optimizer.\(g).\($0.0)", $0.1) } }
    }

    public func load(state: [String: Tensor]) throws {
        for (g, o) in byGroup {
            let prefix = "optimizer.\(g)."
            var mine: [String: Tensor] = [:]
            for (k, v) in state where k.hasPrefix(prefix) { mine[String(k.dropFirst(prefix.count))] = v }
            try o.load(state: mine)
        }
    }
}
