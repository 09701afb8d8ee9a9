import Foundation
import HerdData

/// The layout of a delimited text file, usually decoded from a small JSON file:
///
/// ```json
/// {"separator": "\u0001", "header": false, "max_list_length": 100,
///  "columns": [{"name": "text_tokens", "type": "string_list", "list_separator": "\t"},
///              {"name": "tweet_timestamp", "type": "int64"},
///              {"name": "engaged_with_user_id", "type": "string"}]}
/// ```
///
/// `type` is one of `int64`, `double`, `string`, `int64_list`, `double_list`, `string_list`;
/// `list_separator` (one byte) is required for list types. `quote` (one byte, e.g. `"\""`) turns
/// on quoted fields. `separator` and `header` override the
/// reader's options when present; `max_list_length` caps every list column (a longer list is a
/// malformed row).
public struct CSVSchema: Sendable, Equatable, Codable {
    public struct Field: Sendable, Equatable, Codable {
        public var name: String
        public var type: ColumnType
        public var listSeparator: String?

        public init(name: String, type: ColumnType, listSeparator: String? = nil) {
            self.name = name
            self.type = type
            self.listSeparator = listSeparator
        }

        enum CodingKeys: String, CodingKey {
            case name, type
            case listSeparator = "list_separator"
        }
    }

    public var columns: [Field]
    public var separator: String?
    public var header: Bool?
    public var maxListLength: Int?
    /// Quote character (one byte, usually `"`); absent = no quoting.
    public var quote: String?

    public init(columns: [Field], separator: String? = nil, header: Bool? = nil, maxListLength: Int? = nil, quote: String? = nil) {
        self.columns = columns
        self.separator = separator
        self.header = header
        self.maxListLength = maxListLength
        self.quote = quote
    }

    enum CodingKeys: String, CodingKey {
        case columns, separator, header, quote
        case maxListLength = "max_list_length"
    }

    /// Reads and validates a schema file.
    public static func load(path: String) throws -> CSVSchema {
        _ = try SourceFingerprint(path: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let schema: CSVSchema
        do {
            schema = try JSONDecoder().decode(CSVSchema.self, from: data)
        } catch let e as DecodingError {
            throw FeatureError.invalidArgument("\(path): invalid schema: \(describe(e))")
        }
        do { try schema.validate() } catch let e as FeatureError {
            throw FeatureError.invalidArgument("\(path): invalid schema: \(e.description)")
        }
        return schema
    }

    /// Checks names, separators and list settings.
    public func validate() throws {
        guard !columns.isEmpty else { throw FeatureError.invalidArgument("no columns") }
        var seen = Set<String>()
        for (i, f) in columns.enumerated() {
            guard seen.insert(f.name).inserted else { throw FeatureError.duplicateColumn(f.name) }
            if f.type.isList {
                guard let s = f.listSeparator, s.utf8.count == 1 else {
                    throw FeatureError.invalidArgument("columns[\(i)] '\(f.name)': a \(f.type) column needs a one-byte list_separator")
                }
            }
        }
        if let s = separator, s.utf8.count != 1 {
            throw FeatureError.invalidArgument("separator must be one byte, got '\(s)'")
        }
        if let q = quote, q.utf8.count != 1 {
            throw FeatureError.invalidArgument("quote must be one byte, got '\(q)'")
        }
        if let m = maxListLength, m < 0 { throw FeatureError.invalidArgument("max_list_length must be >= 0") }
    }
}

/// A readable one-line summary of a decoding error (`key path: what`).
func describe(_ error: DecodingError) -> String {
    func path(_ c: [CodingKey]) -> String {
        c.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
    }
    switch error {
    case .keyNotFound(let key, let ctx):
        let p = path(ctx.codingPath)
        return "\(p.isEmpty ? "" : p + ": ")missing key '\(key.stringValue)'"
    case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx):
        return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
    case .dataCorrupted(let ctx):
        let p = path(ctx.codingPath)
        return (p.isEmpty ? "" : p + ": ") + ctx.debugDescription
    @unknown default:
        return "\(error)"
    }
}
