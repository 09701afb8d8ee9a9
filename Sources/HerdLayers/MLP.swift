import HerdTensor

/// A stack of `Linear` layers, ReLU between them; the last layer's activation is configurable
/// (DLRM's bottom MLP ends in ReLU, a top MLP producing a logit does not). Hidden layers may add
/// batch normalisation (Linear → BatchNorm → ReLU, Friesian's W&D) and dropout after the ReLU.
///
/// `sizes` lists widths including the input: `[13, 512, 256, 64, 16]` is 13 → 512 → 256 → 64 → 16.
public final class MLP: @unchecked Sendable {
    public let sizes: [Int]
    public let layers: [Linear]
    /// One per hidden layer when batch normalisation is on, else empty.
    public let norms: [BatchNorm]
    /// One per hidden layer when dropout is on, else empty.
    public let dropouts: [Dropout]

    /// Default smallest input and output width of a layer that runs in BF16 (see `init`).
    public static let defaultBF16MinWidth = 64

    /// - `precision`: `bf16` runs the layers whose input and output widths are both at least
    ///   `bf16MinWidth` with BF16 GEMMs; narrower ones (DLRM's 13-wide input layer, 16-wide
    ///   embedding layer and every logit layer) stay FP32. NOTE: their GEMMs are too small for
    ///   BF16 to gain (`herd bench kernels` shapes), and keeping the raw dense input and the logit
    ///   in FP32 keeps the AUC closest to FP32 training. `firstLayerFP32` keeps the first layer FP32
    ///   whatever its size (an input with indicator columns, multiplied sparsely in FP32).
    public init(name: String, sizes: [Int], lastActivation: Activation, precision: Precision = .fp32, rng: inout SplitMix64,
                batchNorm: Bool = false, dropout: Float = 0, bf16MinWidth: Int = MLP.defaultBF16MinWidth, firstLayerFP32: Bool = false) {
        precondition(sizes.count >= 2, "an MLP needs at least an input and an output size")
        self.sizes = sizes
        self.precision = precision
        var layers: [Linear] = [], norms: [BatchNorm] = [], dropouts: [Dropout] = []
        for i in 0..<(sizes.count - 1) {
            let hidden = i < sizes.count - 2
            let act: Activation = hidden ? (batchNorm ? .none : .relu) : lastActivation
            let p: Precision = precision == .bf16 && min(sizes[i], sizes[i + 1]) >= bf16MinWidth && !(i == 0 && firstLayerFP32) ? .bf16 : .fp32
            layers.append(Linear(name: "\(name).\(i)", inputs: sizes[i], outputs: sizes[i + 1], activation: act, precision: p, rng: &rng))
            if hidden && batchNorm { norms.append(BatchNorm(name: "\(name).\(i).norm", features: sizes[i + 1], relu: true)) }
            if hidden && dropout > 0 { dropouts.append(Dropout(rate: dropout, seed: rng.next())) }
        }
        // A layer feeding a BF16 layer directly rounds its output in its own epilogue.
        if !batchNorm && dropout == 0 {
            for i in 0..<(layers.count - 1) where layers[i + 1].precision == .bf16 { layers[i].emitsBF16Output = true }
        }
        self.layers = layers
        self.norms = norms
        self.dropouts = dropouts
    }

    /// A replica sharing weights (see `Linear.init(sharing:)`).
    public init(sharing other: MLP) {
        sizes = other.sizes
        precision = other.precision
        layers = other.layers.map { Linear(sharing: $0) }
        norms = other.norms.map { BatchNorm(sharing: $0) }
        dropouts = other.dropouts.map { Dropout(rate: $0.rate, seed: $0.seed) }
        mode = other.mode
        foldedLayers = other.foldedLayers?.map { Linear(sharing: $0) }
        dedupesRows = other.dedupesRows
    }

