import Foundation
import HerdLayers
import HerdTensor

// NOTE: every update loops over raw pointers of one parameter or one table's touched rows; the
// trainer runs updates of different parameters on different cores, so slots are created under a
// lock but updated without one (each slot belongs to exactly one parameter).

/// Plain stochastic gradient descent: `w -= lr · g`.
public final class SGD: Optimizer, @unchecked Sendable {
    public let spec: String
    init(spec: String) { self.spec = spec }
    public func beginStep() {}
    public func update(_ p: Parameter, lr: Float) { Kernels.axpy(-lr, p.grad.data, p.value.data, count: p.value.count) }
    public func update(table: any EmbeddingTable, gradient g: SparseRowGradient, lr: Float) {
        let d = g.dimension
        for (j, id) in g.ids.enumerated() {
            prefetchAhead(table, g.ids, j, d)
            Kernels.axpy(-lr, g.rows.data + j * d, table.row(Int(id)), count: d)
        }
    }
    /// NOTE: the fused path — no sorted, merged row gradients; each bag's gradient is added to
    /// its rows directly (`EmbeddingBagCollection.applyScaled`).
    public func update(collection: EmbeddingBagCollection, table f: Int, lr: Float) { collection.applyScaled(table: f, alpha: -lr) }
    public var state: [(String, Tensor)] { [] }
    public func load(state: [String: Tensor]) throws {}
}

/// Adagrad: `G += g²; w -= lr · g / (√G + eps)`; with `rowwise`, tables keep one accumulator per
/// row, `G_row += mean(g_row²)` (TorchRec/FBGEMM's row-wise Adagrad).
public final class Adagrad: Optimizer, @unchecked Sendable {
    public let spec: String
    let eps: Float, initial: Float, rowwise: Bool
    let slots = Slots()
    init(spec: String, eps: Float, initial: Float, rowwise: Bool) {
        self.spec = spec; self.eps = eps; self.initial = initial; self.rowwise = rowwise
    }
    public func beginStep() {}
    public func update(_ p: Parameter, lr: Float) {
        let acc = slots.get("\(p.name).sum", shape: p.value.shape, initial: initial).data
        let w = p.value.data, g = p.grad.data
        for i in 0..<p.value.count {
            acc[i] += g[i] * g[i]
            w[i] -= lr * g[i] / (acc[i].squareRoot() + eps)
        }
    }
    public func update(table: any EmbeddingTable, gradient gr: SparseRowGradient, lr: Float) {
        let d = gr.dimension
        if rowwise {
            let acc = slots.get("\(table.name).row_sum", shape: [table.rows], initial: initial).data
            for (j, id) in gr.ids.enumerated() {
                prefetchAhead(table, gr.ids, j, d)
                let g = gr.rows.data + j * d, w = table.row(Int(id))
                var s: Float = 0
                for k in 0..<d { s += g[k] * g[k] }
                acc[Int(id)] += s / Float(d)
                let scale = lr / (acc[Int(id)].squareRoot() + eps)
                for k in 0..<d { w[k] -= scale * g[k] }
            }
        } else {
            let acc = slots.get("\(table.name).sum", shape: [table.rows, d], initial: initial).data
            for (j, id) in gr.ids.enumerated() {
                prefetchAhead(table, gr.ids, j, d, acc)
                let g = gr.rows.data + j * d, w = table.row(Int(id)), a = acc + Int(id) * d
                for k in 0..<d {
                    a[k] += g[k] * g[k]
                    w[k] -= lr * g[k] / (a[k].squareRoot() + eps)
                }
            }
        }
    }
    public var state: [(String, Tensor)] { slots.all.map { ("adagrad.\($0.0)", $0.1) } }
    public func load(state: [String: Tensor]) throws { slots.load(state, prefix: "adagrad.") }
}

/// Adam with bias correction; on tables only the gradient's rows are updated (LazyAdam), using
/// the global step for bias correction.
public final class Adam: Optimizer, @unchecked Sendable {
    public let spec: String
    let beta1: Float, beta2: Float, eps: Float
    let slots = Slots()
    private(set) var step: Int = 0
    init(spec: String, beta1: Float, beta2: Float, eps: Float) {
        self.spec = spec; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
    }
    public func beginStep() { step += 1 }

    /// `lr` with bias correction folded in, and the corrected epsilon.
    var corrected: (scale: Float, eps: Float) {
        let c1 = 1 - pow(Double(beta1), Double(step)), c2 = 1 - pow(Double(beta2), Double(step))
        return (Float(c2.squareRoot() / c1), eps * Float(c2.squareRoot()))
    }

    @inline(__always)
    func apply(w: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>, count: Int, a: Float, e: Float) {
        let b1 = beta1, b2 = beta2
        for i in 0..<count {
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            w[i] -= a * m[i] / (v[i].squareRoot() + e)
        }
    }

