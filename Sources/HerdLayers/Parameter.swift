import HerdTensor

/// A trainable dense parameter: its value and the gradient of the loss with respect to it, both of
/// the same shape. Layers own their parameters; optimizers update `value` from `grad` in place.
public final class Parameter: @unchecked Sendable {
    /// Stable name used in checkpoints and exports, e.g. `bottom.0.weight`.
    public let name: String
    public let value: Tensor
    public let grad: Tensor

    public init(name: String, value: Tensor) {
        self.name = name
        self.value = value
        self.grad = Tensor(shape: value.shape)
    }

    /// Sets the gradient to zero.
    public func zeroGrad() { grad.fill(0) }
}
