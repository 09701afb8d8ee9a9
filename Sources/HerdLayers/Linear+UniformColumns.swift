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
        /// This plan's id in `rowCache` (and which cache gave it; a nil id: not cached).
        var rowCacheID: (cache: ObjectIdentifier, id: UInt32?)?

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

    /// Row stride of `weightT`: `O` plus one cache line.
    ///
    /// NOTE: with `O = 1024` the rows of `Wᵀ` lie 4 KB apart, so the same columns of every row
    /// map to the same L1 sets, and the one-hot rows a batch adds (a few per candidate, out of
    /// ~100) evicted each other: padding each row by 64 bytes took the fused first layer from
    /// ≈ 210 to ≈ 175 µs per 200-row batch (single core, `herd_f32_gemm_packed_sparse`).
    var weightTStride: Int { outputs + 16 }

    /// The whole weight transposed (`[I, O]`, row stride `weightTStride`), for row adds of any column.
    func transposeWeight() {
        let n = inputs, o = outputs, ld = weightTStride
        let w = weight.value.data
        var t = [Float](repeating: 0, count: n * ld)
        t.withUnsafeMutableBufferPointer { tb in
            let tp = tb.baseAddress!
            let tile = 32
            for j0 in stride(from: 0, to: o, by: tile) {
                for c0 in stride(from: 0, to: n, by: tile) {
                    for j in j0..<min(j0 + tile, o) {
                        let row = w + j * n
                        for c in c0..<min(c0 + tile, n) { tp[c * ld + j] = row[c] }
                    }
                }
            }
        }
        weightT = t
    }

    /// Which columns of `x` hold the same value in every row (`==`, so NaN columns never do).
    static func uniformColumns(_ x: Tensor) -> [Bool] {
        let b = x.rows, n = x.columns
        var differs = [UInt8](repeating: 0, count: n)
        differs.withUnsafeMutableBufferPointer { db in
            let d = db.baseAddress!, x0 = x.data
            // NOTE: a branch-free compare per element (LLVM vectorises it; the per-column early
            // exit it replaces was ≈ 1 % of a canK-200 forward), 8 rows at a time, stopping once no
            // column is left uniform (a training-sized batch of varied rows is decided early).
            var s = 1
            while s < b {
                let end = min(b, s + 8)
                for r in s..<end {
                    let xs = x.data + r * n
                    for c in 0..<n { d[c] |= xs[c] != x0[c] ? 1 : 0 }
                }
                s = end
                var all: UInt8 = 1
                for c in 0..<n { all &= d[c] }
                if all != 0 { break }
            }
        }
        return differs.map { $0 == 0 }
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
        let b = x.rows, n = inputs, o = outputs, ld = weightTStride
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
                    let v = x0[c], wc = wt + c * ld
                    for j in 0..<o { sh[j] += v * wc[j] }
                    macs += o
                }
            }
        }
        // Non-uniform dense columns: one GEMM over them, gathered.
        let g = p.gemmColumns.count
        var xg: Tensor? = nil
        if g > 0 {
            let t = Tensor.ensure(gatheredInput, shape: [b, g])
            gatheredInput = t
            xg = t
            p.gemmColumns.withUnsafeBufferPointer { cols in
                for s in 0..<b {
                    let xs = x.data + s * n, gs = t.data + s * g
                    for k in 0..<g { gs[k] = xs[cols[k]] }
                }
            }
        }
        // NOTE: with the AVX-512 kernel the product, the indicator row adds, `shared`, the
        // activation and the BF16 rounding run on its accumulators (one pass over y).
        if Self.packsF32(outputs: o) && (!emitsBF16Output || BF16GEMM.backend.packed) && (g == 0 || p.packedGemmWeight != nil) {
            macs += forwardFused(x, y, xg: xg, plan: p, sparseColumns: sparseColumns)
            return true
        }
        weightT.withUnsafeBufferPointer { wtb in
            let wt = wtb.baseAddress!
            if let xg {
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
                        let v = xs[c], wc = wt + c * ld
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

    /// The fused path of `forwardHoistingUniformColumns` (`PackedF32Weight.multiplySparse`):
    /// collects each row's nonzero non-uniform indicator entries and runs the kernel. Returns the
    /// row adds' multiply–adds.
    func forwardFused(_ x: Tensor, _ y: Tensor, xg: Tensor?, plan p: UniformColumnsPlan, sparseColumns: [Int]) -> Int {
        let b = x.rows, n = inputs, o = outputs
        sparseRowStart.removeAll(keepingCapacity: true)
        sparseTermColumns.removeAll(keepingCapacity: true)
        sparseTermValues.removeAll(keepingCapacity: true)
        sparseRowStart.append(0)
        for s in 0..<b {
            let xs = x.data + s * n
            for c in sparseColumns where xs[c] != 0 {
                sparseTermColumns.append(Int32(c))
                sparseTermValues.append(xs[c])
            }
            sparseRowStart.append(Int32(sparseTermColumns.count))
        }
        var ob: BF16Buffer? = nil
        if emitsBF16Output {
            if let o0 = outputBF16, o0.capacity >= b * o, o0.packed { ob = o0 } else { ob = BF16Buffer(capacity: b * o, packed: true) }
            outputBF16 = ob
        }
        let terms = sparseTermColumns.count
        if let cache = rowCache, let id = rowCacheID(p, cache) {
            return forwardFusedCached(b, y, xg: xg, plan: p, id: id, cache: cache, output: ob)
        }
        weightT.withUnsafeBufferPointer { wt in
            shared.withUnsafeBufferPointer { sh in
                sparseRowStart.withUnsafeBufferPointer { rs in
                    sparseTermColumns.withUnsafeBufferPointer { tc in
                        sparseTermValues.withUnsafeBufferPointer { tv in
                            PackedF32Weight.multiplySparse(m: b, n: o, weight: p.packedGemmWeight, a: xg.map { UnsafePointer($0.data) }, lda: xg?.columns ?? 0,
                                                           rowStart: terms > 0 ? rs.baseAddress : nil, columns: tc.baseAddress, values: tv.baseAddress,
                                                           transposed: wt.baseAddress, ldt: weightTStride, bias: sh.baseAddress, relu: activation == .relu,
                                                           c: omitsFP32Output && ob != nil ? nil : y.data, ldc: o, output: ob)
                        }
                    }
                }
            }
        }
        return terms * o
    }
}
