import Foundation
import HerdData
import HerdLayers
import HerdTensor

/// One tower's inputs and MLP.
public struct TowerConfig: Codable, Sendable, Equatable {
    /// Sparse features of the batch this tower embeds.
    public var sparseFeatures: [Int]
    /// Dense columns of the batch this tower reads.
    public var denseFeatures: [Int] = []
    /// Sparse features fed as one-hot indicators (must also be listed in `indicatorSizes`).
    public var indicators: [Int] = []
    /// MLP widths after the input; the last is the embedding size of the tower.
    public var mlp: [Int] = [1024, 512, 128]

    public init(sparseFeatures: [Int], denseFeatures: [Int] = [], indicators: [Int] = [], mlp: [Int] = [1024, 512, 128]) {
        self.sparseFeatures = sparseFeatures
        self.denseFeatures = denseFeatures
        self.indicators = indicators
        self.mlp = mlp
    }
}

extension TowerConfig {
    /// The sparse features this tower reads (embedded or as indicators), ascending, each once.
    public var inputs: [Int] { Array(Set(sparseFeatures + indicators)).sorted() }
}

/// The user or the item side of a two-tower model.
public enum TowerSide: String, Sendable, CaseIterable {
    case user, item
}

/// How a two-tower model is trained.
public enum TwoTowerLoss: String, Codable, Sendable {
    /// Binary cross-entropy on `⟨u, v⟩ / τ` per labelled row (Friesian's two-tower).
    case bce
    /// In-batch negatives: for the positive rows of a shard, softmax cross-entropy of each user
    /// against every item of those rows, the row's own item being the target (sampled softmax).
    /// With `TwoTowerConfig.logQColumn`, each item's logit is lowered by the log of its sampling
    /// probability (logQ correction, Yi et al. 2019), so popular items are not over-penalised.
    case inBatchSoftmax = "in_batch_softmax"
}

/// Two-tower retrieval model's configuration (Friesian's: 16-dim embeddings, towers
/// 1024-512-128, L2-normalised outputs, dot product).
public struct TwoTowerConfig: Codable, Sendable, Equatable {
    /// Rows of each sparse feature's table (all features of the batch, used or not).
    public var tableSizes: [Int]
    public var embeddingDim: Int = 16
    public var user: TowerConfig
    public var item: TowerConfig
    /// Temperature: the logit is `⟨u, v⟩ / temperature` (u, v unit vectors).
    public var temperature: Float = 0.2
    public var loss: TwoTowerLoss = .bce
    /// In-batch softmax only: the dense column of training batches holding `log q` of the row's
    /// item (its probability of being sampled as an in-batch item, e.g. its share of the training
    /// positives); the logit of user i against item j becomes `⟨u_i, v_j⟩/τ − log q_j`. Not a tower
    /// input: only training batches carry it. Nil: no correction.
    public var logQColumn: Int?
    /// The sparse feature (one of the item tower's inputs, normally the item id) keying a learned
    /// per-item bias `b_j` added to every logit: `⟨u, v_j⟩/τ + b_j`. Unit vectors cannot express
    /// popularity; with the logQ-corrected softmax the bias absorbs it (the corrected logit is
    /// `⟨u, v_j⟩/τ + b_j − log q_j`, so `b_j` learns the item's marginal), and it survives into
    /// retrieval through the widened embeddings of `TwoTower.embed(_:_:)`. Nil: no bias.
    public var itemBiasFeature: Int?
    public var seed: UInt64 = 0
    /// GEMM precision of the towers' MLPs (`bf16`: BF16 operands, FP32 accumulation and master
    /// weights; a first layer with indicator columns and layers narrower than `bf16MinWidth` stay FP32).
    public var precision: Precision = .fp32
    public var bf16MinWidth: Int = MLP.defaultBF16MinWidth

    public init(tableSizes: [Int], user: TowerConfig, item: TowerConfig) {
        self.tableSizes = tableSizes
        self.user = user
        self.item = item
    }

    enum CodingKeys: String, CodingKey {
        case tableSizes, embeddingDim, user, item, temperature, loss, logQColumn, itemBiasFeature, seed, precision, bf16MinWidth
    }

