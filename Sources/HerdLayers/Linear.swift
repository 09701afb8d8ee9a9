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
public final class Linear: @unchecked Sendable {
    public let inputs: Int
    public let outputs: Int
    public let activation: Activation
    public let weight: Parameter
    public let bias: Parameter

    private var input: Tensor?
    private var output: Tensor?
    private var inputGrad: Tensor?

    /// A layer with DLRM's initialisation: `W ~ N(0, 2/(I+O))`, `b ~ N(0, 1/O)`.
    public init(name: String, inputs: Int, outputs: Int, activation: Activation, rng: inout SplitMix64) {
        self.inputs = inputs
        self.outputs = outputs
        self.activation = activation
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
        weight = Parameter(name: other.weight.name, value: other.weight.value)
        bias = Parameter(name: other.bias.name, value: other.bias.value)
    }

    public var parameters: [Parameter] { [weight, bias] }

    /// The output of the last forward pass.
    public var lastOutput: Tensor? { output }

    /// `x [B, I]` → `y [B, O]`. The returned tensor is owned by the layer and reused by the next call.
    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.columns == inputs, "Linear expects \(inputs) inputs, got \(x.columns)")
        let b = x.rows
        let y = Tensor.ensure(output, shape: [b, outputs])
        output = y
        input = x
        gemm(.none, .transposed, m: b, n: outputs, k: inputs, a: x.data, lda: inputs, b: weight.value.data, ldb: inputs, c: y.data, ldc: outputs)
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
        guard let x = input, let y = output else { preconditionFailure("Linear.backward before forward") }
        let b = x.rows
        precondition(dy.rows == b && dy.columns == outputs, "Linear.backward: dy is \(dy.shape), expected [\(b), \(outputs)]")
        if activation == .relu { Kernels.reluBackward(dy.data, output: y.data, count: b * outputs) }
        // dW[O, I] += dyᵀ[O, B] · x[B, I]
        gemm(.transposed, .none, m: outputs, n: inputs, k: b, a: dy.data, lda: outputs, b: x.data, ldb: inputs, beta: 1, c: weight.grad.data, ldc: inputs)
        Kernels.accumulateColumnSums(dy.data, rows: b, cols: outputs, ld: outputs, into: bias.grad.data)
        guard needInputGradient else { return nil }
        let dx = Tensor.ensure(inputGrad, shape: [b, inputs])
        inputGrad = dx
        // dx[B, I] = dy[B, O] · W[O, I]
        gemm(.none, .none, m: b, n: inputs, k: outputs, a: dy.data, lda: outputs, b: weight.value.data, ldb: inputs, c: dx.data, ldc: inputs)
        return dx
    }
}
