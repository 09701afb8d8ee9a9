/// A fitted vocabulary for one categorical column: raw ids → table rows ordered by frequency.
///
/// Table layout (`tableSize = values.count + 2` rows):
/// ```
/// row 0                      missing (empty field)
/// row 1                      out of vocabulary (seen fewer than `freqLimit` times, or unseen)
/// row 2 + k                  values[k], the k-th most frequent raw id (ties: smaller id first)
/// ```
public struct Vocabulary: Sendable, Codable, Equatable {
    /// Row of the missing value.
    public static let missingID: Int32 = 0
    /// Row shared by rare and unknown values.
    public static let outOfVocabularyID: Int32 = 1
    /// Rows reserved before the first vocabulary value.
    public static let reservedRows = 2

    /// Raw ids kept, most frequent first.
    public let values: [UInt32]
    /// The frequency threshold used at fit time (values seen fewer times map to OOV).
    public let freqLimit: Int
    private let index: UInt32HashMap<Int32>

    /// A vocabulary of `values` (already ordered, unique).
    public init(values: [UInt32], freqLimit: Int) {
        self.values = values
        self.freqLimit = freqLimit
        var index = UInt32HashMap<Int32>(capacity: values.count)
        for (k, v) in values.enumerated() {
            index.update(v) { previous in
                precondition(previous == nil, "duplicate vocabulary value \(v)")
                return Int32(k + Self.reservedRows)
            }
        }
        self.index = index
    }

    /// Fits from `counts` (raw id → occurrences): keeps ids seen at least `freqLimit` times, most
    /// frequent first, ties by smaller id (so the result does not depend on dictionary order).
    public init(counts: [UInt32: Int], freqLimit: Int) {
        self.init(counts: counts.map { (key: $0.key, value: $0.value) }, freqLimit: freqLimit)
    }

    /// Fits from (raw id, occurrences) pairs, in any order.
    init(counts: [(key: UInt32, value: Int)], freqLimit: Int) {
        var kept = counts.filter { $0.value >= freqLimit }.map { (value: $0.key, count: $0.value) }
        kept.sort { $0.count != $1.count ? $0.count > $1.count : $0.value < $1.value }
        self.init(values: kept.map(\.value), freqLimit: freqLimit)
    }

    /// Rows of the embedding table for this column.
    public var tableSize: Int { values.count + Self.reservedRows }

    /// The table row of a raw id (`RawChunk.missing` for an empty field).
    @inline(__always)
    public func id(for raw: UInt64) -> Int32 {
        if raw == RawChunk.missing { return Self.missingID }
        return index.value(for: UInt32(truncatingIfNeeded: raw)) ?? Self.outOfVocabularyID
    }

    private enum CodingKeys: String, CodingKey { case values, freqLimit }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let values = try c.decode([UInt32].self, forKey: .values)
        let freqLimit = try c.decode(Int.self, forKey: .freqLimit)
        guard Set(values).count == values.count else {
            throw HerdDataError.invalidState(reason: "a vocabulary lists the same value twice")
        }
        self.init(values: values, freqLimit: freqLimit)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(values, forKey: .values)
        try c.encode(freqLimit, forKey: .freqLimit)
    }

    public static func == (a: Vocabulary, b: Vocabulary) -> Bool {
        a.values == b.values && a.freqLimit == b.freqLimit
    }
}
