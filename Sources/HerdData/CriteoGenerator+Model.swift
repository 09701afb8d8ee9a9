import Foundation
import HerdTensor

/// The planted click model behind `CriteoGenerator`, fixed by `(seed, rows)`.
///
/// Per row: a latent "activity" `a ~ N(0,1)` drives correlated, heavy-tailed dense counts
/// (`x = ⌊exp(μ + σ·z)⌋ − 1`, `z` loading on `a`; I2 also takes the values −1…−3 like the real
/// column); each categorical column draws a Zipf-distributed rank over its own cardinality; then
///
///     logit = bias + Σ_j β_j·(log1p(x_j) − μ_j)            dense signal (missing → 0)
///                  + Σ_c w_c(value)                         per-value effects (missing has its own)
///                  + Σ_(c,c') ⟨v_c(value), v_c'(value')⟩    latent interactions of 6 field pairs
///     label ~ Bernoulli(sigmoid(logit))
///
/// Value effects and latent vectors are hashes of (seed, column, rank), so no tables are stored.
/// `bias` is calibrated on a pilot sample so that about 25 % of rows are clicks.
struct PlantedClickModel: Sendable {
    struct Categorical: Sendable {
        var cardinality: Int
        var zipfExponent: Double
        var missingRate: Double
        var effectScale: Double
        /// Scale of the latent vector (0 when the column is in no interacting pair).
        var latentScale: Double
        var salt: UInt64
        // Precomputed for inverse-CDF Zipf sampling.
        var zipfA: Double
        var zipfInverseExponent: Double
    }

    struct Dense: Sendable {
        var missingRate: Double
        var mu: Double
        var sigma: Double
        var activityLoading: Double
        var beta: Double
        /// Probability of a small negative value (−1…−3), as in the real I2.
        var negativeRate: Double
    }

    static let latentDim = 4
    static let targetPositiveRate = 0.255

    let seed: UInt64
    var categorical: [Categorical] = []
    var dense: [Dense] = []
    /// Pairs of categorical columns whose latent vectors interact.
    let pairs: [(Int, Int)] = [(0, 1), (4, 5), (8, 13), (6, 12), (16, 22), (2, 3)]
    var bias: Double = 0

    init(seed: UInt64, rows: Int) {
        self.seed = seed
        // NOTE: cardinalities follow the real Kaggle columns; the large ones (> 15k in the real
        // data) shrink with the row count (≈ real × rows / 4.5M, clamped to 10^4…10^6) so that a
        // small file still repeats values often enough to learn from.
        let realCardinality = [
            1460, 583, 10_131_227, 2_202_608, 305, 24, 12517, 633, 3, 93145, 5683, 8_351_593, 3194,
            27, 14992, 5_461_306, 10, 5652, 2173, 4, 7_046_547, 18, 15, 286_181, 105, 142_572,
        ]
        let missing: [Double] = [
            0, 0, 0.034, 0.034, 0, 0.12, 0, 0, 0, 0, 0, 0.034, 0, 0, 0, 0.034, 0, 0, 0.44, 0.44, 0.034,
            0.76, 0, 0.034, 0.44, 0.44,
        ]
        let inPair = Set(pairs.flatMap { [$0.0, $0.1] })
        for c in 0..<Criteo.sparseCount {
            let real = realCardinality[c]
            let k = real <= 15000 ? real : min(1_000_000, max(10_000, Int(Double(real) * Double(rows) / 4_500_000)))
            let large = real > 15000
            let s = large ? 1.05 + 0.02 * Double(c % 4) : 1.15 + 0.05 * Double(c % 5)
            let a = 1 - s
            categorical.append(Categorical(
                cardinality: k, zipfExponent: s, missingRate: missing[c],
                effectScale: large ? 0.35 : [0.5, 0.3, 0.15, 0.4][c % 4],
                latentScale: inPair.contains(c) ? 0.9 : 0,
                salt: mix64(seed ^ mix64(0xC0FFEE + UInt64(c))),
                zipfA: pow(Double(k) + 1, a) - 1, zipfInverseExponent: 1 / a))
        }
        let mu: [Double] = [0.7, 1.5, 2.0, 1.6, 7.8, 3.4, 1.2, 2.0, 3.6, 0.3, 0.7, 0.2, 1.5]
        let sigma: [Double] = [1.2, 1.8, 1.5, 1.0, 1.6, 1.5, 1.4, 1.0, 1.3, 0.6, 0.8, 1.0, 1.2]
        let missingDense: [Double] = [0.45, 0, 0.21, 0.22, 0.03, 0.22, 0.04, 0.0005, 0.04, 0.45, 0.04, 0.77, 0.22]
        let beta: [Double] = [0.35, 0.05, -0.12, 0, -0.08, 0.1, 0.25, 0, 0.05, 0.4, 0.3, 0.1, -0.15]
        for j in 0..<Criteo.denseCount {
            dense.append(Dense(
                missingRate: missingDense[j], mu: mu[j], sigma: sigma[j], activityLoading: j % 3 == 0 ? 0.3 : 0.6,
                beta: beta[j], negativeRate: j == 1 ? 0.12 : 0))
        }
        bias = calibrateBias()
    }

