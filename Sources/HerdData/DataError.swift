/// What to do with a malformed row.
public enum OnError: String, Sendable, Codable, CaseIterable {
    /// Stop reading and throw `HerdDataError.malformedRow`.
    case fail
    /// Skip the row and count it (`ReadSummary.skippedRows`).
    case skip
}

/// One malformed row: `file:line: reason`, with a 1-based line number counted over the whole file
/// (the header, if any, is line 1).
public struct RowError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var reason: String

    public init(file: String, line: Int, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String { "\(file):\(line): \(reason)" }
}

/// Errors of the data layer. Every `description` is a complete sentence meant for the user.
public enum HerdDataError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file does not exist.
    case fileNotFound(path: String)
    /// The path exists but is a directory or otherwise not a regular file.
    case notARegularFile(path: String)
    /// The file has zero bytes.
    case emptyFile(path: String)
    /// The file has no usable rows (only a header, or every row was skipped).
    case noRows(path: String, skippedRows: Int)
    /// A malformed row under `OnError.fail`.
    case malformedRow(RowError)
    /// An operating-system error while reading or writing `path`.
    case io(path: String, message: String)
    /// A cache file that cannot be used (it is rebuilt when possible).
    case invalidCache(path: String, reason: String)
    /// A `FeatureState` or configuration that cannot be used.
    case invalidState(reason: String)
    /// An argument outside its valid range.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .fileNotFound(let path): return "\(path): no such file"
        case .notARegularFile(let path): return "\(path): not a regular file"
        case .emptyFile(let path): return "\(path): the file is empty"
        case .noRows(let path, let skipped):
            return skipped > 0
                ? "\(path): no usable rows (all \(skipped) rows were malformed and skipped)"
                : "\(path): the file has no data rows"
        case .malformedRow(let row): return row.description
        case .io(let path, let message): return "\(path): \(message)"
        case .invalidCache(let path, let reason): return "\(path): unusable cache file: \(reason)"
        case .invalidState(let reason): return "invalid feature state: \(reason)"
        case .invalidArgument(let message): return message
        }
    }
}
