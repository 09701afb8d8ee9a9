import HerdTensor

/// Synthetic embeddings shaped like two-tower item vectors, for the ANN benchmark: `clusters`
/// Gaussian centres, each point a centre plus isotropic noise (`noise` relative to the centre's
/// scale), L2-normalised. Deterministic for a seed.
public enum ClusteredVectors {
    /// `count` vectors `[count, D]`, row-major.
    /// `seed` fixes the centres, `stream` the points: base vectors and queries use one seed and two streams.
    public static func generate(count: Int, dimension d: Int, clusters: Int, noise: Float = 0.35, seed: UInt64, stream: UInt64 = 0) -> [Float] {
        var rng = SplitMix64(seed: seed)
        let centres = (0..<(clusters * d)).map { _ in rng.nextGaussian() }
        var out = [Float](repeating: 0, count: count * d)
        let scale = 1 / Float(d).squareRoot()
        // NOTE: rows in parallel slices, each with its own generator stream, so 1M × 128 is quick.
        let parts = Parallel.ranges(count, parts: 64)
        out.withUnsafeMutableBufferPointer { o in
            let box = UncheckedSendable(o.baseAddress!)
            Parallel.forEach(parts.count) { p in
                var r = SplitMix64(seed: (seed ^ (stream &* 0xD1B5_4A32_D192_ED03)) &+ 0x9E37_79B9 &* UInt64(p + 1))
                for i in parts[p] {
                    let c = Int(r.next() % UInt64(clusters))
                    var norm: Float = 0
                    for j in 0..<d {
                        let v = (centres[c * d + j] + noise * r.nextGaussian()) * scale
                        box.value[i * d + j] = v
                        norm += v * v
                    }
                    let s = 1 / max(norm.squareRoot(), 1e-12)
                    for j in 0..<d { box.value[i * d + j] *= s }
                }
            }
        }
        return out
    }
}
