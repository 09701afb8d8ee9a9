import Foundation

/// What a perfect model scores on a generated test split: the planted model's true probabilities
/// against the written labels. Every generator's `oracle.json` carries these keys at its top level
/// (see `PlantedOracle`), so `testAUC` and `testLogloss` bound what any trained model can reach on
/// that split (up to sampling noise).
public struct OracleScores: Sendable, Codable, Equatable {
    /// Exact ROC AUC of the true probabilities on the test rows (ties count one half).
    public var testAUC: Double
    /// AUC of the planted score without its interaction terms: what main effects alone (a linear
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

    enum CodingKeys: String, CodingKey {
        case testAUC = "test_auc", testAUCWithoutInteractions = "test_auc_without_interactions"
        case testLogloss = "test_logloss", testLoglossBaseline = "test_logloss_baseline"
        case trainRows = "train_rows", testRows = "test_rows", positiveRate = "positive_rate"
        case trainPositiveRate = "train_positive_rate", testPositiveRate = "test_positive_rate"
    }

    /// The scores of one generated split. `testProbabilities`, `mainEffectScores` and `testLabels`
    /// are per test row (any monotone score works for `mainEffectScores`); the training split is
    /// summarised by its row and positive counts.
    public init(testProbabilities: [Double], mainEffectScores: [Double], testLabels: [Bool], trainRows: Int, trainPositives: Int) {
        precondition(testProbabilities.count == testLabels.count && mainEffectScores.count == testLabels.count, "one score per test row")
        let testPositives = testLabels.reduce(0) { $0 + ($1 ? 1 : 0) }
        let trainRate = Double(trainPositives) / Double(trainRows)
        testAUC = Self.auc(scores: testProbabilities, labels: testLabels)
        testAUCWithoutInteractions = Self.auc(scores: mainEffectScores, labels: testLabels)
        testLogloss = Self.logloss(probabilities: testProbabilities, labels: testLabels)
        testLoglossBaseline = Self.logloss(probabilities: Array(repeating: trainRate, count: testLabels.count), labels: testLabels)
        self.trainRows = trainRows
        testRows = testLabels.count
        positiveRate = Double(trainPositives + testPositives) / Double(trainRows + testLabels.count)
        trainPositiveRate = trainRate
        testPositiveRate = Double(testPositives) / Double(testLabels.count)
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

/// A generator's `oracle.json`: the shared `OracleScores` (flattened into the top-level object)
/// plus what is particular to that data set.
public protocol PlantedOracle: Codable, Sendable {
    var scores: OracleScores { get }
}

extension PlantedOracle {
    public var testAUC: Double { scores.testAUC }
    public var testAUCWithoutInteractions: Double { scores.testAUCWithoutInteractions }
    public var testLogloss: Double { scores.testLogloss }
    public var testLoglossBaseline: Double { scores.testLoglossBaseline }
    public var trainRows: Int { scores.trainRows }
    public var testRows: Int { scores.testRows }
    public var positiveRate: Double { scores.positiveRate }
    public var trainPositiveRate: Double { scores.trainPositiveRate }
    public var testPositiveRate: Double { scores.testPositiveRate }

    /// Writes `self` as pretty, key-sorted JSON to `path` atomically (NaN as the string "NaN": a
    /// tiny test split may hold one class only). Throws `HerdDataError.io`.
    func writeJSON(to path: String) throws {
        try writeOracleJSON(self, to: path)
    }
}

/// Pretty, key-sorted JSON of `value` written atomically to `path`; throws `HerdDataError.io`.
func writeOracleJSON(_ value: some Encodable, to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
    do {
        try encoder.encode(value).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
        throw HerdDataError.io(path: path, message: "cannot write: \(error.localizedDescription)")
    }
}
