import HerdTensor

/// Activation applied after a `Linear` layer (fused into its bias add).
public enum Activation: String, Sendable, Codable {
    case none, relu
}

/// Fully connected layer `y[B, O] = act(x[B, I] · Wᵀ + b)`.
///
/// `weight` is `[O, I]` and `bias` `[O]` (PyTorch's `nn.Linear` layout, so exported weights load
/// into PyTorch as they are). Forward keeps a reference to its input and owns its output buffer;
/// backward accumulates `dW += dyᵀ · x`, `db += Σ_b dy` and returns `dx = dy · W` when asked.
///
/// With `precision == .bf16` the three GEMMs take BF16 operands with FP32 accumulation
/// (`gemmBF16`); the weight stays an FP32 master copy. Each operand is rounded once per step: `x`
/// and `W` in forward (kept for backward: `dW` reads `x`, `dx` reads `W`), `dy` once in backward.
/// Rounding is fused into the element-wise passes that touch the data anyway: `dy` in the ReLU
/// backward + bias-gradient pass, and (with `emitsBF16Output`) the output in the bias + ReLU
/// pass, so an MLP's next BF16 layer takes its input already rounded.
/// The weight is re-rounded at every forward rather than cached across steps: training changes it
/// every step, and rounding `O·I` values costs about `1/B` of the forward GEMM.
public final class Linear: @unchecked Sendable {
    public let inputs: Int
    public let outputs: Int
    public let activation: Activation
    public let precision: Precision
    public let weight: Parameter
    public let bias: Parameter
    /// Input columns holding one-hot (or count) indicators, mostly zeros: multiplied by scanning
    /// for their nonzeros instead of by GEMM, and given no input gradient (`dx` is 0 there — ids
    /// have none). FP32 only; nil: every column is dense. See `Linear+IndicatorColumns.swift`.
    public var indicatorColumns: Range<Int>? {
        didSet {
            if let r = indicatorColumns { precondition(r.lowerBound >= 0 && r.upperBound <= inputs, "indicator columns \(r) outside 0..<\(inputs)") }
        }
    }

    private var input: Tensor?
    private var output: Tensor?
    private var inputGrad: Tensor?
    // BF16 copies of this step's operands (bf16 precision only).
    /// The indicator block of the weight, transposed (`[|indicatorColumns|, O]`), and its gradient.
    var indicatorWeightT: [Float] = []
    var indicatorGradT: [Float] = []
    private var inputBF16: BF16Buffer?
    private var weightBF16: BF16Buffer?
    private var outputGradBF16: BF16Buffer?
    var outputBF16: BF16Buffer?
    /// Inference only (`freezeForInference`): the weight rounded to BF16 once, shared by replicas.
    private var frozenWeightBF16: BF16Buffer?
    /// Inference only, on CPUs with AVX512_BF16: the BF16 weight packed for `PackedBF16Weight`.
    private var packedWeight: PackedBF16Weight?
    /// Inference only, FP32 layers without indicator columns on AVX-512 CPUs: the weight packed
    /// once for `PackedF32Weight` (bias and activation fused), shared by replicas.
    var packedWeightF32: PackedF32Weight?
    /// Whether the weight is frozen for inference (see `freezeForInference`).
    public private(set) var isFrozen = false
    /// Inference only (set before `freezeForInference`; FP32 layers): input columns that hold one
    /// value in every row of a batch are multiplied once per batch instead of once per row (an
    /// MLP's first layer when ranking one user's candidates). See `Linear+UniformColumns.swift`.
    public var hoistsUniformColumns = false
    /// With `hoistsUniformColumns`: the weight transposed (`[I, O]`, frozen, shared by replicas),
    /// this replica's plans per set of uniform columns, the gathered GEMM input and `bias + W·x_U`.
    var weightT: [Float] = []
    /// Columns hoisted by the last forward (0: none, or the plain path), and the multiply–adds it
    /// executed (`B·I·O` on the plain dense path; fewer with indicator columns or hoisting).
    public internal(set) var lastHoistedColumns = 0
    public internal(set) var lastForwardMACs = 0
    var uniformPlans: [UniformColumnsPlan] = []
    var gatheredInput: Tensor?
    var shared: [Float] = []
    /// With `hoistsUniformColumns` on the fused path: this batch's nonzero non-uniform indicator
    /// entries per row (offsets `[B + 1]`, columns, values), the kernel's sparse terms.
    var sparseRowStart: [Int32] = []
    var sparseTermColumns: [Int32] = []
    var sparseTermValues: [Float] = []
    /// Inference only, with `hoistsUniformColumns` on the fused path: each row's contribution
    /// before bias (`xg·Wgᵀ + Σ sparse terms`) cached by exactly what produced it, shared by
    /// replicas made afterwards (nil: none). See `Linear+RowCache.swift`.
    public var rowCache: RowContributionCache?
    /// This replica's buffers for `rowCache` (keys, misses).
    var rowCacheScratch: RowCacheScratch?
    /// Whether forward also leaves its output rounded to BF16 (`lastOutputBF16`), written by the
    /// bias/activation epilogue — set by `MLP` when the next layer is BF16 and reads this output
    /// directly (no batch norm or dropout between), so that layer does not round it again.
    public var emitsBF16Output = false
    /// Inference only (frozen layers, with `emitsBF16Output`): the fused kernels write only the
    /// rounded output, not the FP32 one — `forward`'s returned tensor (and `lastOutput`) then has
    /// the right shape but stale values. Set by `MLP.freezeForInference` on layers whose output
    /// only feeds the next BF16 layer, which reads `lastOutputBF16`.
    ///
    /// NOTE: the FP32 stores were ≈ 8 % of the fused first layer's time at a 512-row batch
    /// (2 MB per forward, beyond L2) and are never read when the next layer is BF16.
    public var omitsFP32Output = false

