import HerdTensor

/// A stack of `Linear` layers, ReLU between them; the last layer's activation is configurable
/// (DLRM's bottom MLP ends in ReLU, a top MLP producing a logit does not).
///
/// `sizes` lists widths including the input: `[13, 512, 256, 64, 16]` is 13 → 512 → 256 → 64 → 16.
public final class MLP: @unchecked Sendable {
    public let sizes: [Int]
    public let layers: [Linear]

    public init(name: String, sizes: [Int], lastActivation: Activation, precision: Precision = .fp32, rng: inout SplitMix64) {
        precondition(sizes.count >= 2, "an MLP needs at least an input and an output size")
        self.sizes = sizes
        var layers: [Linear] = []
        for i in 0..<(sizes.count - 1) {
            let act: Activation = i == sizes.count - 2 ? lastActivation : .relu
            layers.append(Linear(name: "\(name).\(i)", inputs: sizes[i], outputs: sizes[i + 1], activation: act, precision: precision, rng: &rng))
        }
        self.layers = layers
    }

    /// A replica sharing weights (see `Linear.init(sharing:)`).
    public init(sharing other: MLP) {
        sizes = other.sizes
        layers = other.layers.map { Linear(sharing: $0) }
    }

    public var parameters: [Parameter] { layers.flatMap(\.parameters) }
    public var precision: Precision { layers[0].precision }
    public var inputs: Int { sizes.first! }
    public var outputs: Int { sizes.last! }

    /// Multiply–accumulates per sample in the forward pass.
    public var macsPerSample: Int { zip(sizes, sizes.dropFirst()).reduce(0) { $0 + $1.0 * $1.1 } }

    /// `x [B, sizes.first]` → `[B, sizes.last]` (owned by the last layer).
    public func forward(_ x: Tensor) -> Tensor {
        var h = x
        for l in layers { h = l.forward(h) }
        return h
    }

    /// Backward from `dy [B, sizes.last]`; returns `dx [B, sizes.first]` when `needInputGradient`.
    @discardableResult
    public func backward(_ dy: Tensor, needInputGradient: Bool) -> Tensor? {
        var g: Tensor? = dy
        for (i, l) in layers.enumerated().reversed() {
            g = l.backward(g!, needInputGradient: i > 0 || needInputGradient)
        }
        return g
    }
}
