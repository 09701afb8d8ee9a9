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
    /// zero) and row `i` of the Gram matrix is `Σ_e T[i,e]·Tᵀ[e, 0..<W]`, 8 columns per vector op;
    /// row `i` computes only the ⌈i/8⌉ chunks holding its `j < i` (about half of a full 32-wide
    /// row for 27 vectors). Chunks are stored straight into `r`; the up to 7 values a row's last
    /// chunk writes past its end land in later rows' (or later samples') slots, which are written
    /// afterwards — only rows whose chunks would run past the batch go through a scratch row.
    /// `Tᵀ` is allocated and zeroed once per batch.
    static func dotForward(_ t: UnsafePointer<Float>, batch b: Int, vectors n: Int, dimension d: Int, into r: UnsafeMutablePointer<Float>) {
        let w = d + n * (n - 1) / 2
        let width = max(32, (n + 31) / 32 * 32)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d * width + width + 8) { buf in
            let tt = buf.baseAddress!, scratch = tt + d * width
            tt.update(repeating: 0, count: d * width)
            let ttRaw = UnsafeRawPointer(tt)
            for s in 0..<b {
                let ts = t + s &* n &* d, rs = r + s &* w
                rs.update(from: ts, count: d)
                for j in 0..<n { for e in 0..<d { tt[e &* width &+ j] = ts[j &* d &+ e] } }
                var k = d
                for i in 1..<n {
                    let ti = ts + i &* d
                    // Rows whose chunk stores would run past the batch go through the scratch row.
                    let last = s &* w &+ k &+ (i &+ 7) / 8 &* 8 > b &* w
                    let out = UnsafeMutableRawPointer(last ? scratch : rs + k)
                    var block = 0
                    while block < i {
                        // Chunks of 8 columns holding some j < i in this 32-column block (1…4).
                        let live = min(4, (i &- block &+ 7) / 8)
                        var off = block &* 4
                        let o = block &* 4
                        switch live {
                        case 4:
                            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                            for e in 0..<d {
                                let x = SIMD8(repeating: ti[e])
                                a0 += x * ttRaw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
                                a1 += x * ttRaw.loadUnaligned(fromByteOffset: off &+ 32, as: SIMD8<Float>.self)
                                a2 += x * ttRaw.loadUnaligned(fromByteOffset: off &+ 64, as: SIMD8<Float>.self)
                                a3 += x * ttRaw.loadUnaligned(fromByteOffset: off &+ 96, as: SIMD8<Float>.self)
                                off &+= width &* 4
                            }
                            out.storeBytes(of: a0, toByteOffset: o, as: SIMD8<Float>.self)
                            out.storeBytes(of: a1, toByteOffset: o &+ 32, as: SIMD8<Float>.self)
                            out.storeBytes(of: a2, toByteOffset: o &+ 64, as: SIMD8<Float>.self)
                            out.storeBytes(of: a3, toByteOffset: o &+ 96, as: SIMD8<Float>.self)
                        case 3:
                            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>()
                            for e in 0..<d {
                                let x = SIMD8(repeating: ti[e])
                                a0 += x * ttRaw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
                                a1 += x * ttRaw.loadUnaligned(fromByteOffset: off &+ 32, as: SIMD8<Float>.self)
                                a2 += x * ttRaw.loadUnaligned(fromByteOffset: off &+ 64, as: SIMD8<Float>.self)
                                off &+= width &* 4
                            }
                            out.storeBytes(of: a0, toByteOffset: o, as: SIMD8<Float>.self)
                            out.storeBytes(of: a1, toByteOffset: o &+ 32, as: SIMD8<Float>.self)
                            out.storeBytes(of: a2, toByteOffset: o &+ 64, as: SIMD8<Float>.self)
                        case 2:
                            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>()
                            for e in 0..<d {
                                let x = SIMD8(repeating: ti[e])
                                a0 += x * ttRaw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
                                a1 += x * ttRaw.loadUnaligned(fromByteOffset: off &+ 32, as: SIMD8<Float>.self)
                                off &+= width &* 4
                            }
                            out.storeBytes(of: a0, toByteOffset: o, as: SIMD8<Float>.self)
                            out.storeBytes(of: a1, toByteOffset: o &+ 32, as: SIMD8<Float>.self)
                        default:
                            var a0 = SIMD8<Float>()
                            for e in 0..<d {
                                a0 += SIMD8(repeating: ti[e]) * ttRaw.loadUnaligned(fromByteOffset: off, as: SIMD8<Float>.self)
                                off &+= width &* 4
                            }
                            out.storeBytes(of: a0, toByteOffset: o, as: SIMD8<Float>.self)
                        }
                        block &+= 32
                    }
                    if last { (rs + k).update(from: scratch, count: i) }
                    k &+= i
                }
            }
        }
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
