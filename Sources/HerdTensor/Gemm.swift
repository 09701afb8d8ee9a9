import CBLAS
import CHerdKernels

/// Transposition of a GEMM operand.
public enum Transpose: Sendable {
    case none, transposed
    @usableFromInline var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// General matrix multiply, row-major: `C[M, N] = alpha · op(A)[M, K] · op(B)[K, N] + beta · C`.
///
/// `A` is `[M, K]` (or `[K, M]` when transposed) with leading dimension `lda`; likewise `B`
/// `[K, N]` (or `[N, K]`) with `ldb`, and `C` `[M, N]` with `ldc`. Runs on the calling thread, on
/// `SGEMM.backend` (oneDNN matmul primitives or OpenBLAS, one thread per call; see `Parallel`).
@inlinable
public func gemm(
    _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        scaleInPlace(c, rows: m, columns: n, stride: ldc, by: beta)
        return
    }
    SGEMM.dispatch(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
}

/// `C[M, N] = act(op(A) · op(B) + bias[N])` with `act` ReLU or identity: a `Linear` layer's
/// forward. On the `matmul` backend one oneDNN call with bias and ReLU applied to each output tile
/// (no second pass over `C`); otherwise `gemm` followed by `Kernels.addBias`/`addBiasReLU`.
@inlinable
public func gemmBiasActivation(
    _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    bias: UnsafePointer<Float>, relu: Bool, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    if m == 0 || n == 0 { return }
    if k > 0, SGEMM.fusedBiasActivation(transA, transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, bias: bias, relu: relu, c: c, ldc: ldc) {
        return
    }
    gemm(transA, transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
    if relu { Kernels.addBiasReLU(c, rows: m, cols: n, ld: ldc, bias: bias) } else { Kernels.addBias(c, rows: m, cols: n, ld: ldc, bias: bias) }
}

/// `gemmBiasActivation` on an explicit backend (fused on `matmul`, whatever the shape), for
/// tests and benchmarks; false when the backend is unavailable or refuses. Sizes must be positive.
public func gemmBiasActivation(
    backend: SGEMMBackend, _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
    a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    bias: UnsafePointer<Float>, relu: Bool, c: UnsafeMutablePointer<Float>, ldc: Int
) -> Bool {
    precondition(m > 0 && n > 0 && k > 0, "gemmBiasActivation(backend:) needs positive sizes")
    if backend == .matmul {
        return herd_onednn_matmul(transA == .none ? 0 : 1, transB == .none ? 0 : 1, Int64(m), Int64(n), Int64(k), 1, a, Int64(lda),
                                  b, Int64(ldb), 0, c, Int64(ldc), bias, relu ? 1 : 0) == 0
    }
    guard SGEMM.run(backend, transA, transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, beta: 0, c: c, ldc: ldc) else { return false }
    if relu { Kernels.addBiasReLU(c, rows: m, cols: n, ld: ldc, bias: bias) } else { Kernels.addBias(c, rows: m, cols: n, ld: ldc, bias: bias) }
    return true
}

/// `gemm` with the `M` rows of `C` (and of `op(A)`) split across `Parallel` workers.
/// Used outside data-parallel regions (inference, single-shard steps).
@inlinable
public func parallelGemm(
    _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let work = m * n * max(k, 1)
    if Parallel.threads == 1 || m < 64 || work < 1 << 20 {
        gemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    let pa = UncheckedSendable(a), pb = UncheckedSendable(b), pc = UncheckedSendable(c)
    Parallel.forRanges(m, minPerWorker: 32) { r in
        // Row block r of op(A): for .none it starts at row r.lowerBound; for .transposed at column r.lowerBound.
        let aOff = transA == .none ? r.lowerBound * lda : r.lowerBound
        gemm(transA, transB, m: r.count, n: n, k: k, alpha: alpha, a: pa.value + aOff, lda: lda,
             b: pb.value, ldb: ldb, beta: beta, c: pc.value + r.lowerBound * ldc, ldc: ldc)
    }
}

/// Scales an `[rows, columns]` block with row stride `stride` by `s` (zeroes it when `s == 0`).
@inlinable
public func scaleInPlace(_ c: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int, by s: Float) {
    for r in 0..<rows {
        let row = c + r * stride
        if s == 0 { row.update(repeating: 0, count: columns) } else { for j in 0..<columns { row[j] *= s } }
    }
}

extension Tensor {
    /// `C = op(A) · op(B)` for 2-D tensors, allocating `C`. Convenience for tests and small work.
    public static func matmul(_ a: Tensor, _ b: Tensor, transA: Transpose = .none, transB: Transpose = .none) -> Tensor {
        let (m, ka) = transA == .none ? (a.rows, a.columns) : (a.columns, a.rows)
        let (kb, n) = transB == .none ? (b.rows, b.columns) : (b.columns, b.rows)
        precondition(ka == kb, "matmul inner dimensions differ: \(ka) vs \(kb)")
        let c = Tensor(shape: [m, n])
        parallelGemm(transA, transB, m: m, n: n, k: ka, a: a.data, lda: a.columns, b: b.data, ldb: b.columns, c: c.data, ldc: n)
        return c
    }
}
