import HerdData
import HerdLayers
import HerdTensor

/// Wide & Deep's configuration. Defaults follow the DeepRec/PyTorch Criteo twins: embedding 16,
/// deep MLP 1024-512-256-1 over the embeddings and dense features, wide linear part over the ids.
public struct WideAndDeepConfig: Codable, Sendable, Equatable {
    public var denseFeatures: Int = 13
    public var tableSizes: [Int]
    public var embeddingDim: Int = 16
    /// Deep MLP widths after the input (`Fs·D + Fd`); the last must be 1.
    public var deepMLP: [Int] = [1024, 512, 256, 1]
    /// Hashed crossed columns for the wide part: each entry lists sparse-feature indices whose ids
    /// (the first id of each bag) are hashed together into `crossBuckets` buckets.
    public var crosses: [[Int]] = []
    public var crossBuckets: Int = 10_000
    public var embeddingSpec: String = "dense"
    public var seed: UInt64 = 0
    /// GEMM precision of the deep MLP (`bf16`: BF16 operands, FP32 accumulation and master weights).
    public var precision: Precision = .fp32

    public init(tableSizes: [Int]) { self.tableSizes = tableSizes }

    /// Decodes a config; `precision` may be absent (configs written before it existed are FP32).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tableSizes = try c.decode([Int].self, forKey: .tableSizes)
        denseFeatures = try c.decode(Int.self, forKey: .denseFeatures)
        embeddingDim = try c.decode(Int.self, forKey: .embeddingDim)
        deepMLP = try c.decode([Int].self, forKey: .deepMLP)
        crosses = try c.decode([[Int]].self, forKey: .crosses)
        crossBuckets = try c.decode(Int.self, forKey: .crossBuckets)
        embeddingSpec = try c.decode(String.self, forKey: .embeddingSpec)
        seed = try c.decode(UInt64.self, forKey: .seed)
        precision = try c.decodeIfPresent(Precision.self, forKey: .precision) ?? .fp32
    }

    public func validate() throws {
        guard !tableSizes.isEmpty, tableSizes.allSatisfy({ $0 > 0 }) else { throw LayerSpecError("Wide & Deep needs at least one sparse feature and positive table sizes") }
        guard deepMLP.last == 1 else { throw LayerSpecError("Wide & Deep deep MLP must end in 1 (the logit), got \(deepMLP)") }
        for c in crosses where c.count < 2 || !c.allSatisfy({ (0..<tableSizes.count).contains($0) }) {
            throw LayerSpecError("cross \(c) must name at least two sparse features in 0..<\(tableSizes.count)")
        }
        guard crosses.isEmpty || crossBuckets > 0 else { throw LayerSpecError("crossBuckets must be positive") }
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
    public let sparseArch: EmbeddingBagCollection
    public let deepArch: MLP
    /// One 1-dim table per sparse feature and per cross.
    public let wideArch: EmbeddingBagCollection
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
        var tables: [any EmbeddingTable] = []
        for (f, n) in config.tableSizes.enumerated() {
            tables.append(try makeEmbeddingTable(spec: config.embeddingSpec, name: "sparse_arch.\(f)", rows: n, dimension: config.embeddingDim, rng: &rng))
        }
        sparseArch = EmbeddingBagCollection(tables: tables)
        let deepInputs = config.tableSizes.count * config.embeddingDim + config.denseFeatures
        deepArch = MLP(name: "deep_arch", sizes: [deepInputs] + config.deepMLP, lastActivation: .none, precision: config.precision, rng: &rng)
        var wide: [any EmbeddingTable] = []
        for (f, n) in config.tableSizes.enumerated() {
            wide.append(DenseEmbeddingTable(name: "wide_arch.\(f)", weight: Tensor(shape: [n, 1])))
        }
        for c in 0..<config.crosses.count {
            wide.append(DenseEmbeddingTable(name: "wide_arch.cross\(c)", weight: Tensor(shape: [config.crossBuckets, 1])))
        }
        wideArch = EmbeddingBagCollection(tables: wide)
        wideBias = Parameter(name: "wide_arch.bias", value: Tensor(shape: [1]))
    }

    private init(sharing o: WideAndDeep) {
        config = o.config
        sparseArch = EmbeddingBagCollection(sharing: o.sparseArch)
        deepArch = MLP(sharing: o.deepArch)
        wideArch = EmbeddingBagCollection(sharing: o.wideArch)
        wideBias = Parameter(name: o.wideBias.name, value: o.wideBias.value)
    }

    public func replica() -> any RankingModel { WideAndDeep(sharing: self) }

    public var groups: [ParameterGroup] {
        [ParameterGroup(name: "dense", parameters: deepArch.parameters),
         ParameterGroup(name: "sparse", collections: [sparseArch]),
         ParameterGroup(name: "wide", parameters: [wideBias], collections: [wideArch])]
    }

    public var namedWeights: [(String, Tensor)] {
        deepArch.parameters.map { ($0.name, $0.value) }
            + sparseArch.tables.map { ("\($0.name).weight", $0.weight) }
            + wideArch.tables.map { ("\($0.name).weight", $0.weight) }
            + [(wideBias.name, wideBias.value)]
    }

    public var forwardMACsPerSample: Int { deepArch.macsPerSample }

    /// The wide part's ids: the batch's sparse features followed by one hashed id per cross.
    func wideInput(_ sparse: KeyedJagged) -> KeyedJagged {
        guard !config.crosses.isEmpty else { return sparse }
        let b = sparse.batchSize
        var ids = sparse.ids
        var offsets = sparse.offsets
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
        return KeyedJagged(features: sparse.features + config.crosses.count, batchSize: b, offsets: offsets, ids: ids)
    }

    public func forward(_ batch: Batch) -> Tensor {
        let b = batch.count, d = config.embeddingDim, fs = config.tableSizes.count, fd = config.denseFeatures
        precondition(batch.dense.columns == fd, "batch has \(batch.dense.columns) dense features, W&D expects \(fd)")
        let width = fs * d + fd
        let x = Tensor.ensure(deepIn, shape: [b, width])
        deepIn = x
        sparseArch.forward(batch.sparse, out: x.data, outStride: width, outOffset: 0)
        for s in 0..<b { (x.data + s * width + fs * d).update(from: batch.dense.data + s * fd, count: fd) }
        let deep = deepArch.forward(x)
        let wf = wideArch.features
        let w = Tensor.ensure(wideOut, shape: [b, wf])
        wideOut = w
        wideArch.forward(wideInput(batch.sparse), out: w.data, outStride: wf, outOffset: 0)
        let out = Tensor.ensure(logits, shape: [b, 1])
        logits = out
        let bias = wideBias.value[0]
        for s in 0..<b {
            var sum = bias + deep[s]
            let row = w.data + s * wf
            for f in 0..<wf { sum += row[f] }
            out[s] = sum
        }
        return out
    }

    public func backward(_ dLogits: Tensor) {
        let b = dLogits.rows, wf = wideArch.features, fs = config.tableSizes.count, d = config.embeddingDim
        let g = Tensor.ensure(wideGrad, shape: [b, wf])
        wideGrad = g
        var biasGrad: Float = 0
        for s in 0..<b {
            let v = dLogits[s]
            biasGrad += v
            (g.data + s * wf).update(repeating: v, count: wf)
        }
        wideBias.grad[0] += biasGrad
        wideArch.backward(grad: g.data, gradStride: wf, gradOffset: 0)
        let dx = deepArch.backward(dLogits, needInputGradient: true)!
        sparseArch.backward(grad: dx.data, gradStride: fs * d + config.denseFeatures, gradOffset: 0)
    }
}
