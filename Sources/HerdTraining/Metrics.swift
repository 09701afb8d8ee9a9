import Foundation

/// Binary-classification metrics over predicted probabilities and 0/1 labels.
public struct BinaryMetrics: Sendable, Codable, Equatable {
    /// Area under the ROC curve, exact, with tied scores counted as half (Mann–Whitney U).
    /// `nan` when only one class is present.
    public var auc: Double
    /// Mean binary cross-entropy, probabilities clamped to [1e-7, 1 − 1e-7].
    public var logloss: Double
    /// Fraction of rows where `p ≥ threshold` matches the label.
    public var accuracy: Double
    /// TP / (TP + FP); 0 when nothing is predicted positive.
    public var precision: Double
    /// TP / (TP + FN); 0 when there are no positives.
    public var recall: Double
    /// Rows evaluated.
    public var count: Int
    /// Fraction of positive labels.
    public var positiveRate: Double

    /// Computes every metric. `probabilities` and `labels` have the same length.
    public init(probabilities p: [Float], labels y: [Float], threshold: Float = 0.5) {
        precondition(p.count == y.count, "\(p.count) predictions for \(y.count) labels")
        let n = p.count
        count = n
        var tp = 0, fp = 0, fn = 0, tn = 0, pos = 0
        var ll = 0.0
        for i in 0..<n {
            let positive = y[i] >= 0.5
            let predicted = p[i] >= threshold
            if positive { pos += 1 }
            switch (positive, predicted) {
            case (true, true): tp += 1
            case (false, true): fp += 1
            case (true, false): fn += 1
            case (false, false): tn += 1
            }
            let q = min(max(Double(p[i]), 1e-7), 1 - 1e-7)
            ll -= positive ? log(q) : log(1 - q)
        }
        logloss = n > 0 ? ll / Double(n) : .nan
        accuracy = n > 0 ? Double(tp + tn) / Double(n) : .nan
        precision = tp + fp > 0 ? Double(tp) / Double(tp + fp) : 0
        recall = tp + fn > 0 ? Double(tp) / Double(tp + fn) : 0
        positiveRate = n > 0 ? Double(pos) / Double(n) : .nan
        auc = Self.auc(probabilities: p, labels: y)
    }

    /// Exact ROC AUC: sort by score, walk groups of equal scores; a tied (positive, negative) pair
    /// counts one half.
    public static func auc(probabilities p: [Float], labels y: [Float]) -> Double {
        let n = p.count
        let order = (0..<n).sorted { p[$0] < p[$1] }
        var negativesBelow = 0.0, pairs = 0.0
        var positives = 0.0, negatives = 0.0
        var i = 0
        while i < n {
            var j = i
            var groupPos = 0.0, groupNeg = 0.0
            while j < n && p[order[j]] == p[order[i]] {
                if y[order[j]] >= 0.5 { groupPos += 1 } else { groupNeg += 1 }
                j += 1
            }
            pairs += groupPos * (negativesBelow + 0.5 * groupNeg)
            negativesBelow += groupNeg
            positives += groupPos
            negatives += groupNeg
            i = j
        }
        guard positives > 0, negatives > 0 else { return .nan }
        return pairs / (positives * negatives)
    }
}
