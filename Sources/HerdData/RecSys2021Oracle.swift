import Foundation

/// `oracle.json` of `herd generate recsys2021`: the planted engagement model's `OracleScores` for
/// "any engagement" on the generated test split, per engagement type rates and AUCs, and the
/// user and tweet counts.
public struct RecSys2021Oracle: PlantedOracle, Equatable {
    /// Scores of the true probability of any engagement; the main-effects AUC leaves out the
    /// interaction terms (media × language, language match, engager × author affinity).
    public var scores: OracleScores
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
        case engagementPositiveRates = "engagement_positive_rates", engagementTestAUC = "engagement_test_auc"
        case seed, users, items, userPool = "user_pool", itemPool = "item_pool"
    }

    public init(scores: OracleScores, engagementPositiveRates: [String: Double], engagementTestAUC: [String: Double],
                seed: UInt64, users: Int, items: Int, userPool: Int, itemPool: Int) {
        self.scores = scores
        (self.engagementPositiveRates, self.engagementTestAUC) = (engagementPositiveRates, engagementTestAUC)
        (self.seed, self.users, self.items, self.userPool, self.itemPool) = (seed, users, items, userPool, itemPool)
    }

    // NOTE: flat JSON, as in `CriteoOracle`.
    public init(from decoder: any Decoder) throws {
        scores = try OracleScores(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        engagementPositiveRates = try c.decode([String: Double].self, forKey: .engagementPositiveRates)
        engagementTestAUC = try c.decode([String: Double].self, forKey: .engagementTestAUC)
        seed = try c.decode(UInt64.self, forKey: .seed)
        users = try c.decode(Int.self, forKey: .users)
        items = try c.decode(Int.self, forKey: .items)
        userPool = try c.decode(Int.self, forKey: .userPool)
        itemPool = try c.decode(Int.self, forKey: .itemPool)
    }

    public func encode(to encoder: any Encoder) throws {
        try scores.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(engagementPositiveRates, forKey: .engagementPositiveRates)
        try c.encode(engagementTestAUC, forKey: .engagementTestAUC)
        try c.encode(seed, forKey: .seed)
        try c.encode(users, forKey: .users)
        try c.encode(items, forKey: .items)
        try c.encode(userPool, forKey: .userPool)
        try c.encode(itemPool, forKey: .itemPool)
    }

    /// Exact ROC AUC (see `OracleScores.auc`).
    public static func auc(scores: [Double], labels: [Bool]) -> Double { OracleScores.auc(scores: scores, labels: labels) }
}
