import HerdData
import HerdLayers
import HerdTensor

/// Wide & Deep's configuration. Defaults follow the DeepRec/PyTorch Criteo twins: embedding 16,
/// deep MLP 1024-512-256-1 over the embeddings and dense features, wide linear part over the ids.
/// The optional fields describe Friesian's RecSys W&D: per-feature embedding sizes, small
/// categoricals as one-hot indicators, a wide part over chosen features and crosses, and hidden
/// layers with batch normalisation and dropout.
public struct WideAndDeepConfig: Codable, Sendable, Equatable {
    public var denseFeatures: Int = 13
    public var tableSizes: [Int]
    public var embeddingDim: Int = 16
    /// Embedding dimension per sparse feature (0: not embedded); nil: `embeddingDim` for all.
    public var embeddingDims: [Int]?
    /// Sparse features fed to the deep MLP as one-hot vectors (width = their table sizes).
    public var indicators: [Int] = []
    /// Sparse features in the wide part; nil: all of them.
    public var wideFeatures: [Int]?
    /// Deep MLP widths after the input (`Σ D_f + Σ indicator sizes + Fd`); the last must be 1.
    public var deepMLP: [Int] = [1024, 512, 256, 1]
    /// Linear → BatchNorm → ReLU in the hidden layers.
    public var batchNorm = false
    /// Dropout after each hidden layer's ReLU.
    public var dropout: Float = 0
    /// How multi-hot bags are pooled.
    public var pooling: Pooling = .sum
    /// Hashed crossed columns for the wide part: each entry lists sparse-feature indices whose ids
    /// (the first id of each bag) are hashed together into `crossBuckets` buckets.
    public var crosses: [[Int]] = []
    public var crossBuckets: Int = 10_000
    public var embeddingSpec: String = "dense"
    public var seed: UInt64 = 0
    /// GEMM precision of the deep MLP (`bf16`: BF16 operands, FP32 accumulation and master weights).
    public var precision: Precision = .fp32
    /// With `bf16`: layers narrower than this (input or output) stay FP32 (see `MLP.init`).
    public var bf16MinWidth: Int = MLP.defaultBF16MinWidth

    public init(tableSizes: [Int]) { self.tableSizes = tableSizes }

    enum CodingKeys: String, CodingKey {
        case denseFeatures, tableSizes, embeddingDim, embeddingDims, indicators, wideFeatures, deepMLP, batchNorm, dropout, pooling, crosses, crossBuckets, embeddingSpec, seed, precision, bf16MinWidth
    }

    // NOTE: every field but the table sizes is optional in JSON, so exports written before a field
    // existed still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tableSizes = try c.decode([Int].self, forKey: .tableSizes)
        let d = WideAndDeepConfig(tableSizes: tableSizes)
        denseFeatures = try c.decodeIfPresent(Int.self, forKey: .denseFeatures) ?? d.denseFeatures
        embeddingDim = try c.decodeIfPresent(Int.self, forKey: .embeddingDim) ?? d.embeddingDim
        embeddingDims = try c.decodeIfPresent([Int].self, forKey: .embeddingDims)
        indicators = try c.decodeIfPresent([Int].self, forKey: .indicators) ?? []
        wideFeatures = try c.decodeIfPresent([Int].self, forKey: .wideFeatures)
        deepMLP = try c.decodeIfPresent([Int].self, forKey: .deepMLP) ?? d.deepMLP
        batchNorm = try c.decodeIfPresent(Bool.self, forKey: .batchNorm) ?? false
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
        pooling = try c.decodeIfPresent(Pooling.self, forKey: .pooling) ?? .sum
        crosses = try c.decodeIfPresent([[Int]].self, forKey: .crosses) ?? []
        crossBuckets = try c.decodeIfPresent(Int.self, forKey: .crossBuckets) ?? d.crossBuckets
        embeddingSpec = try c.decodeIfPresent(String.self, forKey: .embeddingSpec) ?? d.embeddingSpec
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 0
        precision = try c.decodeIfPresent(Precision.self, forKey: .precision) ?? .fp32
        bf16MinWidth = try c.decodeIfPresent(Int.self, forKey: .bf16MinWidth) ?? MLP.defaultBF16MinWidth
    }

    /// Embedding dimension of each sparse feature (0 = not embedded).
    public var dims: [Int] { embeddingDims ?? Array(repeating: embeddingDim, count: tableSizes.count) }

    public func validate() throws {
        let fs = tableSizes.count
        guard fs > 0, tableSizes.allSatisfy({ $0 > 0 }) else { throw LayerSpecError("Wide & Deep needs at least one sparse feature and positive table sizes") }
        guard deepMLP.last == 1 else { throw LayerSpecError("Wide & Deep deep MLP must end in 1 (the logit), got \(deepMLP)") }
        guard dims.count == fs, dims.allSatisfy({ $0 >= 0 }) else { throw LayerSpecError("embeddingDims must give one non-negative size per sparse feature (\(fs))") }
        for f in indicators + (wideFeatures ?? []) where !(0..<fs).contains(f) {
            throw LayerSpecError("feature \(f) in indicators/wideFeatures is outside 0..<\(fs)")
        }
        for c in crosses where c.count < 2 || !c.allSatisfy({ (0..<fs).contains($0) }) {
            throw LayerSpecError("cross \(c) must name at least two sparse features in 0..<\(fs)")
        }
        guard crosses.isEmpty || crossBuckets > 0 else { throw LayerSpecError("crossBuckets must be positive") }
        guard dropout >= 0 && dropout < 1 else { throw LayerSpecError("dropout must be in [0, 1), got \(dropout)") }
        guard dims.contains(where: { $0 > 0 }) || !indicators.isEmpty || denseFeatures > 0 else {
            throw LayerSpecError("the deep part has no input: embed a feature, add an indicator or a dense feature")
        }
    }
}

