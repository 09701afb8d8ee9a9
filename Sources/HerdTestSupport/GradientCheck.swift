import HerdTensor

/// Finite-difference gradient checking for layers and models.
///
/// For each checked element `θ`, compares the analytic gradient with the central difference
/// `(L(θ+ε) − L(θ−ε)) / 2ε` of a scalar loss, accepting `|a − n| ≤ atol + rtol·max(|a|, |n|)`.
/// FP32 forward passes limit accuracy: use ε ≈ 1e-2…1e-3, small inputs away from ReLU kinks.
public struct GradientCheck {
    public var epsilon: Float = 1e-3
    public var absoluteTolerance: Float = 2e-3
    public var relativeTolerance: Float = 2e-2
    /// Elements checked per tensor at most (spread evenly).
    public var maxElementsPerTensor: Int = 64

    public init() {}

    /// One disagreement between analytic and numeric gradients.
    public struct Mismatch: CustomStringConvertible {
        public let tensor: String
        public let index: Int
        public let analytic: Float
        public let numeric: Float
        public var description: String { "\(tensor)[\(index)]: analytic \(analytic), numeric \(numeric)" }
    }

    /// Checks `analytic[i] ≈ ∂loss/∂value[i]` for every named tensor, perturbing `value` in place
    /// (and restoring it). `loss` must recompute the forward pass from scratch.
    public func check(_ tensors: [(name: String, value: Tensor, analytic: [Float])], loss: () -> Double) -> [Mismatch] {
        var out: [Mismatch] = []
        for (name, value, analytic) in tensors {
            precondition(analytic.count == value.count, "\(name): \(analytic.count) gradients for \(value.count) values")
            let step = max(1, value.count / maxElementsPerTensor)
            var i = 0
            while i < value.count {
                let saved = value[i]
                value[i] = saved + epsilon
                let lp = loss()
                value[i] = saved - epsilon
                let lm = loss()
                value[i] = saved
                let numeric = Float((lp - lm) / Double(2 * epsilon))
                let a = analytic[i]
                if abs(a - numeric) > absoluteTolerance + relativeTolerance * max(abs(a), abs(numeric)) {
                    out.append(Mismatch(tensor: name, index: i, analytic: a, numeric: numeric))
                }
                i += step
            }
        }
        return out
    }
}

/// A sparse row gradient expanded to a dense `[N, D]` array (zeros for rows not touched).
public func densify(_ g: SparseRowGradient, rows: Int) -> [Float] {
    var out = [Float](repeating: 0, count: rows * g.dimension)
    for (j, id) in g.ids.enumerated() {
        for k in 0..<g.dimension { out[Int(id) * g.dimension + k] += g.rows[j * g.dimension + k] }
    }
    return out
}

/// `Σ_i c[i] · y[i]`, the linear probe loss used by gradient checks (its gradient w.r.t. `y` is `c`).
public func probeLoss(_ y: Tensor, _ c: [Float]) -> Double {
    var s = 0.0
    for i in 0..<y.count { s += Double(c[i]) * Double(y[i]) }
    return s
}
