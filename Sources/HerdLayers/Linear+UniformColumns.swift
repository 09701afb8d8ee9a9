import HerdTensor

/// Inference forward of a first layer that hoists the input columns holding the same value in
/// every row of the batch (`hoistsUniformColumns`, frozen FP32 layers, `B ≥ 2`).
///
/// ```
/// x [B, I], U = { c : x[b, c] == x[0, c] for every b }   (detected per batch, B·I compares)
/// shared [O] = bias + Σ_{c ∈ U, x[0,c] ≠ 0} x[0, c] · Wᵀ[c, :]          once per batch
/// y [B, O]   = act( xg·Wgᵀ  +  Σ_{c ∈ S∖U, x[b,c] ≠ 0} x[b, c] · Wᵀ[c, :]  +  shared )
///   G = columns neither uniform nor indicators (one GEMM over the gathered xg [B, |G|])
///   S = `indicatorColumns` (row adds per nonzero, as in Linear+IndicatorColumns)
/// ```
///
/// NOTE: a recommend request ranks canK candidates of one user, so the user's columns (its id's
/// embedding, its count bins, a pair feature unknown at serving) are equal in every row; their
/// share of `W·[u; i] = W_u·u + W_i·i` is computed once instead of per candidate. Detecting
/// uniform columns in the batch itself (rather than trusting which side a column comes from) keeps
/// the result exact whatever assembled the batch, and also hoists item columns that happen to be
/// constant. Results equal the plain path's up to float summation order.
extension Linear {
    /// One set of uniform dense (non-indicator) columns and what it implies: the GEMM columns `G`
    /// with their weight gathered (`[O, |G|]`) and packed.
    ///
    /// NOTE: keyed by the dense columns only. Which indicator columns are uniform changes from
    /// batch to batch (a one-hot column no candidate sets is 0 in every row, by chance), and
    /// keying by them made nearly every canK-50 request build (gather, pack) a plan of its own
    /// (perf: ≈ 3 % of `herd bench ranking`); the non-uniform indicator columns are found per batch.
    final class UniformColumnsPlan {
        /// `uniform` with every indicator column false.
        let denseUniform: [Bool]
        let gemmColumns: [Int]
        let gemmWeight: [Float]
        /// `gemmWeight` packed for `PackedF32Weight` (AVX-512 CPUs, `O ≥ 16`), else nil.
        let packedGemmWeight: PackedF32Weight?

        init(denseUniform: [Bool], indicators: Range<Int>?, weight: UnsafePointer<Float>, inputs: Int, outputs: Int) {
            self.denseUniform = denseUniform
            var g: [Int] = []
            for c in 0..<inputs where !denseUniform[c] && indicators?.contains(c) != true { g.append(c) }
            gemmColumns = g
            var w = [Float](repeating: 0, count: outputs * g.count)
            for o in 0..<outputs {
                for (k, c) in g.enumerated() { w[o * g.count + k] = weight[o * inputs + c] }
            }
            gemmWeight = w
            packedGemmWeight = g.isEmpty || !Linear.packsF32(outputs: outputs)
                ? nil : w.withUnsafeBufferPointer { PackedF32Weight($0.baseAddress!, ldw: g.count, n: outputs, k: g.count) }
        }
    }

    /// The whole weight transposed (`[I, O]`), for row adds of any column.
    func transposeWeight() {
        let n = inputs, o = outputs
        let w = weight.value.data
        var t = [Float](repeating: 0, count: n * o)
        t.withUnsafeMutableBufferPointer { tb in
            let tp = tb.baseAddress!
            let tile = 32
            for j0 in stride(from: 0, to: o, by: tile) {
                for c0 in stride(from: 0, to: n, by: tile) {
                    for j in j0..<min(j0 + tile, o) {
                        let row = w + j * n
                        for c in c0..<min(c0 + tile, n) { tp[c * o + j] = row[c] }
                    }
                }
            }
        }
        weightT = t
    }

    /// Which columns of `x` hold the same value in every row (`==`, so NaN columns never do).
    static func uniformColumns(_ x: Tensor) -> [Bool] {
        let b = x.rows, n = x.columns
        var u = [Bool](repeating: true, count: n)
        let x0 = x.data
        // NOTE: stops as soon as no column is left uniform (a training-sized batch of varied rows
        // is decided after a row or two instead of scanning all B × F values).
        var left = n
        u.withUnsafeMutableBufferPointer { ub in
            for s in 1..<b where left > 0 {
                let xs = x.data + s * n
                for c in 0..<n where ub[c] && xs[c] != x0[c] {
                    ub[c] = false
                    left -= 1
                }
            }
        }
        return u
    }

