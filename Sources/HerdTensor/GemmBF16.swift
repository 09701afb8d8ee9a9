import CBLAS
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Who computes BF16 GEMMs (BF16 operands, FP32 accumulation and output).
///
/// - `openblas`: OpenBLAS's `cblas_sbgemm`. Only OpenBLAS builds with `BUILD_BFLOAT16=1` export it
///   (Debian 12's 0.3.21 declares it in `cblas.h` but does not export it), so it is looked up at
///   run time; chosen automatically only on CPUs with `avx512_bf16` (elsewhere OpenBLAS runs a
///   slow generic kernel).
/// - `onednn`: oneDNN's `dnnl_gemm_bf16bf16f32`, from `libdnnl.so.2` when it is installed
///   (Debian's `libdnnl2`; exported by 2.6 though not declared in its headers), loaded at run
///   time. oneDNN implements it only on AVX-512 (`avx512_core`, native with `avx512_bf16`) and
///   reports "unimplemented" elsewhere, which the start-up self-test catches.
/// - `emulated`: operands rounded to BF16 but kept in FP32 storage, multiplied by FP32 SGEMM.
///   A product of two BF16 values is exact in FP32, so this is the same arithmetic as a BF16 GEMM
///   with FP32 accumulation (up to summation order) at FP32 speed, on any CPU. It is the fallback
///   and exists so that `--precision bf16` means the same numbers everywhere.
public enum BF16Backend: String, Sendable, CaseIterable {
    case openblas, onednn, emulated

    /// Whether the backend reads packed 16-bit operands (else BF16 values widened to FP32).
    public var packed: Bool { self != .emulated }
}

/// Backend selection and dispatch for `gemmBF16`.
public enum BF16GEMM {
    /// The backend used by this process, chosen once: `HERD_BF16_BACKEND=openblas|onednn|emulated`
    /// forces a choice (falling back to `emulated`, with a note, when it is unavailable or fails
    /// its self-test); otherwise the first available of `openblas` (CPU with `avx512_bf16`),
    /// `onednn` (CPU with AVX-512), `emulated`.
    public static var backend: BF16Backend { selection.backend }
    /// Why `backend` was chosen (for logs and benchmark output).
    public static var note: String { selection.note }

