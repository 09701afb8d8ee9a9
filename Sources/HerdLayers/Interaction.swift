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
        for s in 0..<b {
            let ts = t + s * stride
            let rs = r + s * w
            switch kind {
            case .cat:
                rs.update(from: ts, count: stride)
            case .dot:
                rs.update(from: ts, count: d)
                if d % 8 == 0 {
                    Self.pairwiseDotsSIMD(ts, vectors: n, chunks: d / 8, into: rs + d)
                } else {
                    var k = d
                    for i in 1..<n {
                        let ti = ts + i * d
                        for j in 0..<i {
                            rs[k] = Kernels.dot(ti, ts + j * d, count: d)
                            k += 1
                        }
                    }
                }
            }
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

    // NOTE: the SIMD paths load each vector as `chunks` SIMD8 values; with a target CPU they become
    // AVX registers. `a * b` then `+=` rather than `addProduct`: without a target CPU the latter
    // lowers to scalar `fmaf` calls. Pairs are visited in the same (i, j < i) order as the scalar path.

    /// Lower-triangle dots of one sample's `vectors` rows of `8·chunks` floats.
    @inline(__always)
    static func pairwiseDotsSIMD(_ t: UnsafePointer<Float>, vectors n: Int, chunks c: Int, into r: UnsafeMutablePointer<Float>) {
        let v = UnsafeRawPointer(t)
        var k = 0
        for i in 1..<n {
            for j in 0..<i {
                var acc = SIMD8<Float>()
                for q in 0..<c {
                    let a = v.loadUnaligned(fromByteOffset: (i * c + q) * 32, as: SIMD8<Float>.self)
                    let b = v.loadUnaligned(fromByteOffset: (j * c + q) * 32, as: SIMD8<Float>.self)
                    acc += a * b
                }
                r[k] = acc.sum()
                k += 1
            }
        }
    }

    /// Backward of `pairwiseDotsSIMD`: accumulates `g_ij·t_j` into `dt_i` and `g_ij·t_i` into `dt_j`.
    @inline(__always)
    static func pairwiseDotsBackwardSIMD(_ g: UnsafePointer<Float>, input t: UnsafePointer<Float>, vectors n: Int, chunks c: Int, into dt: UnsafeMutablePointer<Float>) {
        let v = UnsafeRawPointer(t), dv = UnsafeMutableRawPointer(dt)
        var k = 0
        for i in 1..<n {
            for j in 0..<i {
                let gij = SIMD8<Float>(repeating: g[k])
                k += 1
                for q in 0..<c {
                    let oi = (i * c + q) * 32, oj = (j * c + q) * 32
                    let a = v.loadUnaligned(fromByteOffset: oi, as: SIMD8<Float>.self)
                    let b = v.loadUnaligned(fromByteOffset: oj, as: SIMD8<Float>.self)
                    var di = dv.loadUnaligned(fromByteOffset: oi, as: SIMD8<Float>.self)
                    var dj = dv.loadUnaligned(fromByteOffset: oj, as: SIMD8<Float>.self)
                    di += gij * b
                    dj += gij * a
                    dv.storeBytes(of: di, toByteOffset: oi, as: SIMD8<Float>.self)
                    dv.storeBytes(of: dj, toByteOffset: oj, as: SIMD8<Float>.self)
                }
            }
        }
    }
}