/// Wide & Deep (Cheng et al. 2016): `logit = wide(ids, crosses) + deep([E, dense])`.
///
/// ```
/// sparse ─ embedding bags ─ E [B, Fs·D] ┐
/// dense [B, Fd] ────────────────────────┴─ deep input [B, Fs·D+Fd] ─ deep MLP ─ [B, 1] ┐
/// sparse + hashed crosses ─ 1-dim tables ─ [B, Fs+C] ─ Σ + bias ─────────────── [B, 1] ┴─ + ─ logit
/// ```
public final class WideAndDeep: RankingModel, @unchecked Sendable {
    public let config: WideAndDeepConfig
    /// Sparse features with an embedding in the deep part, and their collection.
    public let embeddedFeatures: [Int]
    public let sparseArch: EmbeddingBagCollection?
    public let indicatorArch: IndicatorColumns
    public let deepArch: MLP
    /// Sparse features of the wide part; one 1-dim table per such feature and per cross.
    public let wideFeatures: [Int]
    public let wideArch: EmbeddingBagCollection?
    public let wideBias: Parameter
    public var kind: ModelKind { .wnd }
    public var precision: Precision { config.precision }

    private var deepIn: Tensor?
    private var wideOut: Tensor?
    private var wideGrad: Tensor?
    private var logits: Tensor?

    public init(config: WideAndDeepConfig) throws {
        try config.validate()
        self.config = config
        var rng = SplitMix64(seed: config.seed)
        let dims = config.dims
        embeddedFeatures = dims.indices.filter { dims[$0] > 0 }
        var tables: [any EmbeddingTable] = []
        for f in embeddedFeatures {
            tables.append(try makeEmbeddingTable(spec: config.embeddingSpec, name: "sparse_arch.\(f)", rows: config.tableSizes[f], dimension: dims[f], rng: &rng))
        }
        sparseArch = tables.isEmpty ? nil : EmbeddingBagCollection(tables: tables, pooling: config.pooling)
        indicatorArch = IndicatorColumns(features: config.indicators, cardinalities: config.indicators.map { config.tableSizes[$0] })
        let deepInputs = (sparseArch?.width ?? 0) + indicatorArch.width + config.denseFeatures
        deepArch = MLP(name: "deep_arch", sizes: [deepInputs] + config.deepMLP, lastActivation: .none, precision: config.precision, rng: &rng,
                       batchNorm: config.batchNorm, dropout: config.dropout, bf16MinWidth: config.bf16MinWidth,
                       firstLayerFP32: indicatorArch.width > 0)
        if indicatorArch.width > 0 && deepArch.layers[0].precision == .fp32 {
            // NOTE: the one-hot block of the deep input is multiplied sparsely (see Linear+IndicatorColumns).
            let start = sparseArch?.width ?? 0
            deepArch.layers[0].indicatorColumns = start..<(start + indicatorArch.width)
        }
        wideFeatures = config.wideFeatures ?? Array(config.tableSizes.indices)
        var wide: [any EmbeddingTable] = []
        for f in wideFeatures {
            wide.append(DenseEmbeddingTable(name: "wide_arch.\(f)", weight: Tensor(shape: [config.tableSizes[f], 1])))
        }
        for c in 0..<config.crosses.count {
            wide.append(DenseEmbeddingTable(name: "wide_arch.cross\(c)", weight: Tensor(shape: [config.crossBuckets, 1])))
        }
        wideArch = wide.isEmpty ? nil : EmbeddingBagCollection(tables: wide, pooling: .sum)
        wideBias = Parameter(name: "wide_arch.bias", value: Tensor(shape: [1]))
    }

    private init(sharing o: WideAndDeep) {
        config = o.config
        embeddedFeatures = o.embeddedFeatures
        sparseArch = o.sparseArch.map { EmbeddingBagCollection(sharing: $0) }
        indicatorArch = o.indicatorArch
        deepArch = MLP(sharing: o.deepArch)
        wideFeatures = o.wideFeatures
        wideArch = o.wideArch.map { EmbeddingBagCollection(sharing: $0) }
        wideBias = Parameter(name: o.wideBias.name, value: o.wideBias.value)
    }