    // NOTE: `precision` and `bf16MinWidth` may be absent (exports written before they existed are FP32).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tableSizes = try c.decode([Int].self, forKey: .tableSizes)
        embeddingDim = try c.decode(Int.self, forKey: .embeddingDim)
        user = try c.decode(TowerConfig.self, forKey: .user)
        item = try c.decode(TowerConfig.self, forKey: .item)
        temperature = try c.decode(Float.self, forKey: .temperature)
        loss = try c.decode(TwoTowerLoss.self, forKey: .loss)
        logQColumn = try c.decodeIfPresent(Int.self, forKey: .logQColumn)
        itemBiasFeature = try c.decodeIfPresent(Int.self, forKey: .itemBiasFeature)
        seed = try c.decode(UInt64.self, forKey: .seed)
        precision = try c.decodeIfPresent(Precision.self, forKey: .precision) ?? .fp32
        bf16MinWidth = try c.decodeIfPresent(Int.self, forKey: .bf16MinWidth) ?? MLP.defaultBF16MinWidth
    }

    public func validate() throws {
        let fs = tableSizes.count
        for t in [user, item] {
            guard let last = t.mlp.last, last > 0, t.mlp.allSatisfy({ $0 > 0 }) else { throw LayerSpecError("a tower's MLP widths must be positive, got \(t.mlp)") }
            for f in t.sparseFeatures + t.indicators where !(0..<fs).contains(f) { throw LayerSpecError("tower feature \(f) is outside 0..<\(fs)") }
            guard !t.sparseFeatures.isEmpty || !t.denseFeatures.isEmpty || !t.indicators.isEmpty else { throw LayerSpecError("a tower has no input features") }
        }
        guard user.mlp.last == item.mlp.last else { throw LayerSpecError("user and item towers must end in the same size, got \(user.mlp.last!) and \(item.mlp.last!)") }
        guard temperature > 0 else { throw LayerSpecError("temperature must be positive") }
        if let c = logQColumn {
            guard loss == .inBatchSoftmax else { throw LayerSpecError("the logQ correction applies to the in_batch_softmax loss only") }
            guard c >= 0, !(user.denseFeatures + item.denseFeatures).contains(c) else { throw LayerSpecError("logQ column \(c) must be a dense column no tower reads") }
        }
        if let f = itemBiasFeature, !item.inputs.contains(f) {
            throw LayerSpecError("the item bias feature \(f) must be one of the item tower's sparse inputs \(item.inputs)")
        }
    }
}

/// One tower: embeddings of its sparse features, indicators, its dense columns → MLP → L2 norm.
///
/// ```
/// sparse ids ─ embeddings [B, Fs·D] ┐
/// indicators [B, Σ C] ──────────────┼─ input [B, I] ─ MLP ─ h [B, E] ─ h/‖h‖ ─ z [B, E]
/// dense columns [B, Fd] ────────────┘
/// ```
public final class Tower: @unchecked Sendable {
    public let config: TowerConfig
    public let embeddings: EmbeddingBagCollection?
    public let indicators: IndicatorColumns
    public let mlp: MLP
    private var input: Tensor?
    /// Unit vectors of the rows the MLP ran on (the distinct rows when deduplicated).
    private var normalized: Tensor?
    /// The batch's unit vectors `[B, E]` gathered from `normalized` when rows were deduplicated.
    private var expanded: Tensor?
    /// Row `s` of the last batch → its row in `normalized`; nil: every row ran (no repeats).
    private var rowMap: [Int]?
    private var compactGrad: Tensor?
    var normalizedOutput: Tensor? { rowMap == nil ? normalized : expanded }
    private var norms: [Float] = []
    private var inputGrad: Tensor?
    /// Run the MLP once per distinct input row of a batch (rows whose features this tower reads
    /// are all equal share one evaluation; their output gradients are summed in backward).
    /// Exact: the same outputs and gradients up to float summation order.
    public var deduplicatesRows = true

