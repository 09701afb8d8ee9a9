import Foundation

/// Element-wise kernels on raw `[B, O]` row-major blocks. All are single-threaded: callers own the
/// parallelism (see `Parallel`). Plain loops over pointers, which LLVM vectorises.
public enum Kernels {
    /// `y[b, o] += bias[o]` for a `[rows, cols]` block with row stride `ld`.
    @inlinable
    public static func addBias(_ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int, bias: UnsafePointer<Float>) {
        for r in 0..<rows {
            let row = y + r * ld
            for j in 0..<cols { row[j] += bias[j] }
        }
    }

    /// Fused bias + ReLU: `y = max(y + bias, 0)`.
    @inlinable
    public static func addBiasReLU(_ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, ld: Int, bias: UnsafePointer<Float>) {
        for r in 0..<rows {
            let row = y + r * ld
            for j in 0..<cols { row[j] = max(row[j] + bias[j], 0) }
        }
    }

    /// ReLU backward in place: `g = y > 0 ? g : 0` where `y` is the ReLU output.
    @inlinable
    public static func reluBackward(_ g: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { g[i] = y[i] > 0 ? g[i] : 0 }
    }

    /// Column sums accumulated into `out[cols]` (`out += Σ_rows g[row, :]`): the bias gradient.
    @inlinable
    public static func accumulateColumnSums(_ g: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let row = g + r * ld
            for j in 0..<cols { out[j] += row[j] }
        }
    }

    /// Fused backward epilogue of a layer: ReLU backward in place (`g = y > 0 ? g : 0`, when
    /// `reluOutput` is given) and the bias gradient `out += Σ_rows g`, in one pass over a
    /// contiguous `[rows, cols]` block (instead of `reluBackward` then `accumulateColumnSums`).
    @inlinable
    public static func reluBackwardColumnSums(
        _ g: UnsafeMutablePointer<Float>, reluOutput y: UnsafePointer<Float>?, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>
    ) {
        guard let y else {
            accumulateColumnSums(g, rows: rows, cols: cols, ld: cols, into: out)
            return
        }
        for r in 0..<rows {
            let row = g + r &* cols, yr = y + r &* cols
            for j in 0..<cols {
                let v = yr[j] > 0 ? row[j] : 0
                row[j] = v
                out[j] += v
            }
        }
    }

    /// Logistic sigmoid, numerically stable for large |x|.
    @inlinable
    public static func sigmoid(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + expf(-x)) }
        let e = expf(x)
        return e / (1 + e)
    }

    /// Sigmoid of `count` values.
    @inlinable
    public static func sigmoid(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = sigmoid(x[i]) }
    }

    /// Fused sigmoid + binary cross-entropy over logits `z[n]` and labels `t[n]` (0 or 1).
    ///
    /// Writes `p = σ(z)` and the gradient of the *mean* loss, `dz = (p − t) · gradScale`, and returns
    /// the *summed* loss `Σ −[t log p + (1−t) log(1−p)]`, computed stably as
    /// `max(z,0) − z·t + log(1 + e^{−|z|})`. `gradScale` is usually `1 / B_total`.
    @inlinable
    @discardableResult
    public static func sigmoidBCE(
        logits z: UnsafePointer<Float>, labels t: UnsafePointer<Float>, count n: Int,
        probabilities p: UnsafeMutablePointer<Float>, gradient dz: UnsafeMutablePointer<Float>?, gradScale: Float
    ) -> Double {
        var loss = 0.0
        for i in 0..<n {
            let x = z[i]
            let e = expf(-abs(x))
            let prob: Float = x >= 0 ? 1 / (1 + e) : e / (1 + e)
            p[i] = prob
            loss += Double(max(x, 0) - x * t[i] + log1pf(e))
            if let dz { dz[i] = (prob - t[i]) * gradScale }
        }
        return loss
    }

    /// `y += alpha · x`.
    @inlinable
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] += alpha * x[i] }
    }

    /// Dot product in FP32 with 8 partial sums (vectorises without changing results across runs).
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            acc += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var s = acc.sum()
        while i < count { s += a[i] * b[i]; i += 1 }
        return s
    }
}
