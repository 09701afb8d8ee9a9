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
    private var invStd: [Float] = []
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
    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.columns == features, "BatchNorm expects \(features) features, got \(x.columns)")
        let b = x.rows, o = features
        let y = Tensor.ensure(output, shape: [b, o])
        output = y
        let g = gamma.value.data, bt = beta.value.data
        switch mode {
        case .inference:
            for j in 0..<o {
                let s = g[j] / (runningVar[j] + epsilon).squareRoot(), m = runningMean[j]
                for r in 0..<b {
                    let v = s * (x.data[r * o + j] - m) + bt[j]
                    y.data[r * o + j] = relu ? max(v, 0) : v
                }
            }
        case .training:
            let xh = Tensor.ensure(xhat, shape: [b, o])
            xhat = xh
            var mean = [Float](repeating: 0, count: o), variance = [Float](repeating: 0, count: o)
            for r in 0..<b { for j in 0..<o { mean[j] += x.data[r * o + j] } }
            for j in 0..<o { mean[j] /= Float(b) }
            for r in 0..<b { for j in 0..<o { let d = x.data[r * o + j] - mean[j]; variance[j] += d * d } }
            for j in 0..<o { variance[j] /= Float(b) }
            invStd = variance.map { 1 / ($0 + epsilon).squareRoot() }
            for r in 0..<b {
                for j in 0..<o {
                    let h = (x.data[r * o + j] - mean[j]) * invStd[j]
                    xh.data[r * o + j] = h
                    let v = g[j] * h + bt[j]
                    y.data[r * o + j] = relu ? max(v, 0) : v
                }
            }
            if updatesRunningStatistics {
                let unbiased = b > 1 ? Float(b) / Float(b - 1) : 1
                for j in 0..<o {
                    runningMean[j] = (1 - momentum) * runningMean[j] + momentum * mean[j]
                    runningVar[j] = (1 - momentum) * runningVar[j] + momentum * variance[j] * unbiased
                }
            }
        }
        return y
    }

    /// Backward (training mode) from `dy [B, O]`, modified in place by the ReLU's backward;
    /// accumulates `γ`, `β` gradients and returns `dx [B, O]`.
    public func backward(_ dy: Tensor) -> Tensor {
        guard let xh = xhat, let y = output, case .training = mode else { preconditionFailure("BatchNorm.backward needs a training forward") }
        let b = dy.rows, o = features
        if relu { Kernels.reluBackward(dy.data, output: y.data, count: b * o) }
        var sumDy = [Float](repeating: 0, count: o), sumDyXh = [Float](repeating: 0, count: o)
        for r in 0..<b {
            for j in 0..<o {
                let d = dy.data[r * o + j]
                sumDy[j] += d
                sumDyXh[j] += d * xh.data[r * o + j]
            }
        }
        for j in 0..<o {
            beta.grad[j] += sumDy[j]
            gamma.grad[j] += sumDyXh[j]
        }
        let dx = Tensor.ensure(inputGrad, shape: [b, o])
        inputGrad = dx
        let inv = 1 / Float(b)
        for r in 0..<b {
            for j in 0..<o {
                let k = gamma.value[j] * invStd[j]
                dx.data[r * o + j] = k * (dy.data[r * o + j] - inv * sumDy[j] - xh.data[r * o + j] * inv * sumDyXh[j])
            }
        }
        return dx
    }
}

/// Inverted dropout: in training, zeroes each element with probability `rate` and scales the rest
/// by `1/(1−rate)`; the identity at inference. The mask depends only on (`seed`, step, shard), so
/// a resumed run draws the same masks.
public final class Dropout: @unchecked Sendable {
    public let rate: Float
    public let seed: UInt64
    public var mode: ForwardMode = .inference
    private var mask: [Float] = []

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
        if mask.count < x.count { mask = [Float](repeating: 0, count: x.count) }
        for i in 0..<x.count {
            let m: Float = rng.nextUniform() < rate ? 0 : keep
            mask[i] = m
            x[i] *= m
        }
    }

    /// In place on `dy`, the same mask as the forward.
    public func backward(_ dy: Tensor) {
        guard case .training = mode, rate > 0 else { return }
        for i in 0..<dy.count { dy[i] *= mask[i] }
    }
}