    public func update(_ p: Parameter, lr: Float) {
        let m = slots.get("\(p.name).m", shape: p.value.shape), v = slots.get("\(p.name).v", shape: p.value.shape)
        let (scale, e) = corrected
        apply(w: p.value.data, g: p.grad.data, m: m.data, v: v.data, count: p.value.count, a: lr * scale, e: e)
    }
    public func update(table: any EmbeddingTable, gradient gr: SparseRowGradient, lr: Float) {
        let d = gr.dimension
        let m = slots.get("\(table.name).m", shape: [table.rows, d]).data, v = slots.get("\(table.name).v", shape: [table.rows, d]).data
        let (scale, e) = corrected
        for (j, id) in gr.ids.enumerated() {
            prefetchAhead(table, gr.ids, j, d, m, v)
            let o = Int(id) * d
            apply(w: table.row(Int(id)), g: gr.rows.data + j * d, m: m + o, v: v + o, count: d, a: lr * scale, e: e)
        }
    }
    public var state: [(String, Tensor)] {
        slots.all.map { ("adam.\($0.0)", $0.1) } + [("adam.step", Tensor(shape: [1], values: [Float(step)]))]
    }
    public func load(state: [String: Tensor]) throws {
        slots.load(state.filter { $0.key != "adam.step" }, prefix: "adam.")
        if let s = state["adam.step"] { step = Int(s[0]) }
    }
}

/// FTRL-Proximal (McMahan et al. 2013), per coordinate, for the wide part:
/// `σ = (√(n+g²) − √n)/α; z += g − σ·w; n += g²;
///  w = |z| ≤ l1 ? 0 : −(z − sign(z)·l1) / ((β + √n)/α + l2)` with `α` the learning rate.
public final class FTRL: Optimizer, @unchecked Sendable {
    public let spec: String
    let l1: Float, l2: Float, beta: Float
    let slots = Slots()
    init(spec: String, l1: Float, l2: Float, beta: Float) {
        self.spec = spec; self.l1 = l1; self.l2 = l2; self.beta = beta
    }
    public func beginStep() {}

    @inline(__always)
    func apply(w: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, z: UnsafeMutablePointer<Float>, n: UnsafeMutablePointer<Float>, count: Int, alpha: Float) {
        for i in 0..<count {
            let n2 = n[i] + g[i] * g[i]
            let sigma = (n2.squareRoot() - n[i].squareRoot()) / alpha
            z[i] += g[i] - sigma * w[i]
            n[i] = n2
            if abs(z[i]) <= l1 { w[i] = 0 } else {
                let sign: Float = z[i] < 0 ? -1 : 1
                w[i] = -(z[i] - sign * l1) / ((beta + n2.squareRoot()) / alpha + l2)
            }
        }
    }

    public func update(_ p: Parameter, lr: Float) {
        let z = slots.get("\(p.name).z", shape: p.value.shape), n = slots.get("\(p.name).n", shape: p.value.shape)
        apply(w: p.value.data, g: p.grad.data, z: z.data, n: n.data, count: p.value.count, alpha: lr)
    }
    public func update(table: any EmbeddingTable, gradient gr: SparseRowGradient, lr: Float) {
        let d = gr.dimension
        let z = slots.get("\(table.name).z", shape: [table.rows, d]).data, n = slots.get("\(table.name).n", shape: [table.rows, d]).data
        for (j, id) in gr.ids.enumerated() {
            prefetchAhead(table, gr.ids, j, d, z, n)
            let o = Int(id) * d
            apply(w: table.row(Int(id)), g: gr.rows.data + j * d, z: z + o, n: n + o, count: d, alpha: lr)
        }
    }
    public var state: [(String, Tensor)] { slots.all.map { ("ftrl.\($0.0)", $0.1) } }
    public func load(state: [String: Tensor]) throws { slots.load(state, prefix: "ftrl.") }
}

/// Prefetches the table row (and the same row of each `[N, D]` slot) needed
/// `Kernels.prefetchDistance` ids after position `j`.
@inline(__always)
func prefetchAhead(_ table: any EmbeddingTable, _ ids: [Int32], _ j: Int, _ d: Int,
                   _ slot1: UnsafeMutablePointer<Float>? = nil, _ slot2: UnsafeMutablePointer<Float>? = nil) {
    let k = j + Kernels.prefetchDistance
    guard k < ids.count else { return }
    let id = Int(ids[k])
    Kernels.prefetchForWrite(table.row(id), count: d)
    if let slot1 { Kernels.prefetchForWrite(slot1 + id * d, count: d) }
    if let slot2 { Kernels.prefetchForWrite(slot2 + id * d, count: d) }
}
