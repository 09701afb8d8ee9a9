import HerdTensor

/// How DLRM combines the dense vector with the pooled embeddings.
public enum InteractionKind: String, Sendable, Codable {
    /// Pairwise dot products of all `F + 1` vectors (strictly lower triangle), concatenated after
    /// the dense vector: output width `D + (F+1)·F/2`.
    case dot
    /// Plain concatenation of the dense vector and the embeddings: output width `(F + 1)·D`.
    case cat
}

/// DLRM's interaction arch over `T [B, F+1, D]` (row 0 of each sample = bottom MLP output, rows
/// 1…F = pooled embeddings).
///
/// Forward: `R [B, outputs]`. For `dot`, `R[b] = [T[b,0,:], ⟨T[b,i],T[b,j]⟩ for i in 1…F, j < i]`
/// (pairs in row-major lower-triangle order: (1,0), (2,0), (2,1), (3,0), …).
/// Backward: `dR [B, outputs]` → `dT [B, F+1, D]`.
public final class Interaction: @unchecked Sendable {
    public let kind: InteractionKind
    public let vectors: Int  // F + 1
    public let dimension: Int  // D

    public init(kind: InteractionKind, vectors: Int, dimension: Int) {
        self.kind = kind
        self.vectors = vectors
        self.dimension = dimension
    }

    public var outputs: Int {
        kind == .dot ? dimension + vectors * (vectors - 1) / 2 : vectors * dimension
    }

    /// Multiply–accumulates per sample in the forward pass.
    public var macsPerSample: Int { kind == .dot ? vectors * (vectors - 1) / 2 * dimension : 0 }

    /// `t [B, F+1, D]` (flat, `B` rows of `(F+1)·D`) → `r [B, outputs]`.
    public func forward(_ t: UnsafePointer<Float>, batch b: Int, into r: UnsafeMutablePointer<Float>) {
        let n = vectors, d = dimension, w = outputs, stride = n * d
        switch kind {
        case .cat:
            for s in 0..<b { (r + s * w).update(from: t + s * stride, count: stride) }
        case .dot:
            Self.dotForward(t, batch: b, vectors: n, dimension: d, into: r)
        }
    }

    /// `dr [B, outputs]` → `dt [B, F+1, D]` (overwritten), given the forward input `t`.
    public func backward(_ dr: UnsafePointer<Float>, input t: UnsafePointer<Float>, batch b: Int, into dt: UnsafeMutablePointer<Float>) {
        let n = vectors, d = dimension, w = outputs, stride = n * d
        for s in 0..<b {
            let ts = t + s * stride
            let gs = dr + s * w
            let ds = dt + s * stride
            switch kind {
            case .cat:
                ds.update(from: gs, count: stride)
            case .dot:
                if d % 8 == 0 {
                    Self.dotBackwardLowerTriangle(gs, input: ts, vectors: n, dimension: d, into: ds)
                } else {
                    ds.update(from: gs, count: d)
                    (ds + d).update(repeating: 0, count: (n - 1) * d)
                    var k = d
                    for i in 1..<n {
                        let ti = ts + i * d, di = ds + i * d
                        for j in 0..<i {
                            let g = gs[k]
                            k += 1
                            if g == 0 { continue }
                            let tj = ts + j * d, dj = ds + j * d
                            for e in 0..<d {
                                di[e] += g * tj[e]
                                dj[e] += g * ti[e]
                            }
                        }
                    }
                }
            }
        }
    }

