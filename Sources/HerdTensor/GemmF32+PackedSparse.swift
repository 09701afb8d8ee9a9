import CHerdKernels

extension PackedF32Weight {
    /// A frozen first layer's whole forward in one pass over its output (CHerdKernels'
    /// `herd_f32_gemm_packed_sparse`, AVX-512):
    ///
    /// ```
    /// C[i, :] = act( A[i, :] · Wᵀ  +  Σ_{e ∈ rowStart[i] ..< rowStart[i+1]} values[e] · wt[columns[e], :]  +  bias )
    ///   A [M, K] (row stride lda), W [N, K] = `weight` (nil: K = 0, no product)
    ///   wt: row-major rows of N floats (row stride ldt), e.g. a Linear weight transposed ([I, O])
    /// ```
    ///
    /// summed in that order (the product in K order, then the terms in order, then the bias).
    /// `c` (row stride `ldc`) receives the FP32 result unless nil; `output` (16-bit, `[M, N]`
    /// contiguous, its count becomes `M·N`) the result rounded to BF16, equal to rounding `C`.
    /// `rowStart` nil: no sparse terms; otherwise it holds `M + 1` non-decreasing offsets into
    /// `columns` and `values`. Requires `available`.
    ///
    /// NOTE: serving's first layer (`Linear+UniformColumns`) adds a few one-hot rows of the weight
    /// per candidate and feeds a BF16 layer: doing the product, the row adds, the bias, the ReLU
    /// and the rounding on the accumulators replaces four passes over a `[B, O]` FP32 output
    /// (≈ 20 % of a canK-200 BF16 request's CPU in `herd serve`, perf) with its stores.
    public static func multiplySparse(m: Int, n: Int, weight: PackedF32Weight?, a: UnsafePointer<Float>?, lda: Int,
                                      rowStart: UnsafePointer<Int32>?, columns: UnsafePointer<Int32>?, values: UnsafePointer<Float>?,
                                      transposed wt: UnsafePointer<Float>?, ldt: Int,
                                      bias: UnsafePointer<Float>?, relu: Bool,
                                      c: UnsafeMutablePointer<Float>?, ldc: Int, output: BF16Buffer?) {
        precondition(available, "PackedF32Weight.multiplySparse needs a CPU with avx512f")
        precondition(n > 0, "PackedF32Weight.multiplySparse: N must be positive")
        if let w = weight {
            precondition(w.n == n && a != nil && lda >= w.k, "PackedF32Weight.multiplySparse: bad product operands")
        }
        precondition(rowStart == nil || (columns != nil && values != nil && wt != nil && ldt >= n), "PackedF32Weight.multiplySparse: bad sparse operands")
        precondition(c == nil || ldc >= n, "PackedF32Weight.multiplySparse: ldc < N")
        precondition(output.map { $0.packed && $0.capacity >= m * n } ?? true, "PackedF32Weight.multiplySparse: the output must be a 16-bit BF16Buffer of M·N elements")
        guard m > 0 else { return }
        herd_f32_gemm_packed_sparse(Int64(m), Int64(n), Int64(weight?.k ?? 0), a, Int64(lda), weight?.storage,
                                    rowStart, columns, values, wt, Int64(ldt), bias, relu ? 1 : 0, c, Int64(ldc),
                                    output?.raw.assumingMemoryBound(to: UInt16.self), Int64(n))
        output?.setCount(m * n)
    }
}

extension PackedF32Weight {
    /// The epilogue of `multiplySparse` on rows computed without bias (`bias: nil`, `relu: false`,
    /// FP32 store), each row `i` of `[M, N]` read from `rows[i]`: `act(rows[i] + bias)`
    /// (CHerdKernels' `herd_f32_rows_bias_epilogue`) stored as FP32 into row `i` of `c` (row stride
    /// `ldc`) unless nil and rounded to BF16 into `output` (`[M, N]`, 16-bit, its count becomes
    /// `M·N`) unless nil — bit for bit what `multiplySparse` with that bias writes. Requires `available`.
    public static func rowsBiasEpilogue(m: Int, n: Int, rows: UnsafePointer<UnsafePointer<Float>>, bias: UnsafePointer<Float>?, relu: Bool,
                                        c: UnsafeMutablePointer<Float>?, ldc: Int, output: BF16Buffer?) {
        precondition(available, "PackedF32Weight.rowsBiasEpilogue needs a CPU with avx512f")
        precondition(c == nil || ldc >= n, "PackedF32Weight.rowsBiasEpilogue: ldc < N")
        precondition(output.map { $0.packed && $0.capacity >= m * n } ?? true, "PackedF32Weight.rowsBiasEpilogue: the output must be a 16-bit BF16Buffer of M·N elements")
        guard m > 0 else { return }
        rows.withMemoryRebound(to: UnsafePointer<Float>?.self, capacity: m) { rp in
            herd_f32_rows_bias_epilogue(Int64(m), Int64(n), rp, bias, relu ? 1 : 0, c, Int64(ldc),
                                        output?.raw.assumingMemoryBound(to: UInt16.self), Int64(n))
        }
        output?.setCount(m * n)
    }
}
