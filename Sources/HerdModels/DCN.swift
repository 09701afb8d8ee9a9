import HerdData
import HerdLayers
import HerdTensor

/// DCN-v2's configuration (Wang et al. 2021), stacked: cross network then deep MLP.
public struct DCNConfig: Codable, Sendable, Equatable {
    public var denseFeatures: Int = 13
    public var tableSizes: [Int]
    public var embeddingDim: Int = 16
    /// Cross layers (full-rank `[W, W]` weights, `W = Fs·D + Fd`).
    public var crossLayers: Int = 3
    /// Deep MLP widths after the cross network; the last must be 1.
    public var deepMLP: [Int] = [512, 256, 1]
    public var seed: UInt64 = 0

    public init(tableSizes: [Int]) { self.tableSizes = tableSizes }

    public func validate() throws {
        guard !tableSizes.isEmpty, tableSizes.allSatisfy({ $0 > 0 }) else { throw LayerSpecError("DCN needs at least one sparse feature and positive table sizes") }
        guard deepMLP.last == 1 else { throw LayerSpecError("DCN deep MLP must end in 1 (the logit), got \(deepMLP)") }
        guard crossLayers >= 1 else { throw LayerSpecError("DCN needs at least one cross layer") }
    }
}

/// DCN-v2, stacked: `x₀ = [E, dense]`, `x_{l+1} = x₀ ⊙ (W_l·x_l + b_l) + x_l`, then a deep MLP.
///
/// ```
/// sparse ─ embeddings ┐
/// dense ──────────────┴─ x₀ [B, W] ─ cross × L ─ x_L [B, W] ─ deep MLP ─ logit [B, 1]
/// ```
public final class DCN: RankingModel, @unchecked Sendable {
    public let config: DCNConfig
    public let sparseArch: EmbeddingBagCollection
    public let crossArch: [CrossLayer]
    public let deepArch: MLP
    public var kind: ModelKind { .dcn }

    private var x0: Tensor?
    private var dx0: Tensor?

    public init(config: DCNConfig) throws {
        try config.validate()
        self.config = config
        var rng = SplitMix64(seed: config.seed)
        sparseArch = try EmbeddingBagCollection(spec: "dense", prefix: "sparse_arch", tableSizes: config.tableSizes,
                                                dimension: config.embeddingDim, rng: &rng)
        let width = sparseArch.width + config.denseFeatures
        crossArch = (0..<config.crossLayers).map { CrossLayer(name: "cross_arch.\($0)", width: width, rng: &rng) }
        deepArch = MLP(name: "deep_arch", sizes: [width] + config.deepMLP, lastActivation: .none, rng: &rng)
    }

    private init(sharing o: DCN) {
        config = o.config
        sparseArch = EmbeddingBagCollection(sharing: o.sparseArch)
        crossArch = o.crossArch.map { CrossLayer(sharing: $0) }
        deepArch = MLP(sharing: o.deepArch)
    }

    public func replica() -> any RankingModel { DCN(sharing: self) }
    public func setMode(_ mode: ForwardMode) { deepArch.setMode(mode) }

    public var groups: [ParameterGroup] {
        [ParameterGroup(name: "dense", parameters: crossArch.flatMap(\.parameters) + deepArch.parameters),
         ParameterGroup(name: "sparse", collections: [sparseArch])]
    }

    public var namedWeights: [(String, Tensor)] {
        (crossArch.flatMap(\.parameters) + deepArch.parameters).map { ($0.name, $0.value) }
            + sparseArch.tables.map { ("\($0.name).weight", $0.weight) }
    }

    var width: Int { sparseArch.width + config.denseFeatures }

    public var forwardMACsPerSample: Int { crossArch.count * width * width + deepArch.macsPerSample }

    public func forward(_ batch: Batch) -> Tensor {
        let b = batch.count, fd = config.denseFeatures, w = width, ew = sparseArch.width
        precondition(batch.dense.columns == fd, "batch has \(batch.dense.columns) dense features, DCN expects \(fd)")
        let x0 = Tensor.ensure(self.x0, shape: [b, w])
        self.x0 = x0
        sparseArch.forward(batch.sparse, out: x0.data, outStride: w, outOffset: 0)
        for s in 0..<b { (x0.data + s * w + ew).update(from: batch.dense.data + s * fd, count: fd) }
        var x = x0
        for c in crossArch { x = c.forward(x0: x0, xl: x) }
        return deepArch.forward(x)
    }

    public func backward(_ dLogits: Tensor) {
        let b = dLogits.rows, w = width
        var g = deepArch.backward(dLogits, needInputGradient: true)!
        let dx0 = Tensor.ensure(self.dx0, shape: [b, w])
        self.dx0 = dx0
        dx0.fill(0)
        for c in crossArch.reversed() { g = c.backward(g, dx0: dx0) }
        // x₀ feeds the first cross layer as x_l too: its gradient is dx0 + the last g.
        for i in 0..<(b * w) { dx0.data[i] += g.data[i] }
        sparseArch.backward(grad: dx0.data, gradStride: w, gradOffset: 0)
    }
}