    public func replica() -> any RankingModel { WideAndDeep(sharing: self) }

    public func setMode(_ mode: ForwardMode) { deepArch.setMode(mode) }

    public var groups: [ParameterGroup] {
        [ParameterGroup(name: "dense", parameters: deepArch.parameters),
         ParameterGroup(name: "sparse", collections: sparseArch.map { [$0] } ?? []),
         ParameterGroup(name: "wide", parameters: [wideBias], collections: wideArch.map { [$0] } ?? [])]
    }

    public var namedWeights: [(String, Tensor)] {
        deepArch.parameters.map { ($0.name, $0.value) } + deepArch.buffers
            + (sparseArch?.tables ?? []).map { ("\($0.name).weight", $0.weight) }
            + (wideArch?.tables ?? []).map { ("\($0.name).weight", $0.weight) }
            + [(wideBias.name, wideBias.value)]
    }

    public var forwardMACsPerSample: Int { deepArch.macsPerSample }

    /// The wide part's ids: the chosen sparse features followed by one hashed id per cross.
    func wideInput(_ sparse: KeyedJagged) -> KeyedJagged {
        let chosen = sparse.select(features: wideFeatures)
        guard !config.crosses.isEmpty else { return chosen }
        let b = sparse.batchSize
        var ids = chosen.ids
        var offsets = chosen.offsets
        ids.reserveCapacity(ids.count + config.crosses.count * b)
        for cross in config.crosses {
            for s in 0..<b {
                var h: UInt64 = 0xCBF2_9CE4_8422_2325
                for f in cross {
                    let bag = sparse.bag(feature: f, row: s)
                    let v = UInt64(UInt32(bitPattern: bag.first ?? -1))
                    h = (h ^ v) &* 0x0000_0100_0000_01B3
                    h ^= h >> 29
                }
                ids.append(Int32(h % UInt64(config.crossBuckets)))
                offsets.append(Int32(ids.count))
            }
        }
        return KeyedJagged(features: chosen.features + config.crosses.count, batchSize: b, offsets: offsets, ids: ids)
    }

    public func forward(_ batch: Batch) -> Tensor {
        let b = batch.count, fd = config.denseFeatures
        precondition(batch.sparse.features == config.tableSizes.count, "batch has \(batch.sparse.features) sparse features, W&D expects \(config.tableSizes.count)")
        precondition(batch.dense.columns == fd || (fd == 0 && batch.dense.count == 0), "batch has \(batch.dense.columns) dense features, W&D expects \(fd)")
        let embWidth = sparseArch?.width ?? 0, indWidth = indicatorArch.width
        let width = embWidth + indWidth + fd
        let x = Tensor.ensure(deepIn, shape: [b, width])
        deepIn = x
        sparseArch?.forward(batch.sparse.select(features: embeddedFeatures), out: x.data, outStride: width, outOffset: 0)
        if indWidth > 0 { indicatorArch.forward(batch.sparse, out: x.data, outStride: width, outOffset: embWidth) }
        if fd > 0 { for s in 0..<b { (x.data + s * width + embWidth + indWidth).update(from: batch.dense.data + s * fd, count: fd) } }
        let deep = deepArch.forward(x)
        let out = Tensor.ensure(logits, shape: [b, 1])
        logits = out
        let bias = wideBias.value[0]
        for s in 0..<b { out[s] = bias + deep[s] }
        if let wideArch {
            let wf = wideArch.features
            let w = Tensor.ensure(wideOut, shape: [b, wf])
            wideOut = w
            wideArch.forward(wideInput(batch.sparse), out: w.data, outStride: wf, outOffset: 0)
            for s in 0..<b {
                let row = w.data + s * wf
                var sum: Float = 0
                for f in 0..<wf { sum += row[f] }
                out[s] += sum
            }
        }
        return out
    }

    public func backward(_ dLogits: Tensor) {
        let b = dLogits.rows
        var biasGrad: Float = 0
        for s in 0..<b { biasGrad += dLogits[s] }
        wideBias.grad[0] += biasGrad
        if let wideArch {
            let wf = wideArch.features
            let g = Tensor.ensure(wideGrad, shape: [b, wf])
            wideGrad = g
            for s in 0..<b { (g.data + s * wf).update(repeating: dLogits[s], count: wf) }
            wideArch.backward(grad: g.data, gradStride: wf, gradOffset: 0)
        }
        let needInput = sparseArch != nil
        let dx = deepArch.backward(dLogits, needInputGradient: needInput)
        if let sparseArch, let dx {
            sparseArch.backward(grad: dx.data, gradStride: sparseArch.width + indicatorArch.width + config.denseFeatures, gradOffset: 0)
        }
    }
}