    init(name: String, config: TowerConfig, tableSizes: [Int], dim: Int, precision: Precision = .fp32,
         bf16MinWidth: Int = MLP.defaultBF16MinWidth, rng: inout SplitMix64) throws {
        self.config = config
        var tables: [any EmbeddingTable] = []
        for f in config.sparseFeatures {
            tables.append(try makeEmbeddingTable(spec: "dense", name: "\(name).sparse.\(f)", rows: tableSizes[f], dimension: dim, rng: &rng))
        }
        embeddings = tables.isEmpty ? nil : EmbeddingBagCollection(tables: tables, pooling: .mean)
        indicators = IndicatorColumns(features: config.indicators, cardinalities: config.indicators.map { tableSizes[$0] })
        let width = (embeddings?.width ?? 0) + indicators.width + config.denseFeatures.count
        mlp = MLP(name: "\(name).mlp", sizes: [width] + config.mlp, lastActivation: .none, precision: precision, rng: &rng,
                  bf16MinWidth: bf16MinWidth, firstLayerFP32: indicators.width > 0)
        if indicators.width > 0 {
            let start = embeddings?.width ?? 0
            mlp.layers[0].indicatorColumns = start..<(start + indicators.width)  // multiplied sparsely
        }
    }

    init(sharing o: Tower) {
        config = o.config
        embeddings = o.embeddings.map { EmbeddingBagCollection(sharing: $0) }
        indicators = o.indicators
        mlp = MLP(sharing: o.mlp)
        deduplicatesRows = o.deduplicatesRows
    }

    /// A tower over `o`'s weights whose inputs are the tower's own features only: sparse feature
    /// `k` of its batches is `o.config.inputs.sparse[k]`, dense column `k` is
    /// `o.config.denseFeatures[k]`.
    init(alone o: Tower) {
        let sparse = o.config.inputs
        let local = Dictionary(uniqueKeysWithValues: sparse.enumerated().map { ($1, $0) })
        config = TowerConfig(sparseFeatures: o.config.sparseFeatures.map { local[$0]! },
                             denseFeatures: Array(o.config.denseFeatures.indices),
                             indicators: o.config.indicators.map { local[$0]! }, mlp: o.config.mlp)
        embeddings = o.embeddings.map { EmbeddingBagCollection(sharing: $0) }
        indicators = IndicatorColumns(features: config.indicators, cardinalities: o.indicators.cardinalities)
        mlp = MLP(sharing: o.mlp)
        deduplicatesRows = o.deduplicatesRows
    }

    public var width: Int { mlp.inputs }
    public var outputs: Int { mlp.outputs }

    /// `batch` → unit vectors `[B, E]` (owned by the tower).
    ///
    /// NOTE: a batch repeats users (and items): the same user's rows have the same user-tower
    /// input, so the tower runs on the distinct rows only (`deduplicatesRows`) and gathers.
    public func forward(_ batch: Batch) -> Tensor {
        guard deduplicatesRows, let groups = distinctRows(batch) else {
            rowMap = nil
            return forwardRows(batch)
        }
        let zc = forwardRows(batch.gather(rows: groups.distinct))
        let b = batch.count, e = zc.columns
        let z = Tensor.ensure(expanded, shape: [b, e])
        expanded = z
        for s in 0..<b { (z.data + s * e).update(from: zc.data + groups.map[s] * e, count: e) }
        rowMap = groups.map
        return z
    }

    /// The tower on every row of `batch`: unit vectors `[B, E]` in `normalized`.
    private func forwardRows(_ batch: Batch) -> Tensor {
        let b = batch.count, w = width
        let x = Tensor.ensure(input, shape: [b, w])
        input = x
        let ew = embeddings?.width ?? 0
        embeddings?.forward(batch.sparse.select(features: config.sparseFeatures), out: x.data, outStride: w, outOffset: 0)
        if indicators.width > 0 { indicators.forward(batch.sparse, out: x.data, outStride: w, outOffset: ew) }
        let fd = batch.dense.columns, base = ew + indicators.width
        for s in 0..<b {
            for (k, c) in config.denseFeatures.enumerated() { x.data[s * w + base + k] = batch.dense.data[s * fd + c] }
        }
        let h = mlp.forward(x)
        let e = h.columns
        let z = Tensor.ensure(normalized, shape: [b, e])
        normalized = z
        if norms.count < b { norms = [Float](repeating: 0, count: b) }
        for s in 0..<b {
            let n = max(Kernels.dot(h.data + s * e, h.data + s * e, count: e).squareRoot(), 1e-12)
            norms[s] = n
            for k in 0..<e { z.data[s * e + k] = h.data[s * e + k] / n }
        }
        return z
    }