    /// A layer with DLRM's initialisation: `W ~ N(0, 2/(I+O))`, `b ~ N(0, 1/O)`.
    public init(name: String, inputs: Int, outputs: Int, activation: Activation, precision: Precision = .fp32, rng: inout SplitMix64) {
        self.inputs = inputs
        self.outputs = outputs
        self.activation = activation
        self.precision = precision
        let w = Tensor(shape: [outputs, inputs])
        let ws = (2 / Float(inputs + outputs)).squareRoot()
        for i in 0..<w.count { w[i] = rng.nextGaussian() * ws }
        let b = Tensor(shape: [outputs])
        let bs = (1 / Float(outputs)).squareRoot()
        for i in 0..<b.count { b[i] = rng.nextGaussian() * bs }
        weight = Parameter(name: "\(name).weight", value: w)
        bias = Parameter(name: "\(name).bias", value: b)
    }

    /// A layer sharing `other`'s weight values with gradients and buffers of its own (a
    /// data-parallel replica).
    public init(sharing other: Linear) {
        inputs = other.inputs
        outputs = other.outputs
        activation = other.activation
        precision = other.precision
        weight = Parameter(name: other.weight.name, value: other.weight.value)
        bias = Parameter(name: other.bias.name, value: other.bias.value)
        indicatorColumns = other.indicatorColumns
        emitsBF16Output = other.emitsBF16Output
        omitsFP32Output = other.omitsFP32Output
        isFrozen = other.isFrozen
        frozenWeightBF16 = other.frozenWeightBF16
        packedWeight = other.packedWeight
        packedWeightF32 = other.packedWeightF32
        if other.isFrozen { indicatorWeightT = other.indicatorWeightT }
        hoistsUniformColumns = other.hoistsUniformColumns
        if other.isFrozen { weightT = other.weightT }
        rowCache = other.rowCache
    }

    /// Inference only: derives once what every forward would otherwise derive from the weight —
    /// its BF16 copy (bf16 precision; for the active backend) and the transposed indicator block
    /// (FP32 with `indicatorColumns`) — and keeps them for every later forward and for replicas
    /// made afterwards (`init(sharing:)`, which share them instead of copying).
    ///
    /// NOTE: serving rounds the weights once at load rather than per request (training must not
    /// freeze: its weights change every step and `backward` refuses a frozen layer). Call it after
    /// the weights are loaded and before the layer is shared between threads.
    public func freezeForInference() {
        if precision == .bf16 {
            if PackedBF16Weight.available && BF16GEMM.backend.packed {
                packedWeight = PackedBF16Weight(weight.value.data, ldw: inputs, n: outputs, k: inputs)
            } else {
                frozenWeightBF16 = BF16Buffer.ensure(nil, from: weight.value.data, count: outputs * inputs)
            }
        } else if hoistsUniformColumns {
            transposeWeight()
        } else if let r = indicatorColumns, !r.isEmpty {
            transposeIndicatorWeight(r)
        }
        if precision == .fp32, indicatorColumns?.isEmpty ?? true, Self.packsF32(outputs: outputs) {
            packedWeightF32 = PackedF32Weight(weight.value.data, ldw: inputs, n: outputs, k: inputs)
        }
        isFrozen = true
    }

