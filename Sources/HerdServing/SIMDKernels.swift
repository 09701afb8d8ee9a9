/// Vector kernels for the index scans.
///
/// NOTE: written with `SIMD8<Float>` and four independent accumulators so that, built with the
/// target CPU flags `scripts/build` passes (`-target-cpu native`), each step is one AVX2 FMA per
/// accumulator and the four hide the FMA latency. Without the flags LLVM lowers them to SSE pairs,
/// still correct.
enum SIMDKernels {
    /// `Σ a[i]·b[i]` over `n` values.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
        var i = 0
        while i + 32 <= n {
            let o = i * 4
            s0.addProduct(ra.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self))
            s1.addProduct(ra.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: o + 32, as: SIMD8<Float>.self))
            s2.addProduct(ra.loadUnaligned(fromByteOffset: o + 64, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: o + 64, as: SIMD8<Float>.self))
            s3.addProduct(ra.loadUnaligned(fromByteOffset: o + 96, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: o + 96, as: SIMD8<Float>.self))
            i += 32
        }
        while i + 8 <= n {
            s0.addProduct(ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self), rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self))
            i += 8
        }
        var s = ((s0 + s1) + (s2 + s3)).sum()
        while i < n {
            s += a[i] * b[i]
            i += 1
        }
        return s
    }

    /// `Σ x[i]²`.
    @inline(__always)
    static func squaredNorm(_ x: UnsafePointer<Float>, _ n: Int) -> Float { dot(x, x, n) }
}

extension SIMD8 where Scalar == Float {
    @inline(__always)
    mutating func addProduct(_ a: SIMD8<Float>, _ b: SIMD8<Float>) {
        self = self.addingProduct(a, b)
    }
}