    /// Backward from `dz [B, E]` through the normalisation, MLP and embeddings.
    public func backward(_ dz: Tensor) {
        guard let z = normalized else { preconditionFailure("Tower.backward before forward") }
        let e = z.columns
        var dz = dz
        if let map = rowMap {
            // Sum the gradients of the rows that shared one evaluation.
            precondition(dz.rows == map.count, "Tower.backward: \(dz.rows) gradient rows for a batch of \(map.count)")
            let g = Tensor.ensure(compactGrad, shape: [z.rows, e])
            compactGrad = g
            g.fill(0)
            for s in 0..<map.count { Kernels.axpy(1, dz.data + s * e, g.data + map[s] * e, count: e) }
            dz = g
        }
        let b = dz.rows
        let dh = Tensor.ensure(inputGrad, shape: [b, e])
        inputGrad = dh
        // d(h/‖h‖) = (dz − z·⟨z, dz⟩) / ‖h‖
        for s in 0..<b {
            let zs = z.data + s * e, gs = dz.data + s * e
            let p = Kernels.dot(zs, gs, count: e)
            for k in 0..<e { dh.data[s * e + k] = (gs[k] - zs[k] * p) / norms[s] }
        }
        let dx = mlp.backward(dh, needInputGradient: embeddings != nil)
        if let embeddings, let dx { embeddings.backward(grad: dx.data, gradStride: width, gradOffset: 0) }
    }
}

/// Two-tower retrieval model: `logit = ⟨u(user features), v(item features)⟩ / τ (+ b_item)` with
/// unit vectors `u`, `v` and, with `TwoTowerConfig.itemBiasFeature`, a learned per-item bias `b`
/// (an `[items, 1]` embedding table keyed by that feature, zero at start).
///
/// The embeddings that feed recall (`embed(_:_:)`, written by `herd predict`) are `u`, `v` `[B, E]`
/// without a bias, and widened to `[B, E + 1]` with one: users `[u, 1]`, items `[v, τ·b]`, so the
/// plain inner product an ANN index computes is `⟨u, v⟩ + τ·b = τ · logit` — the model's ranking
/// of items for a user, popularity included.
public final class TwoTower: RankingModel, @unchecked Sendable {
    public let config: TwoTowerConfig
    public let userTower: Tower
    public let itemTower: Tower
    /// The per-item bias table `[tableSizes[itemBiasFeature], 1]` (nil without a bias).
    public let itemBias: EmbeddingBagCollection?
    private var biasValues: Tensor?
    private var dBias: Tensor?
    public var kind: ModelKind { .twotower }
    public var precision: Precision { config.precision }
    private var logits: Tensor?
    private var dU: Tensor?
    private var dV: Tensor?

    public init(config: TwoTowerConfig) throws {
        try config.validate()
        self.config = config
        var rng = SplitMix64(seed: config.seed)
        userTower = try Tower(name: "user_tower", config: config.user, tableSizes: config.tableSizes, dim: config.embeddingDim,
                              precision: config.precision, bf16MinWidth: config.bf16MinWidth, rng: &rng)
        itemTower = try Tower(name: "item_tower", config: config.item, tableSizes: config.tableSizes, dim: config.embeddingDim,
                              precision: config.precision, bf16MinWidth: config.bf16MinWidth, rng: &rng)
        if let f = config.itemBiasFeature {
            // NOTE: drawn after the towers and then zeroed, so the towers' initial weights do not
            // depend on whether the model has a bias.
            let table = DenseEmbeddingTable(name: "item_bias.\(f)", rows: config.tableSizes[f], dimension: 1, rng: &rng)
            table.weight.fill(0)
            itemBias = EmbeddingBagCollection(tables: [table], pooling: .mean)
        } else {
            itemBias = nil
        }
    }

    private init(sharing o: TwoTower) {
        config = o.config
        userTower = Tower(sharing: o.userTower)
        itemTower = Tower(sharing: o.itemTower)
        itemBias = o.itemBias.map { EmbeddingBagCollection(sharing: $0) }
    }

    /// Width of the embeddings `embed(_:_:)` returns: the towers' size, plus 1 with an item bias.
    public var retrievalDimension: Int { userTower.outputs + (itemBias == nil ? 0 : 1) }

