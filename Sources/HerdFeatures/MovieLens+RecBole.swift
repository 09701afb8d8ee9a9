import Foundation
import HerdData

extension MovieLens {
    /// A RecBole atomic-file field type (the part after `:` in the header).
    enum RecBoleType: String {
        case token
        case tokenSeq = "token_seq"
        case float
        case floatSeq = "float_seq"

        /// The column type of a field that is not one of the canonical MovieLens columns.
        var columnType: ColumnType {
            switch self {
            case .token: return .string
            case .tokenSeq: return .stringList
            case .float: return .double
            case .floatSeq: return .doubleList
            }
        }
    }

    /// Canonical column types of the fields Herd reads by name (whatever the header declares:
    /// RecBole calls ids `token` and timestamps `float`).
    static let recBoleTypes: [String: ColumnType] = [
        "user_id": .int64, "item_id": .int64, "rating": .double, "timestamp": .double,
        "age": .int64, "gender": .string, "occupation": .string, "zip_code": .string,
        "movie_title": .string, "release_year": .string, "class": .stringList,
    ]

    /// Fields each RecBole file must have.
    static let recBoleRequired: [String: [String]] = [
        "inter": ["user_id", "item_id", "rating", "timestamp"],
        "user": ["user_id", "age", "gender", "occupation", "zip_code"],
        "item": ["item_id", "movie_title", "release_year", "class"],
    ]

    /// Reads the RecBole layout.
    static func readRecBole(_ files: Files) throws -> MovieLensData {
        var interactions = try readRecBoleFile(files.interactions, kind: "inter")
        interactions = try integralTimestamps(interactions, file: files.interactions, header: true)
        let users = try readRecBoleFile(files.users, kind: "user")
        var items = try readRecBoleFile(files.items, kind: "item").rename(["movie_title": "title", "class": "genres"])
        // NOTE: RecBole writes an unknown release year as the token `unknown`: it becomes null.
        items = try items.cast(["release_year"], to: .int64)
        return MovieLensData(
            layout: .recbole,
            interactions: try interactions.select(["user_id", "item_id", "rating", "timestamp"]),
            users: try users.select(["user_id", "age", "gender", "occupation", "zip_code"]),
            items: try items.select(["item_id", "title", "release_year", "genres"]))
    }

    /// One atomic file: the typed header gives the schema (`name:type` per field).
    static func readRecBoleFile(_ path: String, kind: String) throws -> FeatureTable {
        let header = try firstLine(path)
        var fields: [CSVSchema.Field] = []
        for raw in header.split(separator: "\t", omittingEmptySubsequences: false) {
            let parts = raw.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, let type = RecBoleType(rawValue: String(parts[1])) else {
                throw HerdDataError.malformedRow(RowError(
                    file: path, line: 1,
                    reason: "header field '\(raw)' is not name:type with type token, token_seq, float or float_seq (a RecBole atomic-file header)"))
            }
            let name = String(parts[0])
            let columnType = recBoleTypes[name] ?? type.columnType
            fields.append(.init(name: name, type: columnType, listSeparator: columnType.isList ? " " : nil))
        }
        let names = Set(fields.map(\.name))
        if let missing = recBoleRequired[kind]?.first(where: { !names.contains($0) }) {
            throw HerdDataError.malformedRow(RowError(
                file: path, line: 1, reason: "no field '\(missing)' in the header (have: \(fields.map(\.name).joined(separator: ", ")))"))
        }
        let schema = CSVSchema(columns: fields, separator: "\t", header: true)
        do { try schema.validate() } catch let e as FeatureError {
            throw HerdDataError.malformedRow(RowError(file: path, line: 1, reason: e.description))
        }
        return try CSVReader(schema: schema).read(path: path).table
    }

    /// The first line of a file (without `\r\n`), at most 64 KiB read.
    static func firstLine(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw HerdDataError.fileNotFound(path: path) }
        defer { try? handle.close() }
        var bytes = [UInt8](handle.readData(ofLength: 1 << 16))
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        guard !bytes.isEmpty else { throw HerdDataError.emptyFile(path: path) }
        var line = bytes.prefix { $0 != 10 }
        if line.last == 13 { line.removeLast() }
        return String(decoding: line, as: UTF8.self)
    }
}
