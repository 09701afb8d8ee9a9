import HerdTensor

/// Whether a forward pass trains (batch statistics, dropout) or infers (running statistics, no
/// dropout), and for training which step and data-parallel shard it is — the seed of dropout
/// masks, so a resumed run draws the same masks.
public enum ForwardMode: Sendable, Equatable {
    case inference
    case training(step: Int, shard: Int)
}

/// Batch normalisation over the batch dimension of `[B, O]`, optionally followed by ReLU:
/// `y = act(γ · (x − μ) / √(σ² + ε) + β)`.
///
/// Training uses the batch's mean and (biased) variance and updates the running statistics
/// (`r ← (1 − m)·r + m·batch`, the running variance unbiased as in PyTorch); inference uses the
/// running statistics. `γ`, `β` are parameters; the running statistics are buffers (exported, not
/// trained). In data-parallel training every shard normalises with its own statistics and only the
/// primary replica updates the running ones.
public final class BatchNorm: @unchecked Sendable {
    public let features: Int
    public let relu: Bool
    public let epsilon: Float
    public let momentum: Float
    public let gamma: Parameter
    public let beta: Parameter
    public let runningMean: Tensor
    public let runningVar: Tensor
    let updatesRunningStatistics: Bool
    public var mode: ForwardMode = .inference

    private var xhat: Tensor?
    private var output: Tensor?
    /// Per feature: batch mean, inverse std, and scratch (`[4, O]`).
    private var stats: [Float] = []
    /// Backward scratch (`[4, O]`).
    private var sums: [Float] = []
    private var inputGrad: Tensor?

    public init(name: String, features: Int, relu: Bool, epsilon: Float = 1e-5, momentum: Float = 0.1) {
        self.features = features
        self.relu = relu
        self.epsilon = epsilon
        self.momentum = momentum
        let g = Tensor(shape: [features])
        g.fill(1)
        gamma = Parameter(name: "\(name).weight", value: g)
        beta = Parameter(name: "\(name).bias", value: Tensor(shape: [features]))
        runningMean = Tensor(shape: [features])
        runningVar = Tensor(shape: [features])
        runningVar.fill(1)
        updatesRunningStatistics = true
    }

    /// A replica sharing parameters and running statistics (which it does not update).
    public init(sharing o: BatchNorm) {
        features = o.features
        relu = o.relu
        epsilon = o.epsilon
        momentum = o.momentum
        gamma = Parameter(name: o.gamma.name, value: o.gamma.value)
        beta = Parameter(name: o.beta.name, value: o.beta.value)
        runningMean = o.runningMean
        runningVar = o.runningVar
        updatesRunningStatistics = false
    }

    public var parameters: [Parameter] { [gamma, beta] }
    /// Running statistics by export name (`<name>.running_mean`, `<name>.running_var`).
    public var buffers: [(String, Tensor)] {
        let base = String(gamma.name.dropLast(".weight".count))
        return [("\(base).running_mean", runningMean), ("\(base).running_var", runningVar)]
    }