    /// The plan for `uniform`'s dense columns (a few kept per layer: a serving replica sees one
    /// or two patterns).
    func plan(for uniform: [Bool]) -> UniformColumnsPlan {
        var dense = uniform
        if let r = indicatorColumns { for c in r { dense[c] = false } }
        if let p = uniformPlans.first(where: { $0.denseUniform == dense }) { return p }
        let p = UniformColumnsPlan(denseUniform: dense, indicators: indicatorColumns, weight: weight.value.data, inputs: inputs, outputs: outputs)
        if uniformPlans.count >= 8 { uniformPlans.removeFirst() }
        uniformPlans.append(p)
        return p
    }

    /// `y [B, O]` from `x [B, I]` as described above (bias and activation included; with
    /// `emitsBF16Output` also the rounded output). False (nothing done) when no column is uniform
    /// and there are no indicator columns: the plain fused GEMM is then the better path.
    func forwardHoistingUniformColumns(_ x: Tensor, _ y: Tensor) -> Bool {
        let b = x.rows, n = inputs, o = outputs
        let uniform = Self.uniformColumns(x)
        if indicatorColumns?.isEmpty ?? true, !uniform.contains(true) { return false }
        let p = plan(for: uniform)
        // Non-uniform indicator columns (a row add per nonzero).
        var sparseColumns: [Int] = []
        if let r = indicatorColumns { for c in r where !uniform[c] { sparseColumns.append(c) } }
        var macs = b * p.gemmColumns.count * o
        defer {
            lastHoistedColumns = n - p.gemmColumns.count - sparseColumns.count
            lastForwardMACs = macs
        }
        if shared.count != o { shared = [Float](repeating: 0, count: o) }
        weightT.withUnsafeBufferPointer { wtb in
            let wt = wtb.baseAddress!
            shared.withUnsafeMutableBufferPointer { sb in
                let sh = sb.baseAddress!
                sh.update(from: bias.value.data, count: o)
                let x0 = x.data
                for c in 0..<n where uniform[c] && x0[c] != 0 {
                    let v = x0[c], wc = wt + c * o
                    for j in 0..<o { sh[j] += v * wc[j] }
                    macs += o
                }
            }
            // Non-uniform dense columns: one GEMM over them, gathered.
            let g = p.gemmColumns.count
            if g > 0 {
                let xg = Tensor.ensure(gatheredInput, shape: [b, g])
                gatheredInput = xg
                p.gemmColumns.withUnsafeBufferPointer { cols in
                    for s in 0..<b {
                        let xs = x.data + s * n, gs = xg.data + s * g
                        for k in 0..<g { gs[k] = xs[cols[k]] }
                    }
                }
                if let pw = p.packedGemmWeight {
                    pw.multiply(m: b, a: xg.data, lda: g, c: y.data, ldc: o)
                } else {
                    p.gemmWeight.withUnsafeBufferPointer { wg in
                        gemm(.none, .transposed, m: b, n: o, k: g, a: xg.data, lda: g, b: wg.baseAddress!, ldb: g, c: y.data, ldc: o)
                    }
                }
            } else {
                y.data.update(repeating: 0, count: b * o)
            }
            // Non-uniform indicator columns: a row add per nonzero.
            sparseColumns.withUnsafeBufferPointer { cols in
                for s in 0..<b {
                    let xs = x.data + s * n, ys = y.data + s * o
                    for c in cols where xs[c] != 0 {
                        let v = xs[c], wc = wt + c * o
                        for j in 0..<o { ys[j] += v * wc[j] }
                        macs += o
                    }
                }
            }
        }
        shared.withUnsafeBufferPointer { sb in
            let sh = sb.baseAddress!
            if emitsBF16Output {
                let ob: BF16Buffer
                if let ob0 = outputBF16, ob0.capacity >= b * o, ob0.packed == BF16GEMM.backend.packed { ob = ob0 } else { ob = BF16Buffer(capacity: b * o) }
                outputBF16 = ob
                ob.assignBiasActivation(y.data, rows: b, cols: o, bias: sh, relu: activation == .relu)
                return
            }
            switch activation {
            case .none: Kernels.addBias(y.data, rows: b, cols: o, ld: o, bias: sh)
            case .relu: Kernels.addBiasReLU(y.data, rows: b, cols: o, ld: o, bias: sh)
            }
        }
        return true
    }
}