    public var parameters: [Parameter] { layers.flatMap(\.parameters) + norms.flatMap(\.parameters) }
    /// Non-trained state to export (batch-norm running statistics).
    public var buffers: [(String, Tensor)] { norms.flatMap(\.buffers) }
    /// The precision asked for (individual layers may be FP32, see `init`).
    public let precision: Precision
    public var inputs: Int { sizes.first! }
    public var outputs: Int { sizes.last! }

    /// Multiply–accumulates per sample in the forward pass.
    public var macsPerSample: Int { zip(sizes, sizes.dropFirst()).reduce(0) { $0 + $1.0 * $1.1 } }

    /// Inference only: every layer derives its BF16 weight (and transposed indicator block) once
    /// (see `Linear.freezeForInference`); replicas made afterwards share them. With batch
    /// normalisation, each Linear → BatchNorm(running statistics) → ReLU is also folded into one
    /// Linear with ReLU (`foldedLayers`), which inference-mode forwards run instead.
    ///
    /// `hoistUniformColumns`: the first layer (when FP32) multiplies the input columns that are
    /// equal in every row of a batch once per batch (see `Linear.hoistsUniformColumns`); false
    /// keeps the plain per-row product (the reference).
    public func freezeForInference(hoistUniformColumns: Bool = false) {
        guard !layers[0].isFrozen else { return }
        // NOTE: with batch norm only the folded layers (inference mode) hoist; the trained layers
        // keep the training-mode forward as it was.
        let hoist = hoistUniformColumns && layers[0].precision == .fp32
        if norms.isEmpty { layers[0].hoistsUniformColumns = hoist }
        for l in layers { l.freezeForInference() }
        if !norms.isEmpty && foldedLayers == nil { foldedLayers = foldBatchNorm(hoistUniformColumns: hoist) }
        // A frozen layer feeding a BF16 layer directly writes only the rounded output that layer reads.
        for l in layers + (foldedLayers ?? []) where l.emitsBF16Output { l.omitsFP32Output = true }
    }

    /// Inference only (`freezeForInference` with batch norm): the layers with each batch norm
    /// folded into the Linear before it: `W' = diag(s)·W`, `b' = s ⊙ b + t` with
    /// `s = γ / √(running var + ε)`, `t = β − running mean ⊙ s`, the norm's ReLU as the layer's
    /// activation. The trained layers and norms are untouched (export, `backward` see them).
    ///
    /// NOTE: inference applies the norm as a per-feature affine map after the GEMM — an extra pass
    /// over every hidden activation (≈ 4 % of a canK-200 recommend request in BF16); folded, it
    /// costs nothing per request, and a BF16 next layer gets its input rounded in this layer's
    /// epilogue. In BF16 the folded weight is rounded instead of the unfolded one, so results move
    /// by BF16 rounding (≈ 1e-3 relative); in FP32 by float rounding only.
    private func foldBatchNorm(hoistUniformColumns: Bool) -> [Linear] {
        var rng = SplitMix64(seed: 0)
        var out: [Linear] = []
        for (i, l) in layers.enumerated() {
            let norm = i < norms.count ? norms[i] : nil
            let act: Activation = norm.map { $0.relu ? .relu : .none } ?? l.activation
            let f = Linear(name: String(l.weight.name.dropLast(".weight".count)), inputs: l.inputs, outputs: l.outputs,
                           activation: act, precision: l.precision, rng: &rng)
            f.indicatorColumns = l.indicatorColumns
            f.hoistsUniformColumns = i == 0 && hoistUniformColumns
            let w = l.weight.value.data, b = l.bias.value.data, fw = f.weight.value.data, fb = f.bias.value.data
            if let n = norm {
                let g = n.gamma.value.data, bt = n.beta.value.data, mean = n.runningMean.data, variance = n.runningVar.data
                for o in 0..<l.outputs {
                    let scale = g[o] / (variance[o] + n.epsilon).squareRoot()
                    for k in 0..<l.inputs { fw[o * l.inputs + k] = w[o * l.inputs + k] * scale }
                    fb[o] = b[o] * scale + (bt[o] - mean[o] * scale)
                }
            } else {
                fw.update(from: w, count: l.outputs * l.inputs)
                fb.update(from: b, count: l.outputs)
            }
            out.append(f)
        }
        for i in 0..<(out.count - 1) where out[i + 1].precision == .bf16 { out[i].emitsBF16Output = true }
        for f in out { f.freezeForInference() }
        return out
    }

