import Foundation

/// Wall time of each stage of one `recommend` call (Friesian's `recommend.*` timers), in seconds.
public struct StageTimings: Sendable, Equatable, Codable {
    /// User-embedding lookup + ANN search for `canK` candidates.
    public var recall: Double = 0
    /// Feature-store batch get of the user row and the candidate rows.
    public var features: Double = 0
    /// Assembling the ranking rows (the `BatchSpec` columns from the user and item rows).
    public var preprocess: Double = 0
    /// The ranking batch and the model forward over the candidates, in micro-batches (or the
    /// Ranking service call).
    public var ranking: Double = 0
    /// Picking the `k` best.
    public var topK: Double = 0
    /// The whole call.
    public var total: Double = 0

    public init() {}

    /// The stages' names, in the order of `millisecondsInOrder`.
    public static let names = ["recall", "features", "preprocess", "ranking", "top_k", "total"]

    /// The stages in milliseconds, keyed by name (`recall`, `features`, …, `total`).
    public var milliseconds: [String: Double] {
        Dictionary(uniqueKeysWithValues: zip(Self.names, millisecondsInOrder))
    }

    /// The stages in milliseconds, in `names` order (no dictionary: the per-request metrics and headers).
    public var millisecondsInOrder: [Double] {
        [recall * 1000, features * 1000, preprocess * 1000, ranking * 1000, topK * 1000, total * 1000]
    }
}

/// Where a recommendation's order comes from.
public enum RecommendationSource: String, Sendable, Codable, Equatable {
    /// The ranking model's probabilities over the recalled candidates (the normal path).
    case ranked
    /// The recall scores alone (the feature store failed or was too slow): `probs` are the sigmoid
    /// of the ANN scores — same order, not calibrated.
    case recall
    /// The most popular items (unknown user, or nothing recalled): the `canK` most popular ranked
    /// by the model for the user (a user without a store row as the empty user), so `probs` are
    /// ranking probabilities, descending; when features or ranking fail (`degraded`), popularity
    /// order with `PopularItems.scores`.
    case popular
}

/// The answer to one `recommend` call: `ids[i]` with `probs[i]`, best first.
public struct Recommendation: Sendable, Equatable {
    public var userID: Int64
    /// Item ids (the item table's key column values), at most `k`, distinct.
    public var ids: [Int64]
    /// One value per id, descending (see `source` for what it means).
    public var probs: [Float]
    public var source: RecommendationSource
    /// The user has no embedding: popular items instead of personal ones.
    public var coldStart: Bool
    /// A fallback answered because a stage failed or ran out of time (`reason` says which).
    public var degraded: Bool
    public var reason: String?
    /// How many candidates were ranked: what the ANN index returned (≤ canK), or the popular items
    /// standing in for them.
    public var candidates: Int
    public var timings: StageTimings

    public init(userID: Int64, ids: [Int64], probs: [Float], source: RecommendationSource, coldStart: Bool = false,
                degraded: Bool = false, reason: String? = nil, candidates: Int = 0, timings: StageTimings = StageTimings()) {
        self.userID = userID
        self.ids = ids
        self.probs = probs
        self.source = source
        self.coldStart = coldStart
        self.degraded = degraded
        self.reason = reason
        self.candidates = candidates
        self.timings = timings
    }
}

/// The wire form of an answer, Friesian's `IDProbList` plus Herd's flags:
///
/// ```json
/// {"ids":[…],"probs":[…],"success":true,"errorCode":null,"errorMsg":null,
///  "coldStart":false,"degraded":false,"source":"ranked","reason":null,"timingsMs":{"recall":0.4,…}}
/// ```
///
/// A refused request has `success: false`, empty lists, `errorCode` (`INVALID_ARGUMENT`,
/// `UNAVAILABLE`) and `errorMsg`. `null`s are written out, as Friesian's clients expect the keys.
public struct RecommendResponse: Codable, Sendable, Equatable {
    public var ids: [Int64]
    public var probs: [Float]
    public var success: Bool
    public var errorCode: String?
    public var errorMsg: String?
    public var coldStart: Bool
    public var degraded: Bool
    public var source: String?
    public var reason: String?
    public var timingsMs: [String: Double]?

    public init(_ r: Recommendation) {
        ids = r.ids
        probs = r.probs
        success = true
        coldStart = r.coldStart
        degraded = r.degraded
        source = r.source.rawValue
        reason = r.reason
        timingsMs = r.timings.milliseconds
    }

    public init(error: RecommenderError) {
        ids = []
        probs = []
        success = false
        errorCode = error.code
        errorMsg = error.message
        coldStart = false
        degraded = false
    }

    enum CodingKeys: String, CodingKey {
        case ids, probs, success, errorCode, errorMsg, coldStart, degraded, source, reason, timingsMs
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ids, forKey: .ids)
        try c.encode(probs, forKey: .probs)
        try c.encode(success, forKey: .success)
        try c.encode(errorCode, forKey: .errorCode)  // NOTE: Optional.encode writes null (encodeIfPresent would drop the key).
        try c.encode(errorMsg, forKey: .errorMsg)
        try c.encode(coldStart, forKey: .coldStart)
        try c.encode(degraded, forKey: .degraded)
        try c.encode(source, forKey: .source)
        try c.encode(reason, forKey: .reason)
        try c.encode(timingsMs, forKey: .timingsMs)
    }

    // One line of JSON with sorted keys: `jsonData()` (RecommendResponse+JSON.swift).
}
