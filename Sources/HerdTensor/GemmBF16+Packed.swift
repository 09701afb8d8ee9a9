import CHerdKernels
import Foundation

/// A weight `W [N, K]` (a `Linear` weight `[O, I]`) rounded to BF16 and packed once for
/// `C[M, N] = A[M, K] · Wᵀ` on CPUs with AVX512_BF16 (`vdpbf16ps`, CHerdKernels'
/// `herd_bf16_gemm_packed`): serving's frozen layers.
///
/// NOTE: a general BF16 GEMM (oneDNN's `dnnl_gemm_bf16bf16f32`) repacks its weight operand on
/// every call; with serving's small forwards (one request's 50–200 candidate rows) and a weight
/// evicted from cache between requests, that repacking was as costly as the multiply (perf:
/// OpenBLAS's `sgemm_incopy` took 20 % of `herd serve`'s CPU beside 30 % in its kernel).
/// The layout is 16-column panels of K pairs, the `vdpbf16ps` B operand as stored.
public final class PackedBF16Weight: @unchecked Sendable {
    public let n: Int
    public let k: Int
    private let storage: UnsafeMutablePointer<UInt16>

    /// Whether the CPU runs the packed kernel (`avx512_bf16`); `HERD_BF16_PACKED=0` turns it off.
    public static let available: Bool = {
        if ProcessInfo.processInfo.environment["HERD_BF16_PACKED"] == "0" { return false }
        return herd_bf16_packed_available() == 1
    }()

    /// Packs `w [n, k]` (row stride `ldw`), rounding each value to BF16 (nearest even).
    public init(_ w: UnsafePointer<Float>, ldw: Int, n: Int, k: Int) {
        precondition(n > 0 && k > 0 && ldw >= k, "PackedBF16Weight: bad shape [\(n), \(k)] / ldw \(ldw)")
        self.n = n
        self.k = k
        let rounded = UnsafeMutablePointer<UInt16>.allocate(capacity: n * k)
        defer { rounded.deallocate() }
        for r in 0..<n { BF16.convert(w + r * ldw, count: k, into: rounded + r * k) }
        let count = herd_bf16_packed_count(Int64(n), Int64(k))
        storage = UnsafeMutablePointer<UInt16>.allocate(capacity: count)
        herd_bf16_pack_weight(rounded, Int64(k), Int64(n), Int64(k), storage)
    }

    deinit { storage.deallocate() }

    /// `C[M, N] = A[M, K] · Wᵀ` (C overwritten, row stride `ldc`), `A` a packed (16-bit)
    /// `BF16Buffer` with row stride `lda`. Requires `available`.
    public func multiply(m: Int, a: BF16Buffer, lda: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(Self.available, "PackedBF16Weight.multiply needs a CPU with avx512_bf16")
        precondition(a.packed, "PackedBF16Weight.multiply reads 16-bit BF16 operands")
        precondition(lda >= k && ldc >= n && (m == 0 || a.count >= (m - 1) * lda + k), "PackedBF16Weight.multiply: bad operand shapes")
        guard m > 0 else { return }
        herd_bf16_gemm_packed(Int64(m), Int64(n), Int64(k), a.raw.assumingMemoryBound(to: UInt16.self), Int64(lda), storage, c, Int64(ldc))
    }

    /// `C[M, N] = act(A[M, K] · Wᵀ + bias)` (C overwritten, row stride `ldc`) with the epilogue
    /// on the accumulators: `bias [N]` added, ReLU when `relu`, and with `output` the result also
    /// rounded to BF16 into it (`[M, N]` contiguous, 16-bit; its count becomes `M·N`) — the next
    /// BF16 layer's input, equal to rounding `C` afterwards. `c` nil (only with `output`): the FP32
    /// result is not stored. Requires `available`.
    public func multiply(m: Int, a: BF16Buffer, lda: Int, bias: UnsafePointer<Float>, relu: Bool,
                         c: UnsafeMutablePointer<Float>?, ldc: Int, output: BF16Buffer?) {
        precondition(Self.available, "PackedBF16Weight.multiply needs a CPU with avx512_bf16")
        precondition(a.packed && (output?.packed ?? true), "PackedBF16Weight.multiply reads and writes 16-bit BF16 operands")
        precondition(lda >= k && ldc >= n && (m == 0 || a.count >= (m - 1) * lda + k), "PackedBF16Weight.multiply: bad operand shapes")
        precondition((output?.capacity ?? Int.max) >= m * n, "PackedBF16Weight.multiply: output buffer too small")
        precondition(c != nil || output != nil, "PackedBF16Weight.multiply: no output")
        guard m > 0 else { return }
        herd_bf16_gemm_packed_epilogue(Int64(m), Int64(n), Int64(k), a.raw.assumingMemoryBound(to: UInt16.self), Int64(lda), storage,
                                       bias, relu ? 1 : 0, c, Int64(ldc), output?.raw.assumingMemoryBound(to: UInt16.self), Int64(n))
        output?.setCount(m * n)
    }
}