    /// The item bias `[B]` of a full batch's rows (the bias feature read at its model index), zero
    /// without a bias; owned by the model.
    private func biases(_ batch: Batch) -> Tensor {
        let b = batch.count
        let out = Tensor.ensure(biasValues, shape: [b, 1])
        biasValues = out
        if let itemBias, let f = config.itemBiasFeature {
            itemBias.forward(batch.sparse.select(features: [f]), out: out.data, outStride: 1, outOffset: 0)
        } else {
            out.fill(0)
        }
        return out
    }

    /// Backward into the bias table from `d logit / d b` per row.
    private func backwardBias(_ grad: UnsafePointer<Float>) {
        itemBias?.backward(grad: grad, gradStride: 1, gradOffset: 0)
    }

    public func replica() -> any RankingModel { TwoTower(sharing: self) }
    public func setMode(_ mode: ForwardMode) {}

    public var groups: [ParameterGroup] {
        [ParameterGroup(name: "dense", parameters: userTower.mlp.parameters + itemTower.mlp.parameters),
         ParameterGroup(name: "sparse", collections: [userTower.embeddings, itemTower.embeddings, itemBias].compactMap { $0 })]
    }

    public var namedWeights: [(String, Tensor)] {
        (userTower.mlp.parameters + itemTower.mlp.parameters).map { ($0.name, $0.value) }
            + [userTower.embeddings, itemTower.embeddings, itemBias].compactMap { $0 }.flatMap { $0.tables.map { ("\($0.name).weight", $0.weight) } }
    }

    public var forwardMACsPerSample: Int { userTower.mlp.macsPerSample + itemTower.mlp.macsPerSample + userTower.outputs }

    /// User embeddings `[B, E]` (unit vectors) of a batch's user features.
    public func userEmbeddings(_ batch: Batch) -> Tensor { userTower.forward(batch) }
    /// Item embeddings `[B, E]` (unit vectors) of a batch's item features.
    public func itemEmbeddings(_ batch: Batch) -> Tensor { itemTower.forward(batch) }

    /// The tower of `side`.
    public func tower(_ side: TowerSide) -> Tower { side == .user ? userTower : itemTower }

    /// The features a batch for `embed(_:_:)` carries: sparse feature `k` is the model's sparse
    /// feature `sparse[k]`, dense column `k` the model's dense column `dense[k]` (a user or item
    /// table holds only these columns, not the other tower's).
    public func inputs(of side: TowerSide) -> (sparse: [Int], dense: [Int]) {
        let c = side == .user ? config.user : config.item
        return (c.inputs, c.denseFeatures)
    }

    /// Retrieval embeddings `[B, retrievalDimension]` of one side from a batch holding only that
    /// tower's features, laid out as `inputs(of: side)` says; a new array, independent of the
    /// model's buffers. Without an item bias: the unit vectors `u` or `v`. With one: users
    /// `[u, 1]`, items `[v, τ·b]`, so `⟨user row, item row⟩ = τ · logit` (see the type's comment).
    ///
    /// NOTE: a tower over the same weights with its feature indices remapped, so users and items
    /// are embedded from their own tables (no dummy columns for the other side); safe to call from
    /// several threads (each call has its own buffers).
    public func embed(_ side: TowerSide, _ batch: Batch) -> Tensor {
        let t = Tower(alone: tower(side))
        let z = t.forward(batch)
        let b = z.rows, e = z.columns, w = retrievalDimension
        let out = Tensor(shape: [b, w])
        for r in 0..<b { (out.data + r * w).update(from: z.data + r * e, count: e) }
        guard let itemBias, let f = config.itemBiasFeature else { return out }
        if side == .user {
            for r in 0..<b { out.data[r * w + e] = 1 }
        } else {
            let bias = Tensor(shape: [b, 1])
            // The bias feature's index among the item tower's own inputs (validated in the config).
            let local = config.item.inputs.firstIndex(of: f)!
            EmbeddingBagCollection(sharing: itemBias).forward(batch.sparse.select(features: [local]), out: bias.data, outStride: 1, outOffset: 0)
            for r in 0..<b { out.data[r * w + e] = config.temperature * bias[r] }
        }
        return out
    }

    public func forward(_ batch: Batch) -> Tensor {
        let u = userTower.forward(batch), v = itemTower.forward(batch)
        let b = batch.count, e = u.columns
        let bias = biases(batch)
        let out = Tensor.ensure(logits, shape: [b, 1])
        logits = out
        for s in 0..<b { out[s] = Kernels.dot(u.data + s * e, v.data + s * e, count: e) / config.temperature + bias[s] }
        return out
    }