    /// Whether a frozen FP32 product with `outputs` columns runs on `PackedF32Weight`.
    /// NOTE: below one 16-column panel (a logit layer, `O = 1`) the kernel would compute 16
    /// columns for one; OpenBLAS's matrix–vector product takes those.
    static func packsF32(outputs: Int) -> Bool { PackedF32Weight.available && outputs >= 16 }

    public var parameters: [Parameter] { [weight, bias] }

    /// The output of the last forward pass.
    public var lastOutput: Tensor? { output }
    /// The output of the last forward pass rounded to BF16 (only with `emitsBF16Output`).
    public var lastOutputBF16: BF16Buffer? { emitsBF16Output ? outputBF16 : nil }

    /// `x [B, I]` → `y [B, O]`. The returned tensor is owned by the layer and reused by the next call.
    ///
    /// `xBF16`: `x` already rounded to BF16 (the previous layer's `lastOutputBF16`), used instead
    /// of rounding `x` again; ignored unless `precision == .bf16` and it holds `B·I` elements in
    /// the active format.
    public func forward(_ x: Tensor, xBF16: BF16Buffer? = nil) -> Tensor {
        precondition(x.columns == inputs, "Linear expects \(inputs) inputs, got \(x.columns)")
        let b = x.rows
        let y = Tensor.ensure(output, shape: [b, outputs])
        output = y
        input = x
        lastHoistedColumns = 0
        lastForwardMACs = b * inputs * outputs
        if precision == .bf16 {
            let xb: BF16Buffer
            if let given = xBF16, given.count == b * inputs, given.packed == BF16GEMM.backend.packed {
                xb = given
            } else {
                // NOTE: never refill a buffer borrowed from the previous layer.
                xb = BF16Buffer.ensure(inputBF16 === xBF16 ? nil : inputBF16, from: x.data, count: b * inputs)
            }
            if let pw = packedWeight, xb.packed {
                inputBF16 = xb
                // Bias, activation and (feeding a BF16 layer) the rounded output on the kernel's registers.
                var ob: BF16Buffer? = nil
                if emitsBF16Output {
                    if let o = outputBF16, o.capacity >= b * outputs, o.packed { ob = o } else { ob = BF16Buffer(capacity: b * outputs, packed: true) }
                    outputBF16 = ob
                }
                pw.multiply(m: b, a: xb, lda: inputs, bias: bias.value.data, relu: activation == .relu,
                            c: omitsFP32Output && ob != nil ? nil : y.data, ldc: outputs, output: ob)
                return y
            } else {
                let wb: BF16Buffer
                if let f = frozenWeightBF16, f.packed == BF16GEMM.backend.packed { wb = f } else { wb = BF16Buffer.ensure(weightBF16, from: weight.value.data, count: outputs * inputs) }
                inputBF16 = xb
                weightBF16 = wb
                gemmBF16(.none, .transposed, m: b, n: outputs, k: inputs, a: xb, lda: inputs, b: wb, ldb: inputs, c: y.data, ldc: outputs)
            }
        } else if isFrozen && hoistsUniformColumns && b >= 2 && !weightT.isEmpty && forwardHoistingUniformColumns(x, y) {
            return y
        } else if let r = indicatorColumns, !r.isEmpty {
            forwardWithIndicators(x, y, r)
        } else if let pw = packedWeightF32 {
            if !emitsBF16Output {
                pw.multiply(m: b, a: x.data, lda: inputs, bias: bias.value.data, relu: activation == .relu, c: y.data, ldc: outputs)
                return y
            }
            pw.multiply(m: b, a: x.data, lda: inputs, c: y.data, ldc: outputs)
        } else if !emitsBF16Output {
            // GEMM, bias and activation in one call (fused on oneDNN's matmul backend).
            gemmBiasActivation(.none, .transposed, m: b, n: outputs, k: inputs, a: x.data, lda: inputs, b: weight.value.data, ldb: inputs,
                               bias: bias.value.data, relu: activation == .relu, c: y.data, ldc: outputs)
            return y
        } else {
            gemm(.none, .transposed, m: b, n: outputs, k: inputs, a: x.data, lda: inputs, b: weight.value.data, ldb: inputs, c: y.data, ldc: outputs)
        }
        if emitsBF16Output {
            let ob: BF16Buffer
            if let o = outputBF16, o.capacity >= b * outputs, o.packed == BF16GEMM.backend.packed { ob = o } else { ob = BF16Buffer(capacity: b * outputs) }
            outputBF16 = ob
            ob.assignBiasActivation(y.data, rows: b, cols: outputs, bias: bias.value.data, relu: activation == .relu)
            return y
        }
        switch activation {
        case .none: Kernels.addBias(y.data, rows: b, cols: outputs, ld: outputs, bias: bias.value.data)
        case .relu: Kernels.addBiasReLU(y.data, rows: b, cols: outputs, ld: outputs, bias: bias.value.data)
        }
        return y
    }

