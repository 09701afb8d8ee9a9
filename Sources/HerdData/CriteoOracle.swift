import Foundation

/// What a perfect model would score on a generated test split, written as `oracle.json`.
/// The probabilities are the planted model's true click probabilities, so `testAUC` and
/// `testLogloss` bound what any trained model can reach on that split (up to sampling noise).
public struct CriteoOracle: Sendable, Codable, Equatable {
    /// Exact ROC AUC of the true probabilities on the test rows (ties count one half).
    public var testAUC: Double
    /// AUC of the planted logit without its pair interactions: what main effects alone (a linear
    /// model on the same features, at best) can rank; the gap to `testAUC` is the interactions' share.
    public var testAUCWithoutInteractions: Double
    /// Mean binary cross-entropy of the true probabilities on the test rows.
    public var testLogloss: Double
    /// Logloss of always predicting the training positive rate (a floor any model must beat).
    public var testLoglossBaseline: Double
    public var trainRows: Int
    public var testRows: Int
    /// Positives over all rows.
    public var positiveRate: Double
    public var trainPositiveRate: Double
    public var testPositiveRate: Double
    public var seed: UInt64
    /// Rows in each categorical column's value space, C1…C26.
    public var cardinalities: [Int]

    enum CodingKeys: String, CodingKey {
        case testAUC = "test_auc", testAUCWithoutInteractions = "test_auc_without_interactions", testLogloss = "test_logloss", testLoglossBaseline = "test_logloss_baseline"
        case trainRows = "train_rows", testRows = "test_rows", positiveRate = "positive_rate"
        case trainPositiveRate = "train_positive_rate", testPositiveRate = "test_positive_rate"
        case seed, cardinalities
    }

    /// Exact ROC AUC by sorting (Mann–Whitney U; tied scores count one half); `nan` with one class.
    public static func auc(scores: [Double], labels: [Bool]) -> Double {
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var negativesBelow = 0.0, pairs = 0.0, positives = 0.0, negatives = 0.0
        var i = 0
        while i < order.count {
            var j = i
            var groupPositives = 0.0, groupNegatives = 0.0
            while j < order.count && scores[order[j]] == scores[order[i]] {
                if labels[order[j]] { groupPositives += 1 } else { groupNegatives += 1 }
                j += 1
            }
            pairs += groupPositives * (negativesBelow + 0.5 * groupNegatives)
            negativesBelow += groupNegatives
            positives += groupPositives
            negatives += groupNegatives
            i = j
        }
        return positives > 0 && negatives > 0 ? pairs / (positives * negatives) : .nan
    }

    /// Mean binary cross-entropy, probabilities clamped to [1e-7, 1 − 1e-7].
    public static func logloss(probabilities: [Double], labels: [Bool]) -> Double {
        guard !probabilities.isEmpty else { return .nan }
        var total = 0.0
        for (p, y) in zip(probabilities, labels) {
            let q = min(max(p, 1e-7), 1 - 1e-7)
            total -= y ? log(q) : log(1 - q)
        }
        return total / Double(probabilities.count)
    }
}
