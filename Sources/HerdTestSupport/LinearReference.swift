import HerdLayers
import HerdTensor

/// A `Linear` layer's forward by a plain double-precision loop, the reference its kernels are
/// checked against: `y [B, O] = act(x [B, I] · Wᵀ + b)`, rounded to Float at the end.
public func linearReference(_ l: Linear, _ x: Tensor) -> [Float] {
    var y: [Float] = []
    y.reserveCapacity(x.rows * l.outputs)
    for s in 0..<x.rows {
        for o in 0..<l.outputs {
            var a = Double(l.bias.value[o])
            for c in 0..<l.inputs { a += Double(x[s, c]) * Double(l.weight.value[o * l.inputs + c]) }
            y.append(Float(l.activation == .relu ? max(a, 0) : a))
        }
    }
    return y
}
