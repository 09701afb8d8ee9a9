/// Parsed but untransformed Criteo rows, columnar, `n` rows.
///
/// ```
/// labels       [n]       Float 0/1 (empty when the file is unlabelled)
/// dense        [n, 13]   Float raw counts, row-major; `nan` = missing
/// categorical  [n, 26]   UInt64 raw ids (the 8 hex digits as a UInt32 value), row-major;
///                        `RawChunk.missing` = empty field
/// ```
///
/// NOTE: ids are widened to UInt64 because every UInt32 is a valid 8-hex-digit id, so the missing
/// marker must lie outside that range.
public struct RawChunk: Sendable, Equatable {
    /// Marker for an empty categorical field.
    public static let missing: UInt64 = .max

    public var labels: [Float]
    public var dense: [Float]
    public var categorical: [UInt64]
    /// Whether the source rows carried labels.
    public var labelled: Bool

    /// Rows (`n`).
    public var count: Int { dense.count / Criteo.denseCount }

    public init(labels: [Float], dense: [Float], categorical: [UInt64], labelled: Bool) {
        precondition(dense.count % Criteo.denseCount == 0, "dense must be [n, 13]")
        precondition(categorical.count / Criteo.sparseCount == dense.count / Criteo.denseCount
            && categorical.count % Criteo.sparseCount == 0, "categorical must be [n, 26]")
        precondition(!labelled || labels.count == dense.count / Criteo.denseCount, "one label per row")
        self.labels = labels
        self.dense = dense
        self.categorical = categorical
        self.labelled = labelled
    }

    /// No rows.
    public static func empty(labelled: Bool) -> RawChunk {
        RawChunk(labels: [], dense: [], categorical: [], labelled: labelled)
    }

    /// Raw dense value (`nan` when missing) of `row`, column `column` (0 = I1).
    public func denseValue(row: Int, column: Int) -> Float { dense[row * Criteo.denseCount + column] }

    /// Raw id (`RawChunk.missing` when empty) of `row`, column `column` (0 = C1).
    public func categoricalValue(row: Int, column: Int) -> UInt64 { categorical[row * Criteo.sparseCount + column] }

    /// Appends the rows of `other` (same labelling).
    public mutating func append(_ other: RawChunk) {
        precondition(other.labelled == labelled, "cannot mix labelled and unlabelled rows")
        labels += other.labels
        dense += other.dense
        categorical += other.categorical
    }
}
