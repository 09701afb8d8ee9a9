import CBLAS
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Who computes FP32 GEMMs (`gemm`, `parallelGemm`).
///
/// - `openblas`: `cblas_sgemm` (always available; the package links OpenBLAS).
/// - `onednn`: oneDNN's `dnnl_sgemm` from `libdnnl.so.2` (Debian's `libdnnl2`, already loaded at
///   run time for BF16), one thread per call like OpenBLAS here.
///
/// NOTE: on this project's AVX-512 machine (Zen 4), alone in a C loop and per CPU-second,
/// `dnnl_sgemm` ran the MLP shapes of DLRM and W&D 7–15 % faster than OpenBLAS 0.3.21's Cooperlake
/// kernel (every transpose case training uses, `M` = a 1024-row shard: e.g. W&D's 1024×1024×429
/// forward 95 → 106 GFLOP/s, 1024×512×1024 `dW` 98 → 106), but whole-model inference runs showed
/// no gain, so OpenBLAS stays the default and oneDNN is opt-in. OpenBLAS also keeps matrix–vector
/// shapes (`M` or `N` below `SGEMM.minOneDNNWidth`, e.g. a logit layer), where it was faster.
public enum SGEMMBackend: String, Sendable, CaseIterable {
    case openblas, onednn
}

/// Backend selection and dispatch for FP32 `gemm`.
public enum SGEMM {
    /// The backend for GEMMs of at least `minOneDNNWidth` rows and columns, chosen once:
    /// `openblas` unless `HERD_SGEMM_BACKEND=onednn` asks for oneDNN (falling back to `openblas`,
    /// with a note, when oneDNN is unavailable or fails its self-test).
    public static var backend: SGEMMBackend { selection.backend }
    /// Why `backend` was chosen (for logs and benchmark output).
    public static var note: String { selection.note }
    /// Smaller `M` or `N` than this always runs on OpenBLAS.
    public static let minOneDNNWidth = 8

    typealias DNNLSgemm = @convention(c) (
        CChar, CChar, Int, Int, Int, Float, UnsafePointer<Float>?, Int, UnsafePointer<Float>?, Int, Float,
        UnsafeMutablePointer<Float>?, Int) -> Int32

    static let dnnlSgemm: DNNLSgemm? = {
        // NOTE: oneDNN from Debian runs on OpenMP; one thread per call, as Herd owns the threads
        // (libgomp reads this when dlopen loads it).
        setenv("OMP_NUM_THREADS", "1", 0)
        guard let lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL) ?? dlopen("libdnnl.so", RTLD_NOW | RTLD_LOCAL),
              let f = dlsym(lib, "dnnl_sgemm") else { return nil }
        return unsafeBitCast(f, to: DNNLSgemm.self)
    }()

    static let selection: (backend: SGEMMBackend, note: String) = {
        let requested = ProcessInfo.processInfo.environment["HERD_SGEMM_BACKEND"].flatMap { SGEMMBackend(rawValue: $0.lowercased()) }
        var notes: [String] = []
        func oneDNNUsable() -> Bool {
            guard dnnlSgemm != nil else { notes.append("libdnnl.so.2 with dnnl_sgemm not found"); return false }
            guard selfTest(.onednn) else { notes.append("onednn failed its self-test"); return false }
            return true
        }
        if let r = requested {
            if r == .openblas { return (.openblas, "openblas cblas_sgemm (HERD_SGEMM_BACKEND)") }
            if oneDNNUsable() { return (.onednn, "onednn dnnl_sgemm (HERD_SGEMM_BACKEND)") }
            return (.openblas, "openblas (HERD_SGEMM_BACKEND=\(r.rawValue) unusable: \(notes.joined(separator: "; ")))")
        }
        // NOTE: opt-in only: in whole DLRM/W&D inference runs (CPU-time A/B on a busy machine)
        // oneDNN gained nothing measurable over OpenBLAS despite its per-shape lead (see above).
        return (.openblas, "openblas cblas_sgemm (HERD_SGEMM_BACKEND=onednn for oneDNN)")
    }()

    /// Runs a small GEMM of each transpose case (with a leading dimension wider than the matrix
    /// and `beta` 0 over a NaN-filled `C`) on `backend` and compares it with the exact answer
    /// (small integers, exact in FP32).
    static func selfTest(_ backend: SGEMMBackend) -> Bool {
        let m = 9, n = 11, k = 7, pad = 3
        for (ta, tb) in [(Transpose.none, Transpose.none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed)] {
            let (ar, ac) = ta == .none ? (m, k) : (k, m), (br, bc) = tb == .none ? (k, n) : (n, k)
            let lda = ac + pad, ldb = bc + pad
            let a = (0..<(ar * lda)).map { Float($0 % 5) - 2 }, b = (0..<(br * ldb)).map { Float($0 % 7) - 3 }
            var expected = [Float](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n { for p in 0..<k {
                let av = ta == .none ? a[i * lda + p] : a[p * lda + i], bv = tb == .none ? b[p * ldb + j] : b[j * ldb + p]
                expected[i * n + j] += av * bv
            } } }
            var c = [Float](repeating: .nan, count: m * n)
            let ok = a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer {
                        run(backend, ta, tb, m: m, n: n, k: k, alpha: 1, a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                            beta: 0, c: $0.baseAddress!, ldc: n)
                    }
                }
            }
            if !ok || c != expected { return false }
        }
        return true
    }

    /// One GEMM on `backend` exactly (no width rule); false when the backend reports a failure.
    @usableFromInline
    static func run(
        _ backend: SGEMMBackend, _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) -> Bool {
        switch backend {
        case .openblas:
            cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k),
                        alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return true
        case .onednn:
            guard let f = dnnlSgemm else { return false }
            return f(transA == .none ? 0x4E : 0x54, transB == .none ? 0x4E : 0x54, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) == 0
        }
    }

    /// Dispatch for `gemm` (`m, n, k > 0`): `backend` for shapes of at least `minOneDNNWidth`
    /// rows and columns, OpenBLAS otherwise or if oneDNN reports a failure.
    @usableFromInline
    static func dispatch(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if backend == .onednn && min(m, n) >= minOneDNNWidth,
           run(.onednn, transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc) {
            return
        }
        _ = run(.openblas, transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }
}

/// `gemm` on an explicit backend (no width rule), for tests and benchmarks; false when the backend
/// is unavailable or reports a failure. `m, n, k` must be positive.
public func gemm(
    backend: SGEMMBackend, _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) -> Bool {
    precondition(m > 0 && n > 0 && k > 0, "gemm(backend:) needs positive sizes")
    return SGEMM.run(backend, transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
}
