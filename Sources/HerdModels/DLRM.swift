import HerdData
import HerdLayers
import HerdTensor

/// DLRM's configuration. Defaults are the Criteo Kaggle config of facebookresearch/dlrm:
/// embedding 16, bottom 13-512-256-64-16, dot interaction, top 367-512-256-1.
public struct DLRMConfig: Codable, Sendable, Equatable {
    /// Dense input features (`Fd`).
    public var denseFeatures: Int = 13
    /// Rows of each sparse feature's table (`Fs` entries).
    public var tableSizes: [Int]
    /// Embedding dimension `D`.
    public var embeddingDim: Int = 16
    /// Bottom MLP widths after the input; the last must equal `embeddingDim`.
    public var bottomMLP: [Int] = [512, 256, 64, 16]
    /// Top MLP widths after the interaction; the last must be 1 (the logit).
    public var topMLP: [Int] = [512, 256, 1]
    public var interaction: InteractionKind = .dot
    /// Embedding table storage spec (see `makeEmbeddingTable`).
    public var embeddingSpec: String = "dense"
    /// Initialisation seed.
    public var seed: UInt64 = 0
    /// GEMM precision of the MLPs (`bf16`: BF16 operands, FP32 accumulation and master weights).
    public var precision: Precision = .fp32
    /// With `bf16`: layers narrower than this (input or output) stay FP32 (see `MLP.init`).
    public var bf16MinWidth: Int = MLP.defaultBF16MinWidth

    public init(tableSizes: [Int]) { self.tableSizes = tableSizes }

    /// Decodes a config; `precision` may be absent (configs written before it existed are FP32).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tableSizes = try c.decode([Int].self, forKey: .tableSizes)
        denseFeatures = try c.decode(Int.self, forKey: .denseFeatures)
        embeddingDim = try c.decode(Int.self, forKey: .embeddingDim)
        bottomMLP = try c.decode([Int].self, forKey: .bottomMLP)
        topMLP = try c.decode([Int].self, forKey: .topMLP)
        interaction = try c.decode(InteractionKind.self, forKey: .interaction)
        embeddingSpec = try c.decode(String.self, forKey: .embeddingSpec)
        seed = try c.decode(UInt64.self, forKey: .seed)
        precision = try c.decodeIfPresent(Precision.self, forKey: .precision) ?? .fp32
        bf16MinWidth = try c.decodeIfPresent(Int.self, forKey: .bf16MinWidth) ?? MLP.defaultBF16MinWidth
    }

    /// Checks the sizes fit together; throws with a message naming the offending setting.
    public func validate() throws {
        guard !tableSizes.isEmpty, tableSizes.allSatisfy({ $0 > 0 }) else { throw LayerSpecError("DLRM needs at least one sparse feature and positive table sizes") }
        guard bottomMLP.last == embeddingDim else { throw LayerSpecError("DLRM bottom MLP must end in the embedding dimension \(embeddingDim), got \(bottomMLP)") }
        guard topMLP.last == 1 else { throw LayerSpecError("DLRM top MLP must end in 1 (the logit), got \(topMLP)") }
        guard denseFeatures > 0, embeddingDim > 0 else { throw LayerSpecError("DLRM needs dense features and a positive embedding dimension") }
    }
}

/// Deep Learning Recommendation Model (Naumov et al. 2019), as named parts:
/// dense arch (bottom MLP) + sparse arch (embedding bags) + interaction arch + over arch (top MLP).
///
/// ```
/// dense [B, Fd] ─ bottom MLP ─ x [B, D] ─┐
/// sparse ─ embedding bags ─ E [B, Fs, D] ┴─ T [B, Fs+1, D] ─ interaction ─ R [B, W] ─ top MLP ─ logit [B, 1]
/// ```
public final class DLRM: RankingModel, @unchecked Sendable {
    public let config: DLRMConfig
    public let denseArch: MLP
    public let sparseArch: EmbeddingBagCollection
    public let interactionArch: Interaction
    public let overArch: MLP
    public var kind: ModelKind { .dlrm }
    public var precision: Precision { config.precision }