    /// Training (batch statistics, dropout) or inference for the following passes.
    public func setMode(_ mode: ForwardMode) {
        self.mode = mode
        for n in norms { n.mode = mode }
        for d in dropouts { d.mode = mode }
    }

    /// Multiply–adds the Linears of the last forward executed (see `Linear.lastForwardMACs`), and
    /// how many input columns its first layer hoisted (`Linear.hoistsUniformColumns`).
    public var lastForwardMACs: Int { activeLayers.reduce(0) { $0 + $1.lastForwardMACs } }
    public var lastHoistedColumns: Int { activeLayers[0].lastHoistedColumns }
    /// Inference only (after `freezeForInference`): gives the first layer that inference runs a
    /// row cache of `bytes` (`Linear.rowCache`; 0: none) when it hoists uniform columns, and
    /// returns that cache. Call before making replicas (they share it).
    @discardableResult
    public func setRowCache(bytes: Int) -> RowContributionCache? {
        let first = (foldedLayers ?? layers)[0]
        guard first.isFrozen, first.hoistsUniformColumns, bytes > 0 else {
            first.rowCache = nil
            return nil
        }
        let cache = RowContributionCache(outputs: first.outputs, capacityBytes: bytes)
        first.rowCache = cache
        return cache
    }

    /// The row cache of the first layer inference runs (nil: none).
    public var rowCache: RowContributionCache? { (foldedLayers ?? layers)[0].rowCache }

    /// The Linears the current mode's forward runs (the folded ones in inference mode when frozen
    /// with batch norm), e.g. to inspect their outputs.
    public var activeLayers: [Linear] { mode == .inference ? foldedLayers ?? layers : layers }

    /// The mode `setMode` set last.
    public private(set) var mode: ForwardMode = .inference
    /// Inference only: the layers with the batch norms folded in (see `foldBatchNorm`).
    private var foldedLayers: [Linear]?
    /// Inference only: rows of a batch equal to an earlier row run once (see `MLP+DistinctRows.swift`).
    public var dedupesRows = false
    /// With `dedupesRows`: the distinct rows gathered and the output scattered back.
    var distinctInput: Tensor?
    var distinctOutput: Tensor?

    /// `x [B, sizes.first]` → `[B, sizes.last]` (owned by the last layer).
    public func forward(_ x: Tensor) -> Tensor {
        if dedupesRows && mode == .inference && x.rows > 2, let d = Self.distinctRows(x) { return forwardDistinct(x, d) }
        return forwardRows(x)
    }

    /// `forward` on every row of `x` as it is.
    func forwardRows(_ x: Tensor) -> Tensor {
        if mode == .inference, let folded = foldedLayers {
            var h = x
            var hb: BF16Buffer? = nil
            for l in folded {
                h = l.forward(h, xBF16: hb)
                hb = l.lastOutputBF16
            }
            return h
        }
        var h = x
        var hb: BF16Buffer? = nil
        for (i, l) in layers.enumerated() {
            h = l.forward(h, xBF16: hb)
            hb = l.lastOutputBF16
            if i < norms.count { h = norms[i].forward(h) }
            if i < dropouts.count { dropouts[i].forward(h) }
        }
        return h
    }

    /// Backward from `dy [B, sizes.last]`; returns `dx [B, sizes.first]` when `needInputGradient`.
    @discardableResult
    public func backward(_ dy: Tensor, needInputGradient: Bool) -> Tensor? {
        var g: Tensor = dy
        for (i, l) in layers.enumerated().reversed() {
            if i < dropouts.count { dropouts[i].backward(g) }
            if i < norms.count { g = norms[i].backward(g) }
            guard let next = l.backward(g, needInputGradient: i > 0 || needInputGradient) else { return nil }
            g = next
        }
        return g
    }
}
