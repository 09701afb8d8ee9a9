import Foundation

/// What a perfect model would score on a generated RecSys 2021 test split, written as
/// `oracle.json`. The probabilities are the planted model's true engagement probabilities, so
/// `testAUC` and `testLogloss` bound what any trained model can reach on "any engagement" for that
/// split (up to sampling noise).
public struct RecSys2021Oracle: Sendable, Codable, Equatable {
    /// Exact ROC AUC of the true probability of any engagement on the test rows (ties count one half).
    public var testAUC: Double
    /// AUC of the planted model without its interaction terms (media × language, language match,
    /// engager × author affinity): what main effects alone can rank.
    public var testAUCWithoutInteractions: Double
    /// Mean binary cross-entropy of the true probabilities on the test rows.
    public var testLogloss: Double
    /// Logloss of always predicting the training positive rate (a floor any model must beat).
    public var testLoglossBaseline: Double
    public var trainRows: Int
    public var testRows: Int
    /// Rows with any engagement, over all rows.
    public var positiveRate: Double
    public var trainPositiveRate: Double
    public var testPositiveRate: Double
    /// Positive rate of each engagement type over all rows, keyed by `RecSys2021Schema.engagementNames`.
    public var engagementPositiveRates: [String: Double]
    /// Exact test AUC of each engagement type's true probability, same keys (absent when undefined).
    public var engagementTestAUC: [String: Double]
    public var seed: UInt64
    /// Distinct users (engaging or engaged-with) in the written rows.
    public var users: Int
    /// Distinct tweets in the written rows.
    public var items: Int
    /// Sizes of the pools the rows draw from.
    public var userPool: Int
    public var itemPool: Int

    enum CodingKeys: String, CodingKey {
        case testAUC = "test_auc", testAUCWithoutInteractions = "test_auc_without_interactions"
        case testLogloss = "test_logloss", testLoglossBaseline = "test_logloss_baseline"
        case trainRows = "train_rows", testRows = "test_rows", positiveRate = "positive_rate"
        case trainPositiveRate = "train_positive_rate", testPositiveRate = "test_positive_rate"
        case engagementPositiveRates = "engagement_positive_rates", engagementTestAUC = "engagement_test_auc"
        case seed, users, items, userPool = "user_pool", itemPool = "item_pool"
    }

    /// Exact ROC AUC (Mann–Whitney U; tied scores count one half); `nan` with one class.
    public static func auc(scores: [Double], labels: [Bool]) -> Double {
        CriteoOracle.auc(scores: scores, labels: labels)
    }

    /// Mean binary cross-entropy, probabilities clamped to [1e-7, 1 − 1e-7].
    public static func logloss(probabilities: [Double], labels: [Bool]) -> Double {
        CriteoOracle.logloss(probabilities: probabilities, labels: labels)
    }
}