    /// `x [B, O]` → `y [B, O]` (owned by the layer).
    ///
    /// NOTE: every loop runs over rows with the feature index innermost, on raw pointers, so it
    /// is contiguous and vectorises; per-feature statistics live in `stats` (mean, inverse std,
    /// scale, shift) and the ReLU is a separate branch, not a per-element test.
    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.columns == features, "BatchNorm expects \(features) features, got \(x.columns)")
        let b = x.rows, o = features
        let y = Tensor.ensure(output, shape: [b, o])
        output = y
        if stats.count < 4 * o { stats = [Float](repeating: 0, count: 4 * o) }
        let g = gamma.value.data, bt = beta.value.data, xp = x.data, yp = y.data
        stats.withUnsafeMutableBufferPointer { st in
            let mean = st.baseAddress!, inv = mean + o, scale = inv + o, shift = scale + o
            switch mode {
            case .inference:
                for j in 0..<o {
                    inv[j] = 1 / (runningVar[j] + epsilon).squareRoot()
                    scale[j] = g[j] * inv[j]
                    shift[j] = bt[j] - runningMean[j] * scale[j]
                }
                BatchNorm.affine(xp, yp, rows: b, cols: o, scale: scale, shift: shift, relu: relu)
            case .training:
                let xh = Tensor.ensure(xhat, shape: [b, o])
                xhat = xh
                let var_ = scale  // variance, before scale is needed
                mean.update(repeating: 0, count: o)
                var_.update(repeating: 0, count: o)
                for r in 0..<b {
                    let row = xp + r * o
                    for j in 0..<o { mean[j] += row[j] }
                }
                let invB = 1 / Float(b)
                for j in 0..<o { mean[j] *= invB }
                for r in 0..<b {
                    let row = xp + r * o
                    for j in 0..<o {
                        let d = row[j] - mean[j]
                        var_[j] += d * d
                    }
                }
                for j in 0..<o { var_[j] *= invB }
                if updatesRunningStatistics {
                    let unbiased = b > 1 ? Float(b) / Float(b - 1) : 1
                    for j in 0..<o {
                        runningMean[j] = (1 - momentum) * runningMean[j] + momentum * mean[j]
                        runningVar[j] = (1 - momentum) * runningVar[j] + momentum * var_[j] * unbiased
                    }
                }
                for j in 0..<o { inv[j] = 1 / (var_[j] + epsilon).squareRoot() }
                // x̂ = (x − μ)·inv; y = act(γ·x̂ + β)
                let xhp = xh.data
                for j in 0..<o { shift[j] = -mean[j] * inv[j] }
                BatchNorm.affine(xp, xhp, rows: b, cols: o, scale: inv, shift: shift, relu: false)
                BatchNorm.affine(xhp, yp, rows: b, cols: o, scale: g, shift: bt, relu: relu)
            }
        }
        return y
    }

    /// `y[r, j] = act(x[r, j]·scale[j] + shift[j])` over `[rows, cols]`.
    @inline(__always)
    static func affine(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
                       scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, relu: Bool) {
        if relu {
            for r in 0..<rows {
                let xr = x + r * cols, yr = y + r * cols
                for j in 0..<cols { yr[j] = max(xr[j] * scale[j] + shift[j], 0) }
            }
        } else {
            for r in 0..<rows {
                let xr = x + r * cols, yr = y + r * cols
                for j in 0..<cols { yr[j] = xr[j] * scale[j] + shift[j] }
            }
        }
    }

    /// Backward (training mode) from `dy [B, O]`, modified in place by the ReLU's backward;
    /// accumulates `γ`, `β` gradients and returns `dx [B, O]`.
    public func backward(_ dy: Tensor) -> Tensor {
        guard let xh = xhat, let y = output, case .training = mode else { preconditionFailure("BatchNorm.backward needs a training forward") }
        let b = dy.rows, o = features
        if relu { Kernels.reluBackward(dy.data, output: y.data, count: b * o) }
        let dx = Tensor.ensure(inputGrad, shape: [b, o])
        inputGrad = dx
        if sums.count < 4 * o { sums = [Float](repeating: 0, count: 4 * o) }
        let dyp = dy.data, xhp = xh.data, dxp = dx.data, g = gamma.value.data
        sums.withUnsafeMutableBufferPointer { sm in
            let sumDy = sm.baseAddress!, sumDyXh = sumDy + o, k = sumDyXh + o, c = k + o
            sumDy.update(repeating: 0, count: o)
            sumDyXh.update(repeating: 0, count: o)
            for r in 0..<b {
                let d = dyp + r * o, h = xhp + r * o
                for j in 0..<o {
                    sumDy[j] += d[j]
                    sumDyXh[j] += d[j] * h[j]
                }
            }
            let gb = beta.grad.data, gg = gamma.grad.data
            for j in 0..<o {
                gb[j] += sumDy[j]
                gg[j] += sumDyXh[j]
            }
            // dx = γ·inv·(dy − mean(dy) − x̂·mean(dy·x̂))
            let inv = 1 / Float(b)
            stats.withUnsafeBufferPointer { st in
                let invStd = st.baseAddress! + o
                for j in 0..<o {
                    k[j] = g[j] * invStd[j]
                    c[j] = -inv * sumDy[j]
                    sumDyXh[j] *= inv
                }
            }
            for r in 0..<b {
                let d = dyp + r * o, h = xhp + r * o, out = dxp + r * o
                for j in 0..<o { out[j] = k[j] * (d[j] + c[j] - h[j] * sumDyXh[j]) }
            }
        }
        return dx
    }
}

/// Inverted dropout: in training, zeroes each element with probability `rate` and scales the rest
/// by `1/(1−rate)`; the identity at inference. The mask depends only on (`seed`, step, shard), so
/// a resumed run draws the same masks.
///
/// NOTE: each 64-bit draw gives two elements' 32-bit uniforms (dropped when below
/// `rate · 2³²`), and the mask is one byte per element applied in a separate, vectorisable loop.
public final class Dropout: @unchecked Sendable {
    public let rate: Float
    public let seed: UInt64
    public var mode: ForwardMode = .inference
    private var mask: [UInt8] = []

    public init(rate: Float, seed: UInt64) {
        precondition(rate >= 0 && rate < 1, "dropout rate must be in [0, 1)")
        self.rate = rate
        self.seed = seed
    }

    /// In place on `x [B, O]`.
    public func forward(_ x: Tensor) {
        guard case .training(let step, let shard) = mode, rate > 0 else { return }
        var rng = SplitMix64(seed: seed ^ (UInt64(step) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(shard) &* 0xC2B2_AE3D_27D4_EB4F))
        let keep = 1 / (1 - rate)
        let n = x.count
        if mask.count < n + 1 { mask = [UInt8](repeating: 0, count: n + 1) }
        let threshold = UInt32(min(Double(rate) * 4_294_967_296.0, 4_294_967_295.0))
        mask.withUnsafeMutableBufferPointer { mb in
            let m = mb.baseAddress!
            var i = 0
            while i < n {
                let r = rng.next()
                m[i] = UInt32(truncatingIfNeeded: r) >= threshold ? 1 : 0
                m[i + 1] = UInt32(truncatingIfNeeded: r >> 32) >= threshold ? 1 : 0
                i += 2
            }
            let xp = x.data
            for i in 0..<n { xp[i] = m[i] != 0 ? xp[i] * keep : 0 }
        }
    }

    /// In place on `dy`, the same mask as the forward.
    public func backward(_ dy: Tensor) {
        guard case .training = mode, rate > 0 else { return }
        let keep = 1 / (1 - rate)
        let n = dy.count
        mask.withUnsafeBufferPointer { mb in
            let m = mb.baseAddress!, g = dy.data
            for i in 0..<n { g[i] = m[i] != 0 ? g[i] * keep : 0 }
        }
    }
}
