import Foundation

/// `oracle.json` of `herd generate criteo`: the planted click model's `OracleScores` on the
/// generated test split, the seed and each categorical column's value space.
public struct CriteoOracle: PlantedOracle, Equatable {
    public var scores: OracleScores
    public var seed: UInt64
    /// Rows in each categorical column's value space, C1…C26.
    public var cardinalities: [Int]

    enum CodingKeys: String, CodingKey { case seed, cardinalities }

    public init(scores: OracleScores, seed: UInt64, cardinalities: [Int]) {
        (self.scores, self.seed, self.cardinalities) = (scores, seed, cardinalities)
    }

    // NOTE: the scores' keys sit at the top level of the JSON object beside these (one flat
    // `oracle.json`, as scripts read it), so both share the encoder's keyed container.
    public init(from decoder: any Decoder) throws {
        scores = try OracleScores(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        seed = try c.decode(UInt64.self, forKey: .seed)
        cardinalities = try c.decode([Int].self, forKey: .cardinalities)
    }

    public func encode(to encoder: any Encoder) throws {
        try scores.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(seed, forKey: .seed)
        try c.encode(cardinalities, forKey: .cardinalities)
    }

    /// Exact ROC AUC (see `OracleScores.auc`).
    public static func auc(scores: [Double], labels: [Bool]) -> Double { OracleScores.auc(scores: scores, labels: labels) }
}
