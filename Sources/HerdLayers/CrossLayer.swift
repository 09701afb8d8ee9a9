import HerdTensor

/// One DCN-v2 cross layer (Wang et al. 2021): `x_{l+1} = x₀ ⊙ (W·x_l + b) + x_l`, with a full
/// `[W, W]` weight (`W` = input width).
///
/// Forward keeps `x₀`, `x_l` and `z = W·x_l + b`; backward, from `dy [B, W]`:
/// `dz = dy ⊙ x₀`, `dx₀ += dy ⊙ z`, `dx_l = dy + dz·W`, `dW += dzᵀ·x_l`, `db += Σ dz`.
public final class CrossLayer: @unchecked Sendable {
    public let width: Int
    public let linear: Linear
    private var x0: Tensor?
    private var xl: Tensor?
    private var output: Tensor?
    private var dxl: Tensor?
    private var dz: Tensor?

    public init(name: String, width: Int, rng: inout SplitMix64) {
        self.width = width
        linear = Linear(name: name, inputs: width, outputs: width, activation: .none, rng: &rng)
    }

    public init(sharing o: CrossLayer) {
        width = o.width
        linear = Linear(sharing: o.linear)
    }

    public var parameters: [Parameter] { linear.parameters }

    /// `x0 [B, W]`, `xl [B, W]` → `x_{l+1} [B, W]` (owned by the layer).
    public func forward(x0: Tensor, xl: Tensor) -> Tensor {
        let z = linear.forward(xl)
        let b = xl.rows, w = width
        let y = Tensor.ensure(output, shape: [b, w])
        output = y
        self.x0 = x0
        self.xl = xl
        for i in 0..<(b * w) { y.data[i] = x0.data[i] * z.data[i] + xl.data[i] }
        return y
    }

    /// Backward from `dy [B, W]`: accumulates into `dx0` (`[B, W]`, caller-owned) and returns `dx_l`.
    public func backward(_ dy: Tensor, dx0: Tensor) -> Tensor {
        guard let x0, let xl, let z = linear.lastOutput else { preconditionFailure("CrossLayer.backward before forward") }
        let n = dy.count
        let g = Tensor.ensure(dz, shape: dy.shape)
        dz = g
        for i in 0..<n {
            g.data[i] = dy.data[i] * x0.data[i]
            dx0.data[i] += dy.data[i] * z.data[i]
        }
        _ = xl
        let dxFromLinear = linear.backward(g, needInputGradient: true)!
        let out = Tensor.ensure(dxl, shape: dy.shape)
        dxl = out
        for i in 0..<n { out.data[i] = dy.data[i] + dxFromLinear.data[i] }
        return out
    }
}

/// Factorization-machine second-order term over `F` field embeddings of dimension `D`:
/// `fm = ½ Σ_d [(Σ_f e_fd)² − Σ_f e_fd²]`, the sum of all pairwise dot products (DeepFM's FM part).
public enum FactorizationMachine {
    /// `e` holds row `b`'s fields at `e + b*stride + offset + f*D`; writes `fm[b]`.
    public static func forward(_ e: UnsafePointer<Float>, rows: Int, fields: Int, dimension d: Int, stride: Int, offset: Int, into fm: UnsafeMutablePointer<Float>) {
        for b in 0..<rows {
            let base = e + b * stride + offset
            var total: Float = 0
            for k in 0..<d {
                var s: Float = 0, sq: Float = 0
                for f in 0..<fields { let v = base[f * d + k]; s += v; sq += v * v }
                total += s * s - sq
            }
            fm[b] = 0.5 * total
        }
    }

    /// Adds `g[b] · (Σ_f' e_f'd − e_fd)` to the gradient of every field embedding (same layout).
    public static func backward(_ g: UnsafePointer<Float>, input e: UnsafePointer<Float>, rows: Int, fields: Int, dimension d: Int,
                                stride: Int, offset: Int, into de: UnsafeMutablePointer<Float>) {
        for b in 0..<rows {
            let base = e + b * stride + offset, dbase = de + b * stride + offset
            for k in 0..<d {
                var s: Float = 0
                for f in 0..<fields { s += base[f * d + k] }
                for f in 0..<fields { dbase[f * d + k] += g[b] * (s - base[f * d + k]) }
            }
        }
    }
}
