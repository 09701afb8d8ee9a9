import HerdTensor

/// `Linear` over inputs with a block of indicator columns `[lo, hi)` (one-hot ids as 0/1, or
/// counts for bags), e.g. Friesian's W&D deep input `[embeddings | indicators | dense]`.
///
/// ```
/// x [B, I] = [ xa [B, lo] | xi [B, hi−lo] (mostly 0) | xb [B, I−hi] ]
/// y  = xa·Waᵀ + xb·Wbᵀ (two GEMMs)  +  Σ over nonzeros x[b, c]·Wᵀ[c, :]   (row adds of Wiᵀ)
/// dW = dyᵀ·xa, dyᵀ·xb (GEMMs);  dWi[:, c] += Σ over nonzeros x[b, c]·dy[b, :]
/// dx = dy·Wa, dy·Wb (GEMMs);  0 in the indicator block
/// ```
///
/// NOTE: with a handful of ids per row among a hundred indicator columns, the GEMM spends most of
/// its multiply-adds on zeros; here each nonzero costs one contiguous `O`-wide row add (`Wi` is
/// transposed once per forward, `O·(hi−lo)` copies per batch rather than per row), and the input
/// gradient of ids, which nothing uses, is not computed.
extension Linear {
    func forwardWithIndicators(_ x: Tensor, _ y: Tensor, _ r: Range<Int>) {
        let b = x.rows, n = inputs, o = outputs, lo = r.lowerBound, hi = r.upperBound, k = hi - lo
        let w = weight.value.data
        // Dense blocks.
        gemm(.none, .transposed, m: b, n: o, k: lo, a: x.data, lda: n, b: w, ldb: n, c: y.data, ldc: o)
        gemm(.none, .transposed, m: b, n: o, k: n - hi, a: x.data + hi, lda: n, b: w + hi, ldb: n, beta: lo > 0 ? 1 : 0, c: y.data, ldc: o)
        if lo == 0 && hi == n { y.data.update(repeating: 0, count: b * o) }
        // Indicator block: transpose Wi once per forward (once for good when frozen), then one
        // row add per nonzero.
        if !isFrozen || indicatorWeightT.count < k * o { transposeIndicatorWeight(r) }
        var nonzeros = 0
        indicatorWeightT.withUnsafeBufferPointer { wt in
            let t = wt.baseAddress!
            for s in 0..<b {
                let xs = x.data + s * n + lo, ys = y.data + s * o
                for c in 0..<k where xs[c] != 0 {
                    let v = xs[c], wc = t + c * o
                    for j in 0..<o { ys[j] += v * wc[j] }
                    nonzeros += 1
                }
            }
        }
        lastForwardMACs = (b * (n - k) + nonzeros) * o
    }

    /// `indicatorWeightT [k, O]` = the indicator block `W[:, r]` transposed.
    func transposeIndicatorWeight(_ r: Range<Int>) {
        let n = inputs, o = outputs, lo = r.lowerBound, k = r.count
        let w = weight.value.data
        if indicatorWeightT.count != k * o { indicatorWeightT = [Float](repeating: 0, count: k * o) }
        indicatorWeightT.withUnsafeMutableBufferPointer { wt in
            let t = wt.baseAddress!
            // NOTE: in 32 × 32 tiles: a plain j-then-c loop writes with a stride of O floats and
            // missed the cache on every store; with serving's micro-batches (64 rows) that transpose
            // took about a third of the ranking time (perf, W&D 1024-wide first layer).
            let tile = 32
            for j0 in stride(from: 0, to: o, by: tile) {
                let j1 = min(j0 + tile, o)
                for c0 in stride(from: 0, to: k, by: tile) {
                    let c1 = min(c0 + tile, k)
                    for j in j0..<j1 {
                        let row = w + j * n + lo
                        for c in c0..<c1 { t[c * o + j] = row[c] }
                    }
                }
            }
        }
    }

    func backwardWithIndicators(_ x: Tensor, _ dy: Tensor, _ dx: Tensor?, _ r: Range<Int>) {
        let b = x.rows, n = inputs, o = outputs, lo = r.lowerBound, hi = r.upperBound, k = hi - lo
        let g = weight.grad.data
        // dW of the dense blocks: dyᵀ[O, B] · x[B, block].
        gemm(.transposed, .none, m: o, n: lo, k: b, a: dy.data, lda: o, b: x.data, ldb: n, beta: 1, c: g, ldc: n)
        gemm(.transposed, .none, m: o, n: n - hi, k: b, a: dy.data, lda: o, b: x.data + hi, ldb: n, beta: 1, c: g + hi, ldc: n)
        // dW of the indicator block, accumulated transposed then added in.
        if indicatorGradT.count < k * o { indicatorGradT = [Float](repeating: 0, count: k * o) }
        indicatorGradT.withUnsafeMutableBufferPointer { gt in
            let t = gt.baseAddress!
            t.update(repeating: 0, count: k * o)
            for s in 0..<b {
                let xs = x.data + s * n + lo, ds = dy.data + s * o
                for c in 0..<k where xs[c] != 0 {
                    let v = xs[c], tc = t + c * o
                    for j in 0..<o { tc[j] += v * ds[j] }
                }
            }
            for j in 0..<o {
                let row = g + j * n + lo
                for c in 0..<k { row[c] += t[c * o + j] }
            }
        }
        guard let dx else { return }
        // dx of the dense blocks: dy[B, O] · W[O, block]; zero for the indicators.
        let w = weight.value.data
        gemm(.none, .none, m: b, n: lo, k: o, a: dy.data, lda: o, b: w, ldb: n, c: dx.data, ldc: n)
        gemm(.none, .none, m: b, n: n - hi, k: o, a: dy.data, lda: o, b: w + hi, ldb: n, c: dx.data + hi, ldc: n)
        for s in 0..<b { (dx.data + s * n + lo).update(repeating: 0, count: k) }
    }
}
