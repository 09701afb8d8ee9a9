/// The Criteo click-log schema (Kaggle `train.txt`, Terabyte `day_N`, DeepRec `train.csv`).
///
/// One row is 40 fields: `label` (0/1), `I1…I13` integer counts (may be empty, negative, or written
/// as a decimal such as `260.0`), `C1…C26` categorical ids of up to 8 hex digits (may be empty).
/// Unlabelled files (Kaggle `test.txt`) have the 39 feature fields only.
public enum Criteo {
    /// Dense (integer) columns, `Fd`.
    public static let denseCount = 13
    /// Categorical columns, `Fs` (one embedding table each).
    public static let sparseCount = 26
    /// Fields of a labelled row.
    public static let labelledFieldCount = 1 + denseCount + sparseCount
    /// Column names in file order, for headers and messages: `label, I1…I13, C1…C26`.
    public static let columnNames: [String] =
        ["label"] + (1...denseCount).map { "I\($0)" } + (1...sparseCount).map { "C\($0)" }
}

/// How a Criteo text file is laid out. Every `nil` property is detected from the first line.
///
/// Detection: the delimiter is a tab if the first line contains one, else a comma; the first line
/// is a header if its first field starts with a letter (`label,I1,…`); the file is labelled if the
/// first line has 40 fields and unlabelled if it has 39.
public struct CriteoFormat: Sendable, Equatable, Codable {
    public enum Delimiter: String, Sendable, Equatable, Codable {
        case tab, comma
        /// The byte that separates fields.
        public var byte: UInt8 { self == .tab ? 9 : 44 }
    }

    /// Field separator, or `nil` to detect.
    public var delimiter: Delimiter?
    /// Whether the first line is a header, or `nil` to detect.
    public var hasHeader: Bool?
    /// Whether rows start with a label, or `nil` to detect.
    public var labelled: Bool?

    public init(delimiter: Delimiter? = nil, hasHeader: Bool? = nil, labelled: Bool? = nil) {
        self.delimiter = delimiter
        self.hasHeader = hasHeader
        self.labelled = labelled
    }

    /// Everything detected.
    public static let auto = CriteoFormat()
    /// Kaggle / Terabyte TSV: tab-separated, no header, labelled.
    public static let tsv = CriteoFormat(delimiter: .tab, hasHeader: false, labelled: true)
    /// DeepRec-style CSV with a `label,I1,…,C26` header.
    public static let csvWithHeader = CriteoFormat(delimiter: .comma, hasHeader: true, labelled: true)

    /// True when nothing is left to detect.
    public var isResolved: Bool { delimiter != nil && hasHeader != nil && labelled != nil }

    /// Fills the unset properties from the file's first line (without its newline).
    public func resolved(firstLine line: UnsafeRawBufferPointer) -> CriteoFormat {
        var out = self
        if out.delimiter == nil {
            out.delimiter = line.contains(9) ? .tab : .comma
        }
        let delimiter = out.delimiter!.byte
        if out.hasHeader == nil {
            // NOTE: a data row starts with a label or a number (or an empty dense field when
            // unlabelled); a header starts with a column name.
            let first = line.first ?? 0
            out.hasHeader = (first | 0x20) >= 97 && (first | 0x20) <= 122
        }
        if out.labelled == nil {
            var fields = 1
            for byte in line where byte == delimiter { fields += 1 }
            out.labelled = fields != Criteo.labelledFieldCount - 1
        }
        return out
    }

    /// Fields per row for this format (40 labelled, 39 unlabelled).
    public var fieldCount: Int { (labelled ?? true) ? Criteo.labelledFieldCount : Criteo.labelledFieldCount - 1 }
}