    private var t: Tensor?  // [B, Fs+1, D]
    private var r: Tensor?  // [B, W]
    private var dt: Tensor?  // [B, Fs+1, D]
    private var dx: Tensor?  // [B, D]

    public init(config: DLRMConfig) throws {
        try config.validate()
        self.config = config
        var rng = SplitMix64(seed: config.seed)
        denseArch = MLP(name: "dense_arch", sizes: [config.denseFeatures] + config.bottomMLP, lastActivation: .relu, precision: config.precision, rng: &rng,
                        bf16MinWidth: config.bf16MinWidth)
        sparseArch = try EmbeddingBagCollection(spec: config.embeddingSpec, prefix: "sparse_arch", tableSizes: config.tableSizes,
                                                dimension: config.embeddingDim, rng: &rng)
        interactionArch = Interaction(kind: config.interaction, vectors: config.tableSizes.count + 1, dimension: config.embeddingDim)
        overArch = MLP(name: "over_arch", sizes: [interactionArch.outputs] + config.topMLP, lastActivation: .none, precision: config.precision, rng: &rng,
                       bf16MinWidth: config.bf16MinWidth)
    }

    private init(sharing o: DLRM) {
        config = o.config
        denseArch = MLP(sharing: o.denseArch)
        sparseArch = EmbeddingBagCollection(sharing: o.sparseArch)
        interactionArch = o.interactionArch
        overArch = MLP(sharing: o.overArch)
    }

    public func replica() -> any RankingModel { DLRM(sharing: self) }

    public func setMode(_ mode: ForwardMode) {
        denseArch.setMode(mode)
        overArch.setMode(mode)
    }

    public var groups: [ParameterGroup] {
        [ParameterGroup(name: "dense", parameters: denseArch.parameters + overArch.parameters),
         ParameterGroup(name: "sparse", collections: [sparseArch])]
    }

    public var namedWeights: [(String, Tensor)] {
        (denseArch.parameters + overArch.parameters).map { ($0.name, $0.value) }
            + denseArch.buffers + overArch.buffers
            + sparseArch.tables.map { ("\($0.name).weight", $0.weight) }
    }

    public var forwardMACsPerSample: Int { denseArch.macsPerSample + interactionArch.macsPerSample + overArch.macsPerSample }

    public func forward(_ batch: Batch) -> Tensor {
        let b = batch.count, d = config.embeddingDim, n = interactionArch.vectors
        precondition(batch.dense.columns == config.denseFeatures, "batch has \(batch.dense.columns) dense features, DLRM expects \(config.denseFeatures)")
        let x = denseArch.forward(batch.dense)
        let t = Tensor.ensure(self.t, shape: [b, n * d])
        self.t = t
        for s in 0..<b { (t.data + s * n * d).update(from: x.data + s * d, count: d) }
        sparseArch.forward(batch.sparse, out: t.data, outStride: n * d, outOffset: d)
        let r = Tensor.ensure(self.r, shape: [b, interactionArch.outputs])
        self.r = r
        interactionArch.forward(t.data, batch: b, into: r.data)
        return overArch.forward(r)
    }

    public func backward(_ dLogits: Tensor) {
        guard let t else { preconditionFailure("DLRM.backward before forward") }
        let b = dLogits.rows, d = config.embeddingDim, n = interactionArch.vectors
        let dr = overArch.backward(dLogits, needInputGradient: true)!
        let dt = Tensor.ensure(self.dt, shape: [b, n * d])
        self.dt = dt
        interactionArch.backward(dr.data, input: t.data, batch: b, into: dt.data)
        // NOTE: `dt` is left untouched until the next backward, so the collection keeps the bag
        // gradients in it (no sort or row buffers now; plain SGD adds them straight into the tables).
        sparseArch.backward(keeping: dt, gradStride: n * d, gradOffset: d)
        let dx = Tensor.ensure(self.dx, shape: [b, d])
        self.dx = dx
        for s in 0..<b { (dx.data + s * d).update(from: dt.data + s * n * d, count: d) }
        denseArch.backward(dx, needInputGradient: false)
    }
}
