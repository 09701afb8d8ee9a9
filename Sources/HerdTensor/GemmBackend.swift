import CBLAS
import CHerdKernels
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Who computes FP32 GEMMs (`gemm`, `parallelGemm`, `gemmBiasActivation`).
///
/// - `openblas`: `cblas_sgemm` (always available; the package links OpenBLAS).
/// - `matmul`: oneDNN's matmul primitive (CHerdKernels' `herd_onednn_matmul`, `libdnnl.so.2` from
///   Debian's `libdnnl2` loaded at run time): one primitive per shape, created once and cached per
///   thread; bias + ReLU of a `Linear` forward fused as post-ops.
/// - `onednn`: oneDNN's `dnnl_sgemm` (kept for comparisons).
/// All run one thread per call: Herd owns the threads (see `Parallel`).
///
/// NOTE: on this project's AVX-512 machine (Zen 4), single-threaded per CPU-second on the
/// DLRM/W&D MLP shapes at a 1024-row shard, OpenBLAS 0.3.21 (Cooperlake kernel) runs ≈ 93–99
/// GFLOP/s; the matmul primitive ≈ 95–113 (forward with fused bias + ReLU ≈ 108–114 against
/// ≈ 92–97 for OpenBLAS plus its separate bias/ReLU pass; `dW` shapes about even). Weights packed
/// once into oneDNN's blocked layout gained nothing over plain (strided) weights at these sizes,
/// so weights stay in Herd's layout: no pack can go stale after an optimizer step. In whole
/// models on a quiet machine the gain is 6–31 % (see `SGEMM.selection`), so matmul is the default
/// when oneDNN is installed (`scripts/bootstrap` installs it), OpenBLAS otherwise.
/// Matrix–vector shapes (`M` or `N` below `SGEMM.minOneDNNWidth`, e.g. a logit layer) stay on
/// OpenBLAS, where oneDNN is several times slower.
public enum SGEMMBackend: String, Sendable, CaseIterable {
    case openblas, matmul, onednn
}

/// Backend selection and dispatch for FP32 `gemm`.
public enum SGEMM {
    /// The backend for GEMMs of at least `minOneDNNWidth` rows and columns, chosen once:
    /// `matmul` when oneDNN 2.x loads and passes its self-test, else `openblas`;
    /// `HERD_SGEMM_BACKEND=openblas|matmul|onednn` overrides (falling back to `openblas`, with a
    /// note, when the requested backend is unavailable or fails its self-test).
    public static var backend: SGEMMBackend { forced ?? selection.backend }

    /// Test-only override of `backend` (see `withBackend`).
    nonisolated(unsafe) static var forced: SGEMMBackend?

    /// Runs `body` with every FP32 GEMM on `backend` (for tests comparing backends on whole
    /// models); false, without running `body`, when that backend is unavailable here. Not for
    /// concurrent use: the override is process-wide.
    public static func withBackend(_ backend: SGEMMBackend, _ body: () throws -> Void) rethrows -> Bool {
        switch backend {
        case .openblas: break
        case .onednn: guard dnnlSgemm != nil else { return false }
        case .matmul: guard herd_onednn_matmul_loaded() == 1 else { return false }
        }
        let saved = forced
        forced = backend
        defer { forced = saved }
        try body()
        return true
    }
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
        let raw = ProcessInfo.processInfo.environment["HERD_SGEMM_BACKEND"]
        let requested = raw.flatMap { SGEMMBackend(rawValue: $0.lowercased()) }
        func unusable(_ b: SGEMMBackend) -> String? {
            switch b {
            case .openblas: return nil
            case .onednn: if dnnlSgemm == nil { return "libdnnl.so.2 with dnnl_sgemm not found" }
            case .matmul: if herd_onednn_matmul_loaded() != 1 { return "libdnnl.so.2 (oneDNN 2.x) not found" }
            }
            return selfTest(b) ? nil : "\(b.rawValue) failed its self-test"
        }
        let label: [SGEMMBackend: String] = [.openblas: "openblas cblas_sgemm", .matmul: "onednn matmul primitives", .onednn: "onednn dnnl_sgemm"]
        if let r = requested {
            if let why = unusable(r) { return (.openblas, "openblas (HERD_SGEMM_BACKEND=\(r.rawValue) unusable: \(why))") }
            return (r, "\(label[r]!) (HERD_SGEMM_BACKEND)")
        }
        let bad = raw.map { " (HERD_SGEMM_BACKEND=\($0) unknown: openblas, matmul or onednn)" } ?? ""
        // NOTE: matmul primitives are the default when oneDNN 2.x loads and passes its self-test. On
        // a quiet machine (2026-12-05, release build, interleaved with the PyTorch twins) they beat
        // OpenBLAS in every whole-model run: DLRM training 62.4k → 65.7k samples/s, inference 182k →
        // 197k; W&D (Adam) training 25.7k → 27.7k, inference 85k → 94k; `herd serve` FP32 ranking
        // 1,455 → 1,917 q/s at canK 50 and 532 → 596 at canK 200. (An earlier +25 % CPU cost seen
        // for W&D with Adam was load noise on a busy machine.) Without libdnnl, OpenBLAS.
        if let why = unusable(.matmul) { return (.openblas, "openblas cblas_sgemm (oneDNN matmul unavailable: \(why))" + bad) }
        return (.matmul, "onednn matmul primitives (default; HERD_SGEMM_BACKEND=openblas to override)" + bad)
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
        case .matmul:
            return herd_onednn_matmul(transA == .none ? 0 : 1, transB == .none ? 0 : 1, Int64(m), Int64(n), Int64(k), alpha, a, Int64(lda),
                                      b, Int64(ldb), beta, c, Int64(ldc), nil, 0) == 0
        }
    }

    /// `C = act(op(A) · op(B) + bias)` in one oneDNN call (bias and ReLU as post-ops); false when
    /// the backend is not `matmul`, the shape is below `minOneDNNWidth`, or oneDNN refuses it.
    @usableFromInline
    static func fusedBiasActivation(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, bias: UnsafePointer<Float>, relu: Bool, c: UnsafeMutablePointer<Float>, ldc: Int
    ) -> Bool {
        guard backend == .matmul && min(m, n) >= minOneDNNWidth else { return false }
        return herd_onednn_matmul(transA == .none ? 0 : 1, transB == .none ? 0 : 1, Int64(m), Int64(n), Int64(k), 1, a, Int64(lda),
                                  b, Int64(ldb), 0, c, Int64(ldc), bias, relu ? 1 : 0) == 0
    }

    /// Dispatch for `gemm` (`m, n, k > 0`): `backend` for shapes of at least `minOneDNNWidth`
    /// rows and columns, OpenBLAS otherwise or if oneDNN reports a failure.
    @usableFromInline
    static func dispatch(
        _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if backend != .openblas && min(m, n) >= minOneDNNWidth,
           run(backend, transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc) {
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