    /// CPU feature flags from `/proc/cpuinfo` (empty where unavailable).
    public static let cpuFlags: Set<String> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }()

    typealias SBGemm = @convention(c) (
        CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint, blasint, blasint, Float,
        UnsafePointer<bfloat16>?, blasint, UnsafePointer<bfloat16>?, blasint, Float, UnsafeMutablePointer<Float>?, blasint) -> Void
    typealias DNNLGemm = @convention(c) (
        CChar, CChar, Int, Int, Int, Float, UnsafePointer<UInt16>?, Int, UnsafePointer<UInt16>?, Int, Float,
        UnsafeMutablePointer<Float>?, Int) -> Int32

    static let sbgemm: SBGemm? = dlsym(nil, "cblas_sbgemm").map { unsafeBitCast($0, to: SBGemm.self) }

    static let dnnlGemm: DNNLGemm? = {
        // oneDNN from Debian runs on OpenMP: one thread per call, as Herd owns the threads.
        setenv("OMP_NUM_THREADS", "1", 0)
        guard let lib = dlopen("libdnnl.so.2", RTLD_NOW | RTLD_LOCAL) ?? dlopen("libdnnl.so", RTLD_NOW | RTLD_LOCAL),
              let f = dlsym(lib, "dnnl_gemm_bf16bf16f32") else { return nil }
        return unsafeBitCast(f, to: DNNLGemm.self)
    }()

    static let selection: (backend: BF16Backend, note: String) = {
        let flags = cpuFlags
        let avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains)
        let requested = ProcessInfo.processInfo.environment["HERD_BF16_BACKEND"].flatMap { BF16Backend(rawValue: $0.lowercased()) }
        var notes: [String] = []
        func usable(_ b: BF16Backend) -> Bool {
            switch b {
            case .emulated: return true
            case .openblas:
                guard sbgemm != nil else { notes.append("the loaded OpenBLAS has no cblas_sbgemm"); return false }
            case .onednn:
                guard dnnlGemm != nil else { notes.append("libdnnl.so.2 with dnnl_gemm_bf16bf16f32 not found"); return false }
            }
            if selfTest(b) { return true }
            notes.append("\(b.rawValue) failed its self-test (no BF16 kernel for this CPU)")
            return false
        }
        if let r = requested {
            if usable(r) { return (r, "\(r.rawValue) (HERD_BF16_BACKEND)") }
            return (.emulated, "emulated (HERD_BF16_BACKEND=\(r.rawValue) unusable: \(notes.joined(separator: "; ")))")
        }
        if flags.contains("avx512_bf16") && usable(.openblas) { return (.openblas, "openblas cblas_sbgemm (avx512_bf16)") }
        if avx512 && usable(.onednn) { return (.onednn, "onednn dnnl_gemm_bf16bf16f32" + (flags.contains("avx512_bf16") ? " (avx512_bf16)" : " (AVX-512, BF16 converted in-kernel)")) }
        if !avx512 { notes.append("CPU has no AVX-512/avx512_bf16") }
        return (.emulated, "emulated: BF16-rounded operands on FP32 SGEMM (" + notes.joined(separator: "; ") + ")")
    }()

    /// Runs a small GEMM of each transpose case on `backend` and compares it with the exact answer
    /// (values are small integers, exact in BF16 and FP32).
    static func selfTest(_ backend: BF16Backend) -> Bool {
        let m = 5, n = 3, k = 7
        for (ta, tb) in [(Transpose.none, Transpose.none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed)] {
            let a = (0..<(m * k)).map { Float($0 % 5) - 2 }, b = (0..<(k * n)).map { Float($0 % 7) - 3 }
            let lda = ta == .none ? k : m, ldb = tb == .none ? n : k
            var expected = [Float](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n { for p in 0..<k {
                let av = ta == .none ? a[i * lda + p] : a[p * lda + i], bv = tb == .none ? b[p * ldb + j] : b[j * ldb + p]
                expected[i * n + j] += av * bv
            } } }
            let ab = BF16Buffer(capacity: a.count, packed: backend.packed), bb = BF16Buffer(capacity: b.count, packed: backend.packed)
            ab.assign(from: a, count: a.count)
            bb.assign(from: b, count: b.count)
            var c = [Float](repeating: 0, count: m * n)
            let ok = c.withUnsafeMutableBufferPointer {
                run(backend, ta, tb, m: m, n: n, k: k, alpha: 1, a: ab, lda: lda, b: bb, ldb: ldb, beta: 0, c: $0.baseAddress!, ldc: n)
            }
            if !ok || c != expected { return false }
        }
        return true
    }

    /// One GEMM on `backend`; false when the backend reports a failure.
    static func run(
        _ backend: BF16Backend, _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
        alpha: Float, a: BF16Buffer, lda: Int, b: BF16Buffer, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) -> Bool {
        precondition(a.packed == backend.packed && b.packed == backend.packed, "BF16 operand format does not match the \(backend) backend")
        switch backend {
        case .emulated:
            cblas_sgemm(CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k), alpha,
                        a.raw.assumingMemoryBound(to: Float.self), Int32(lda), b.raw.assumingMemoryBound(to: Float.self), Int32(ldb),
                        beta, c, Int32(ldc))
            return true
        case .openblas:
            guard let f = sbgemm else { return false }
            f(CblasRowMajor, transA.cblas, transB.cblas, blasint(m), blasint(n), blasint(k), alpha,
              a.raw.assumingMemoryBound(to: bfloat16.self), blasint(lda), b.raw.assumingMemoryBound(to: bfloat16.self), blasint(ldb),
              beta, c, blasint(ldc))
            return true
        case .onednn:
            guard let f = dnnlGemm else { return false }
            let status = f(transA == .none ? 0x4E : 0x54, transB == .none ? 0x4E : 0x54, m, n, k, alpha,
                           a.raw.assumingMemoryBound(to: UInt16.self), lda, b.raw.assumingMemoryBound(to: UInt16.self), ldb, beta, c, ldc)
            return status == 0
        }
    }
}

/// BF16 GEMM, row-major: `C[M, N] = alpha · op(A) · op(B) + beta · C` with `A` and `B` already
/// rounded to BF16 (`BF16Buffer`, laid out as for `gemm`), products accumulated and `C` written in
/// FP32. Runs on the calling thread on `BF16GEMM.backend`.
public func gemmBF16(
    _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: BF16Buffer, lda: Int, b: BF16Buffer, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        scaleInPlace(c, rows: m, columns: n, stride: ldc, by: beta)
        return
    }
    let ok = BF16GEMM.run(BF16GEMM.backend, transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    precondition(ok, "BF16 GEMM failed on the \(BF16GEMM.backend.rawValue) backend")
}

/// `gemmBF16` on FP32 operands: `A` and `B` (as stored, with their leading dimensions) are rounded to BF16
/// (nearest even) into temporary buffers first. For tests and one-off work; layers keep their
/// `BF16Buffer`s to round each operand once per step.
public func gemmBF16(
    _ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
) {
    let (aRows, aCols) = transA == .none ? (m, k) : (k, m), (bRows, bCols) = transB == .none ? (k, n) : (n, k)
    let aCount = (aRows - 1) * lda + aCols, bCount = (bRows - 1) * ldb + bCols
    if m == 0 || n == 0 || k == 0 {
        gemm(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        return
    }
    let ab = BF16Buffer(capacity: aCount), bb = BF16Buffer(capacity: bCount)
    ab.assign(from: a, count: aCount)
    bb.assign(from: b, count: bCount)
    gemmBF16(transA, transB, m: m, n: n, k: k, alpha: alpha, a: ab, lda: lda, b: bb, ldb: ldb, beta: beta, c: c, ldc: ldc)
}
