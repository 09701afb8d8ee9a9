import CHerdKernels
import Foundation

/// A weight `W [N, K]` (a `Linear` weight `[O, I]`) packed once for
/// `C[M, N] = act(A[M, K] · Wᵀ + bias)` on AVX-512 CPUs (CHerdKernels' `herd_f32_gemm_packed`):
/// serving's frozen FP32 layers.
///
/// NOTE: the FP32 default backend (oneDNN's matmul primitive) takes the weight in Herd's plain
/// layout and copies it into its blocked layout inside every call: amortised over a training
/// shard's 1024 rows, but ≈ 20 % of a 1024 → 512 layer at a canK-50 request's 50 rows
/// (single-threaded: ≈ 93 GFLOP/s against ≈ 114 with the weight packed once, the same as oneDNN
/// with a weight reordered once). A frozen weight never changes, so it is packed at freeze time
/// (16-column panels, one 64-byte vector per K) and bias + ReLU run on the accumulators.
public final class PackedF32Weight: @unchecked Sendable {
    public let n: Int
    public let k: Int
    let storage: UnsafeMutablePointer<Float>

    /// Whether the CPU runs the packed kernel (`avx512f`); `HERD_F32_PACKED=0` turns it off.
    public static let available: Bool = {
        if ProcessInfo.processInfo.environment["HERD_F32_PACKED"] == "0" { return false }
        return herd_f32_packed_available() == 1
    }()

    /// Packs `w [n, k]` (row stride `ldw`).
    public init(_ w: UnsafePointer<Float>, ldw: Int, n: Int, k: Int) {
        precondition(n > 0 && k > 0 && ldw >= k, "PackedF32Weight: bad shape [\(n), \(k)] / ldw \(ldw)")
        self.n = n
        self.k = k
        let count = herd_f32_packed_count(Int64(n), Int64(k))
        storage = UnsafeMutablePointer<Float>.allocate(capacity: count)
        herd_f32_pack_weight(w, Int64(ldw), Int64(n), Int64(k), storage)
    }

    deinit { storage.deallocate() }

    /// `C[M, N] = act(A[M, K] · Wᵀ + bias)` (C overwritten, row stride `ldc`; `A` row stride
    /// `lda`), `bias [N]` optional, `relu` for ReLU. Requires `available`.
    public func multiply(m: Int, a: UnsafePointer<Float>, lda: Int, bias: UnsafePointer<Float>? = nil, relu: Bool = false,
                         c: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(Self.available, "PackedF32Weight.multiply needs a CPU with avx512f")
        precondition(lda >= k && ldc >= n, "PackedF32Weight.multiply: bad leading dimensions")
        guard m > 0 else { return }
        herd_f32_gemm_packed(Int64(m), Int64(n), Int64(k), a, Int64(lda), storage, bias, relu ? 1 : 0, c, Int64(ldc))
    }
}