    /// One generated row.
    struct Row {
        var dense: [Int?] = Array(repeating: nil, count: Criteo.denseCount)
        var ids: [UInt32?] = Array(repeating: nil, count: Criteo.sparseCount)
        /// The logit without `bias`.
        var logit: Double = 0
        /// The part of `logit` from the latent pair interactions.
        var interaction: Double = 0
    }

    /// Draws the features of one row and its logit (without bias).
    func draw(_ rng: inout SplitMix64, into row: inout Row) {
        var logit = 0.0
        let activity = Double(rng.nextGaussian())
        for j in 0..<Criteo.denseCount {
            let d = dense[j]
            if rng.nextDouble() < d.missingRate {
                row.dense[j] = nil
                continue
            }
            let z = d.activityLoading * activity + (1 - d.activityLoading * d.activityLoading).squareRoot() * Double(rng.nextGaussian())
            var x = max(0, Int(min(exp(d.mu + d.sigma * z), 1e9)) - 1)
            if d.negativeRate > 0 && rng.nextDouble() < d.negativeRate { x = -1 - Int(rng.next() % 3) }
            row.dense[j] = x
            logit += d.beta * (log1p(Double(max(x, 0))) - d.mu)
        }
        var ranks = [Int](repeating: 0, count: Criteo.sparseCount)
        for c in 0..<Criteo.sparseCount {
            let col = categorical[c]
            if rng.nextDouble() < col.missingRate {
                row.ids[c] = nil
                logit += col.effectScale * unit(col.salt, 0, 0)
                continue
            }
            let u = rng.nextDouble()
            let rank = min(col.cardinality, max(1, Int(pow(1 + u * col.zipfA, col.zipfInverseExponent))))
            ranks[c] = rank
            row.ids[c] = UInt32(truncatingIfNeeded: mix64(col.salt ^ UInt64(rank)))
            logit += col.effectScale * 1.7320508 * unit(col.salt, UInt64(rank), 0)
        }
        var interaction = 0.0
        for (a, b) in pairs where ranks[a] > 0 && ranks[b] > 0 {
            let ca = categorical[a], cb = categorical[b]
            var dot = 0.0
            for k in 1...Self.latentDim {
                dot += unit(ca.salt, UInt64(ranks[a]), UInt64(k)) * unit(cb.salt, UInt64(ranks[b]), UInt64(k))
            }
            interaction += ca.latentScale * cb.latentScale * dot
        }
        row.logit = logit + interaction
        row.interaction = interaction
    }

    /// A bias giving `targetPositiveRate` on a 20k-row pilot sample (bisection; deterministic).
    private func calibrateBias() -> Double {
        var rng = SplitMix64(seed: mix64(seed ^ 0xB1A5))
        var row = Row()
        var logits: [Double] = []
        for _ in 0..<20000 {
            draw(&rng, into: &row)
            logits.append(row.logit)
        }
        var lo = -15.0, hi = 15.0
        for _ in 0..<60 {
            let mid = (lo + hi) / 2
            let rate = logits.reduce(0) { $0 + 1 / (1 + exp(-($1 + mid))) } / Double(logits.count)
            if rate < Self.targetPositiveRate { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }
}

/// A hash of `(salt, rank, k)` as a uniform value in [−1, 1).
@inline(__always)
func unit(_ salt: UInt64, _ rank: UInt64, _ k: UInt64) -> Double {
    let h = mix64(salt ^ mix64(rank &* 0x9E37_79B9_7F4A_7C15 &+ k))
    return Double(h >> 11) * (2.0 / 9_007_199_254_740_992.0) - 1
}

/// The SplitMix64 finaliser: a bijective 64-bit mix.
@inline(__always)
func mix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
