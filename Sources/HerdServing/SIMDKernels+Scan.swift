/// The exact index's scan kernel: one query against a block of stored rows.
extension SIMDKernels {
    /// `out[j] = ⟨q, x[j]⟩` for the `rows` rows of `x` (`[rows, d]`, row-major), times `scale`.
    ///
    /// Four rows at a time share each load of the query: per 16 dimensions one query load, four row
    /// loads and four FMAs into four independent accumulators. A scan of a large index is bound by
    /// memory bandwidth (every row is read once); this keeps the arithmetic under it.
    ///
    /// NOTE: `SIMD16` is one AVX-512 register with the target CPU flags of `scripts/build`; without
    /// them LLVM splits it (still correct, slower).
    static func dots(query q: UnsafePointer<Float>, rows x: UnsafePointer<Float>, count rows: Int, dimension d: Int,
                     scale: Float = 1, into out: UnsafeMutablePointer<Float>) {
        let rq = UnsafeRawPointer(q)
        let wide = d & ~15
        var r = 0
        while r + 4 <= rows {
            let x0 = UnsafeRawPointer(x + r * d), x1 = UnsafeRawPointer(x + (r + 1) * d)
            let x2 = UnsafeRawPointer(x + (r + 2) * d), x3 = UnsafeRawPointer(x + (r + 3) * d)
            var s0 = SIMD16<Float>(), s1 = SIMD16<Float>(), s2 = SIMD16<Float>(), s3 = SIMD16<Float>()
            var i = 0
            while i < wide {
                let o = i * 4
                let qv = rq.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
                s0 = s0.addingProduct(qv, x0.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
                s1 = s1.addingProduct(qv, x1.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
                s2 = s2.addingProduct(qv, x2.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
                s3 = s3.addingProduct(qv, x3.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
                i += 16
            }
            var t0 = s0.sum(), t1 = s1.sum(), t2 = s2.sum(), t3 = s3.sum()
            while i < d {
                let qi = q[i]
                t0 += qi * x[r * d + i]
                t1 += qi * x[(r + 1) * d + i]
                t2 += qi * x[(r + 2) * d + i]
                t3 += qi * x[(r + 3) * d + i]
                i += 1
            }
            out[r] = t0 * scale
            out[r + 1] = t1 * scale
            out[r + 2] = t2 * scale
            out[r + 3] = t3 * scale
            r += 4
        }
        while r < rows {
            out[r] = dot(q, x + r * d, d) * scale
            r += 1
        }
    }
}