    /// Backward from `dy [B, O]` (modified in place by the activation's backward). Accumulates into
    /// `weight.grad` and `bias.grad`; returns `dx [B, I]` when `needInputGradient`.
    @discardableResult
    public func backward(_ dy: Tensor, needInputGradient: Bool) -> Tensor? {
        precondition(!isFrozen, "Linear.backward on a layer frozen for inference")
        guard let x = input, let y = output else { preconditionFailure("Linear.backward before forward") }
        let b = x.rows
        precondition(dy.rows == b && dy.columns == outputs, "Linear.backward: dy is \(dy.shape), expected [\(b), \(outputs)]")
        let mask: UnsafePointer<Float>? = activation == .relu ? UnsafePointer(y.data) : nil
        if precision == .bf16 {
            guard let xb = inputBF16, let wb = weightBF16 else { preconditionFailure("Linear.backward before forward") }
            // ReLU backward, bias gradient and rounding of dy in one pass.
            let dyb: BF16Buffer
            if let o = outputGradBF16, o.capacity >= b * outputs, o.packed == BF16GEMM.backend.packed { dyb = o } else { dyb = BF16Buffer(capacity: b * outputs) }
            outputGradBF16 = dyb
            dyb.assignGradient(dy.data, reluOutput: mask, rows: b, cols: outputs, columnSums: bias.grad.data)
            // dW[O, I] += dyᵀ[O, B] · x[B, I]
            gemmBF16(.transposed, .none, m: outputs, n: inputs, k: b, a: dyb, lda: outputs, b: xb, ldb: inputs, beta: 1, c: weight.grad.data, ldc: inputs)
            guard needInputGradient else { return nil }
            let dx = Tensor.ensure(inputGrad, shape: [b, inputs])
            inputGrad = dx
            // dx[B, I] = dy[B, O] · W[O, I]
            gemmBF16(.none, .none, m: b, n: inputs, k: outputs, a: dyb, lda: outputs, b: wb, ldb: inputs, c: dx.data, ldc: inputs)
            return dx
        }
        Kernels.reluBackwardColumnSums(dy.data, reluOutput: mask, rows: b, cols: outputs, into: bias.grad.data)
        if let r = indicatorColumns, !r.isEmpty {
            let dx = needInputGradient ? Tensor.ensure(inputGrad, shape: [b, inputs]) : nil
            if let dx { inputGrad = dx }
            backwardWithIndicators(x, dy, dx, r)
            return dx
        }
        // dW[O, I] += dyᵀ[O, B] · x[B, I]
        gemm(.transposed, .none, m: outputs, n: inputs, k: b, a: dy.data, lda: outputs, b: x.data, ldb: inputs, beta: 1, c: weight.grad.data, ldc: inputs)
        guard needInputGradient else { return nil }
        let dx = Tensor.ensure(inputGrad, shape: [b, inputs])
        inputGrad = dx
        // dx[B, I] = dy[B, O] · W[O, I]
        gemm(.none, .none, m: b, n: inputs, k: outputs, a: dy.data, lda: outputs, b: weight.value.data, ldb: inputs, c: dx.data, ldc: inputs)
        return dx
    }
}
