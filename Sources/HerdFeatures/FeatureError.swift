import HerdData

/// Errors of feature engineering. Every `description` is a complete message meant for the user.
///
/// File errors (missing file, malformed row `file:line: reason`, I/O) are `HerdDataError`s, as in
/// the rest of the data layer.
public enum FeatureError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A column name that the table does not have.
    case unknownColumn(String, available: [String])
    /// A column of the wrong type for an operation.
    case wrongType(column: String, type: ColumnType, expected: String)
    /// A name used twice where names must be unique.
    case duplicateColumn(String)
    /// Columns of different lengths, or tables that cannot be combined.
    case shapeMismatch(String)
    /// An argument outside its valid range.
    case invalidArgument(String)
    /// A pipeline file or fitted pipeline that cannot be used: `steps[i].key: reason`.
    case invalidPipeline(String)
    /// A binary table file that cannot be read.
    case invalidTableFile(path: String, reason: String)

    public var description: String {
        switch self {
        case .unknownColumn(let name, let available):
            return "no column named '\(name)' (columns: \(available.joined(separator: ", ")))"
        case .wrongType(let column, let type, let expected):
            return "column '\(column)' has type \(type), expected \(expected)"
        case .duplicateColumn(let name): return "column '\(name)' appears twice"
        case .shapeMismatch(let message): return message
        case .invalidArgument(let message): return message
        case .invalidPipeline(let message): return "invalid pipeline: \(message)"
        case .invalidTableFile(let path, let reason): return "\(path): not a readable Herd table: \(reason)"
        }
    }
}