    public func backward(_ dLogits: Tensor) {
        // Recompute nothing: the towers keep their outputs; read them back through forward's buffers.
        let u = userTower.lastOutput, v = itemTower.lastOutput
        let b = dLogits.rows, e = u.columns
        let du = Tensor.ensure(dU, shape: [b, e]), dv = Tensor.ensure(dV, shape: [b, e])
        dU = du
        dV = dv
        for s in 0..<b {
            let g = dLogits[s] / config.temperature
            for k in 0..<e {
                du.data[s * e + k] = g * v.data[s * e + k]
                dv.data[s * e + k] = g * u.data[s * e + k]
            }
        }
        userTower.backward(du)
        itemTower.backward(dv)
        backwardBias(dLogits.data)  // ∂logit/∂b = 1
    }
}

extension Tower {

    /// The unit vectors of the last forward.
    var lastOutput: Tensor {
        guard let z = normalizedOutput else { preconditionFailure("Tower output read before forward") }
        return z
    }
}

/// A model that trains with a loss other than per-row binary cross-entropy on its logits.
public protocol CustomLossModel: RankingModel {
    /// Forward, loss and backward for one shard (`batch` with labels); gradients are those of the
    /// loss summed over rows times `gradScale`. Returns the summed loss and per-row probabilities
    /// (for training metrics), or nil to train with the standard BCE path.
    func customTrainStep(_ batch: Batch, gradScale: Float) -> (lossSum: Double, probabilities: [Float])?
}

extension TwoTower: CustomLossModel {
    public func customTrainStep(_ batch: Batch, gradScale: Float) -> (lossSum: Double, probabilities: [Float])? {
        guard config.loss == .inBatchSoftmax else { return nil }
        let logits = forward(batch)
        let u = userTower.lastOutput, v = itemTower.lastOutput
        let b = batch.count, e = u.columns, tau = config.temperature
        let positives = (0..<b).filter { batch.labels[$0] >= 0.5 }
        let du = Tensor(shape: [b, e]), dv = Tensor(shape: [b, e])
        // The item bias b_j of each row (already in `logits`; zero without a bias) and ∂loss/∂b_j.
        let bias = biasValues!
        let db = Tensor(shape: [b, 1])
        // log q_j of each positive row's item (0: no correction).
        var logQ = [Float](repeating: 0, count: positives.count)
        if let c = config.logQColumn {
            let fd = batch.dense.columns
            precondition(c < fd, "logQ column \(c) outside the batch's \(fd) dense columns")
            for (pj, j) in positives.enumerated() { logQ[pj] = batch.dense.data[j * fd + c] }
        }
        var loss = 0.0
        // L[i, j] = ⟨u_i, v_j⟩/τ + b_j − log q_j over positive rows; loss_i = logsumexp_j L[i, j] − L[i, i].
        // NOTE: log q_j is a constant per item, so ∂loss/∂⟨u_i, v_j⟩ keeps the form (softmax − 1[i=j])/τ,
        // and ∂loss/∂b_j = Σ_i (softmax_ij − 1[i=j]).
        var row = [Float](repeating: 0, count: positives.count)
        for (pi, i) in positives.enumerated() {
            var m = -Float.infinity
            for (pj, j) in positives.enumerated() {
                row[pj] = Kernels.dot(u.data + i * e, v.data + j * e, count: e) / tau + bias[j] - logQ[pj]
                m = max(m, row[pj])
            }
            let target = row[pi]
            var z: Float = 0
            for pj in row.indices { row[pj] = expf(row[pj] - m); z += row[pj] }
            loss += Double(logf(z) + m) - Double(target)
            for (pj, j) in positives.enumerated() {
                let gb = (row[pj] / z - (pj == pi ? 1 : 0)) * gradScale
                db[j] += gb
                let g = gb / tau
                if g == 0 { continue }
                Kernels.axpy(g, v.data + j * e, du.data + i * e, count: e)
                Kernels.axpy(g, u.data + i * e, dv.data + j * e, count: e)
            }
        }
        userTower.backward(du)
        itemTower.backward(dv)
        backwardBias(db.data)
        var probs = [Float](repeating: 0, count: b)
        Kernels.sigmoid(logits.data, into: &probs, count: b)
        return (loss, probs)
    }
}