    /// `dot` forward over a batch: for each sample, the dense row `T[0]` then the lower-triangle
    /// dots `⟨T[i], T[j]⟩`, `j < i`, in (i, j) order.
    ///
    /// NOTE: per sample, `T` is transposed into `Tᵀ [D, W]` (W = n rounded up to 32, pad columns
    /// zero) and row `i` of the Gram matrix is `Σ_e T[i,e]·Tᵀ[e, 0..<W]`, 8 columns per vector op.
    /// Rows go four at a time: the four rows share every `Tᵀ` load, and their 4 × (1…4)
    /// accumulators are independent add chains (one row alone is a chain of `D` dependent adds —
    /// latency-bound). A group computes the ⌈i/8⌉ chunks its largest row `i` needs, so its rows
    /// cover their `j < i`. Chunks are stored straight into `r`, rows in increasing order: the
    /// values a row's chunks write past its end land in later rows' (or later samples') slots,
    /// which are written afterwards — only rows whose chunks would run past the batch go through
    /// a scratch row. `Tᵀ` is allocated and zeroed once per batch.
    static func dotForward(_ t: UnsafePointer<Float>, batch b: Int, vectors n: Int, dimension d: Int, into r: UnsafeMutablePointer<Float>) {
        let w = d + n * (n - 1) / 2
        let width = max(32, (n + 31) / 32 * 32)
        let scratchRow = width + 8
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d * width + 4 * scratchRow) { buf in
            let tt = buf.baseAddress!, scratch = tt + d * width
            tt.update(repeating: 0, count: d * width)
            let ttRaw = UnsafeRawPointer(tt)
            for s in 0..<b {
                let ts = t + s &* n &* d, rs = r + s &* w
                rs.update(from: ts, count: d)
                for j in 0..<n { for e in 0..<d { tt[e &* width &+ j] = ts[j &* d &+ e] } }
                var i0 = 1
                while i0 < n {
                    let rows = min(4, n &- i0), imax = i0 &+ rows &- 1
                    // Rows past n - 1 (a short last group) repeat row n - 1 and are not stored.
                    let p0 = ts + i0 &* d, p1 = ts + min(i0 &+ 1, n &- 1) &* d
                    let p2 = ts + min(i0 &+ 2, n &- 1) &* d, p3 = ts + min(i0 &+ 3, n &- 1) &* d
                    let reach = (imax &+ 7) / 8 &* 8
                    // Rows whose chunk stores would run past the batch go through a scratch row; so
                    // do groups spanning several 32-column blocks (a row's later block would
                    // overwrite the next row's already stored first block).
                    func viaScratch(_ q: Int) -> Bool {
                        let i = i0 &+ q
                        let end: Int = s &* w &+ d &+ i &* (i &- 1) / 2 &+ reach
                        return imax > 32 || end > b &* w
                    }
                    func out(_ q: Int) -> UnsafeMutableRawPointer {
                        if viaScratch(q) { return UnsafeMutableRawPointer(scratch + q &* scratchRow) }
                        let i = i0 &+ q
                        let k: Int = d &+ i &* (i &- 1) / 2
                        return UnsafeMutableRawPointer(rs + k)
                    }
                    let outs = (out(0), out(1), out(2), out(3))
                    var block = 0
                    while block < imax {
                        let live = min(4, (imax &- block &+ 7) / 8)
                        var off = block &* 4
                        let o = block &* 4
                        switch live {
                        case 4:
                            var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>(), a03 = SIMD8<Float>()
                            var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>(), a13 = SIMD8<Float>()
                            var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a22 = SIMD8<Float>(), a23 = SIMD8<Float>()
                            var a30 = SIMD8<Float>(), a31 = SIMD8<Float>(), a32 = SIMD8<Float>(), a33 = SIMD8<Float>()
                            for e in 0..<d {
                                let c0 = ttRaw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
                                let c1 = ttRaw.loadUnaligned(fromByteOffset: off &+ 32, as: SIMD8<Float>.self)
                                let c2 = ttRaw.loadUnaligned(fromByteOffset: off &+ 64, as: SIMD8<Float>.self)
                                let c3 = ttRaw.loadUnaligned(fromByteOffset: off &+ 96, as: SIMD8<Float>.self)
                                let x0 = SIMD8(repeating: p0[e]), x1 = SIMD8(repeating: p1[e]), x2 = SIMD8(repeating: p2[e]), x3 = SIMD8(repeating: p3[e])
                                a00 += x0 * c0; a01 += x0 * c1; a02 += x0 * c2; a03 += x0 * c3
                                a10 += x1 * c0; a11 += x1 * c1; a12 += x1 * c2; a13 += x1 * c3
                                a20 += x2 * c0; a21 += x2 * c1; a22 += x2 * c2; a23 += x2 * c3
                                a30 += x3 * c0; a31 += x3 * c1; a32 += x3 * c2; a33 += x3 * c3
                                off &+= width &* 4
                            }
                            Self.store4(outs.0, o, a00, a01, a02, a03)
                            if rows > 1 { Self.store4(outs.1, o, a10, a11, a12, a13) }
                            if rows > 2 { Self.store4(outs.2, o, a20, a21, a22, a23) }
                            if rows > 3 { Self.store4(outs.3, o, a30, a31, a32, a33) }
                        case 3:
                            var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a02 = SIMD8<Float>()
                            var a10 = SIMD8<Float>(), a11 = SIMD8<Float>(), a12 = SIMD8<Float>()
                            var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a22 = SIMD8<Float>()
                            var a30 = SIMD8<Float>(), a31 = SIMD8<Float>(), a32 = SIMD8<Float>()
                            for e in 0..<d {
                                let c0 = ttRaw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
                                let c1 = ttRaw.loadUnaligned(fromByteOffset: off &+ 32, as: SIMD8<Float>.self)
                                let c2 = ttRaw.loadUnaligned(fromByteOffset: off &+ 64, as: SIMD8<Float>.self)
                                let x0 = SIMD8(repeating: p0[e]), x1 = SIMD8(repeating: p1[e]), x2 = SIMD8(repeating: p2[e]), x3 = SIMD8(repeating: p3[e])
                                a00 += x0 * c0; a01 += x0 * c1; a02 += x0 * c2
                                a10 += x1 * c0; a11 += x1 * c1; a12 += x1 * c2
                                a20 += x2 * c0; a21 += x2 * c1; a22 += x2 * c2
                                a30 += x3 * c0; a31 += x3 * c1; a32 += x3 * c2
                                off &+= width &* 4
                            }
                            Self.store3(outs.0, o, a00, a01, a02)
                            if rows > 1 { Self.store3(outs.1, o, a10, a11, a12) }
                            if rows > 2 { Self.store3(outs.2, o, a20, a21, a22) }
                            if rows > 3 { Self.store3(outs.3, o, a30, a31, a32) }
                        case 2:
                            var a00 = SIMD8<Float>(), a01 = SIMD8<Float>(), a10 = SIMD8<Float>(), a11 = SIMD8<Float>()
                            var a20 = SIMD8<Float>(), a21 = SIMD8<Float>(), a30 = SIMD8<Float>(), a31 = SIMD8<Float>()
                            for e in 0..<d {
                                let c0 = ttRaw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
                                let c1 = ttRaw.loadUnaligned(fromByteOffset: off &+ 32, as: SIMD8<Float>.self)
                                let x0 = SIMD8(repeating: p0[e]), x1 = SIMD8(repeating: p1[e]), x2 = SIMD8(repeating: p2[e]), x3 = SIMD8(repeating: p3[e])
                                a00 += x0 * c0; a01 += x0 * c1
                                a10 += x1 * c0; a11 += x1 * c1
                                a20 += x2 * c0; a21 += x2 * c1
                                a30 += x3 * c0; a31 += x3 * c1
                                off &+= width &* 4
                            }
                            Self.store2(outs.0, o, a00, a01)
                            if rows > 1 { Self.store2(outs.1, o, a10, a11) }
                            if rows > 2 { Self.store2(outs.2, o, a20, a21) }
                            if rows > 3 { Self.store2(outs.3, o, a30, a31) }
                        default:
                            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                            for e in 0..<d {
                                let c0 = ttRaw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
                                a0 += SIMD8(repeating: p0[e]) * c0; a1 += SIMD8(repeating: p1[e]) * c0
                                a2 += SIMD8(repeating: p2[e]) * c0; a3 += SIMD8(repeating: p3[e]) * c0
                                off &+= width &* 4
                            }
                            outs.0.storeBytes(of: a0, toByteOffset: o, as: SIMD8<Float>.self)
                            if rows > 1 { outs.1.storeBytes(of: a1, toByteOffset: o, as: SIMD8<Float>.self) }
                            if rows > 2 { outs.2.storeBytes(of: a2, toByteOffset: o, as: SIMD8<Float>.self) }
                            if rows > 3 { outs.3.storeBytes(of: a3, toByteOffset: o, as: SIMD8<Float>.self) }
                        }
                        block &+= 32
                    }
                    for q in 0..<rows {
                        let i = i0 &+ q, k = d &+ i &* (i &- 1) / 2
                        if viaScratch(q) { (rs + k).update(from: scratch + q &* scratchRow, count: i) }
                    }
                    i0 &+= 4
                }
            }
        }
    }

    @inline(__always)
    static func store4(_ p: UnsafeMutableRawPointer, _ o: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>, _ d: SIMD8<Float>) {
        p.storeBytes(of: a, toByteOffset: o, as: SIMD8<Float>.self)
        p.storeBytes(of: b, toByteOffset: o &+ 32, as: SIMD8<Float>.self)
        p.storeBytes(of: c, toByteOffset: o &+ 64, as: SIMD8<Float>.self)
        p.storeBytes(of: d, toByteOffset: o &+ 96, as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store3(_ p: UnsafeMutableRawPointer, _ o: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) {
        p.storeBytes(of: a, toByteOffset: o, as: SIMD8<Float>.self)
        p.storeBytes(of: b, toByteOffset: o &+ 32, as: SIMD8<Float>.self)
        p.storeBytes(of: c, toByteOffset: o &+ 64, as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store2(_ p: UnsafeMutableRawPointer, _ o: Int, _ a: SIMD8<Float>, _ b: SIMD8<Float>) {
        p.storeBytes(of: a, toByteOffset: o, as: SIMD8<Float>.self)
        p.storeBytes(of: b, toByteOffset: o &+ 32, as: SIMD8<Float>.self)
    }

    /// Backward of the `dot` forward for one sample (`d` a multiple of 8): `g` is the sample's
    /// `dR` row (`d` dense-passthrough values, then one value per pair), `t` its `n × d` input,
    /// `dt` (overwritten) its `n × d` gradient.
    ///
    /// NOTE: only the `j < i` pairs are visited, each once, in the order `dR` stores them (so `g`
    /// is read sequentially): pair `(i, j)` adds `g·T[j]` to `dT[i]` and `g·T[i]` to `dT[j]`.
    /// `dT[i]` and `T[i]` stay in registers for the whole row `i`; `dT[j]` (`j < i`) is updated in
    /// place — rows below `i` were already written, and row `i` is stored once, when its `j < i`
    /// pairs are done (later rows only add to it). That is `n(n−1)·d` multiply–adds per sample
    /// (the full symmetric `G · T` product did `n²·d` plus an `n × n` gather). `a * b` then `+=`
    /// rather than `addProduct`: without a target CPU the latter lowers to scalar `fmaf` calls.
    @inline(__always)
    static func dotBackwardLowerTriangle(_ g: UnsafePointer<Float>, input t: UnsafePointer<Float>, vectors n: Int, dimension d: Int,
                                         into dt: UnsafeMutablePointer<Float>) {
        let tRaw = UnsafeRawPointer(t), dRaw = UnsafeMutableRawPointer(dt)
        if d == 16 {
            // One 16-lane vector per row (the Criteo configuration).
            dRaw.storeBytes(of: UnsafeRawPointer(g).loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
            var k = 16
            for i in 1..<n {
                let ti = tRaw.loadUnaligned(fromByteOffset: i &* 64, as: SIMD16<Float>.self)
                var acc = SIMD16<Float>()
                for j in 0..<i {
                    let gv = SIMD16(repeating: g[k &+ j])
                    acc += gv * tRaw.loadUnaligned(fromByteOffset: j &* 64, as: SIMD16<Float>.self)
                    let dj = dRaw.loadUnaligned(fromByteOffset: j &* 64, as: SIMD16<Float>.self)
                    dRaw.storeBytes(of: dj + gv * ti, toByteOffset: j &* 64, as: SIMD16<Float>.self)
                }
                dRaw.storeBytes(of: acc, toByteOffset: i &* 64, as: SIMD16<Float>.self)
                k &+= i
            }
            return
        }
        dt.update(from: g, count: d)
        var k = d
        for i in 1..<n {
            var q = 0
            while q < d {
                // 8 columns of row i at a time; the pairs (i, j) re-read g[k ..< k+i] per chunk.
                let off = q &* 4
                let ti = tRaw.loadUnaligned(fromByteOffset: (i &* d) &* 4 &+ off, as: SIMD8<Float>.self)
                var acc = SIMD8<Float>()
                for j in 0..<i {
                    let gv = SIMD8(repeating: g[k &+ j])
                    let o = (j &* d) &* 4 &+ off
                    acc += gv * tRaw.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    let dj = dRaw.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    dRaw.storeBytes(of: dj + gv * ti, toByteOffset: o, as: SIMD8<Float>.self)
                }
                dRaw.storeBytes(of: acc, toByteOffset: (i &* d) &* 4 &+ off, as: SIMD8<Float>.self)
                q &+= 8
            }
            k &+= i
        }
    }
}
