import Foundation
import HerdServing
import HerdTensor

/// Clustered unit vectors: `clusters` random centres, each point a centre plus Gaussian noise,
/// normalised (the shape of two-tower item embeddings).
func clusteredVectors(count: Int, dimension d: Int, clusters: Int, noise: Float = 0.35, seed: UInt64) -> [Float] {
    var rng = SplitMix64(seed: seed)
    let centres = (0..<(clusters * d)).map { _ in rng.nextGaussian() }
    var out = [Float](repeating: 0, count: count * d)
    for i in 0..<count {
        let c = Int(rng.next() % UInt64(clusters))
        var norm: Float = 0
        for j in 0..<d {
            let v = centres[c * d + j] / Float(d).squareRoot() + noise * rng.nextGaussian() / Float(d).squareRoot()
            out[i * d + j] = v
            norm += v * v
        }
        let s = 1 / norm.squareRoot()
        for j in 0..<d { out[i * d + j] *= s }
    }
    return out
}

/// The exact top-k by a plain double loop (the reference for the Flat index).
func bruteForce(_ x: [Float], ids: [Int64], query q: [Float], k: Int, metric: ANNMetric) -> [(Int64, Float)] {
    let d = q.count
    var all: [(Int64, Float)] = []
    for r in 0..<ids.count {
        var s: Float = 0
        for j in 0..<d {
            if metric == .innerProduct { s += q[j] * x[r * d + j] } else { let t = q[j] - x[r * d + j]; s += t * t }
        }
        all.append((ids[r], s))
    }
    all.sort { metric == .innerProduct ? $0.1 > $1.1 : $0.1 < $1.1 }
    return Array(all.prefix(k))
}

/// Mean fraction of the exact top-k ids found.
func recall(_ approx: ANNResults, _ exact: ANNResults) -> Double {
    var hit = 0
    for b in 0..<exact.queries { hit += Set(approx.ids(of: b)).intersection(exact.ids(of: b)).count }
    return Double(hit) / Double(exact.queries * exact.k)
}

func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("herd-serving-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
