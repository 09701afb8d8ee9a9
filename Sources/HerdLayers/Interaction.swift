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
                ds.update(from: gs, count: d)
                (ds + d).update(repeating: 0, count: (n - 1) * d)
                if d % 8 == 0 {
                    Self.pairwiseDotsBackwardSIMD(gs + d, input: ts, vectors: n, chunks: d / 8, into: ds)
                } else {
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

    // NOTE: the backward SIMD path works on one sample's `n × d` block (d a multiple of 8): it
    // forms the symmetric gradient matrix G (G[i,j] = G[j,i] = dR pair (i,j)) and computes
    // dT = G · T. `a * b` then `+=` rather than `addProduct`: without a target CPU the latter
    // lowers to scalar `fmaf` calls.

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

    /// Backward of the `dot` forward: `dT += G · T` with `G` the symmetric pair-gradient matrix.
    static func pairwiseDotsBackwardSIMD(_ g: UnsafePointer<Float>, input t: UnsafePointer<Float>, vectors n: Int, chunks c: Int, into dt: UnsafeMutablePointer<Float>) {
        let d = c &* 8
        withUnsafeTemporaryAllocation(of: Float.self, capacity: n &* n) { buf in
            let gm = buf.baseAddress!
            var k = 0
            for i in 0..<n {
                gm[i &* n &+ i] = 0
                for j in 0..<i {
                    gm[i &* n &+ j] = g[k]
                    gm[j &* n &+ i] = g[k]
                    k &+= 1
                }
            }
            let tRaw = UnsafeRawPointer(t), dRaw = UnsafeMutableRawPointer(dt)
            for i in 0..<n {
                let gi = gm + i &* n
                for q in 0..<c {
                    // Two accumulators over even and odd j (independent add chains).
                    var a0 = dRaw.loadUnaligned(fromByteOffset: (i &* d &+ q &* 8) &* 4, as: SIMD8<Float>.self)
                    var a1 = SIMD8<Float>()
                    var j = 0
                    while j &+ 1 < n {
                        a0 += SIMD8(repeating: gi[j]) * tRaw.loadUnaligned(fromByteOffset: (j &* d &+ q &* 8) &* 4, as: SIMD8<Float>.self)
                        a1 += SIMD8(repeating: gi[j &+ 1]) * tRaw.loadUnaligned(fromByteOffset: ((j &+ 1) &* d &+ q &* 8) &* 4, as: SIMD8<Float>.self)
                        j &+= 2
                    }
                    if j < n { a0 += SIMD8(repeating: gi[j]) * tRaw.loadUnaligned(fromByteOffset: (j &* d &+ q &* 8) &* 4, as: SIMD8<Float>.self) }
                    dRaw.storeBytes(of: a0 + a1, toByteOffset: (i &* d &+ q &* 8) &* 4, as: SIMD8<Float>.self)
                }
            }
        }
    }
}
