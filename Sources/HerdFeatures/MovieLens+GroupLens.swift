import Foundation
import HerdData

extension MovieLens {
    /// `u.data`: `user id \t item id \t rating \t timestamp`, no header.
    static let groupLensData = CSVSchema(columns: [
        .init(name: "user_id", type: .int64), .init(name: "item_id", type: .int64),
        .init(name: "rating", type: .double), .init(name: "timestamp", type: .int64),
    ], separator: "\t", header: false)

    /// `u.user`: `user id | age | gender | occupation | zip code`.
    static let groupLensUser = CSVSchema(columns: [
        .init(name: "user_id", type: .int64), .init(name: "age", type: .int64), .init(name: "gender", type: .string),
        .init(name: "occupation", type: .string), .init(name: "zip_code", type: .string),
    ], separator: "|", header: false)

    /// `u.item`: `movie id | title | release date | video release date | IMDb URL | 19 genre flags`.
    static let groupLensItem = CSVSchema(
        columns: [
            .init(name: "item_id", type: .int64), .init(name: "title", type: .string), .init(name: "release_date", type: .string),
            .init(name: "video_release_date", type: .string), .init(name: "imdb_url", type: .string),
        ] + genres.indices.map { .init(name: "genre_\($0)", type: .int64) },
        separator: "|", header: false)

    /// Reads the GroupLens layout.
    static func readGroupLens(_ files: Files) throws -> MovieLensData {
        let interactions = try CSVReader(schema: groupLensData).read(path: files.interactions).table
        let users = try latin1(CSVReader(schema: groupLensUser).read(path: files.users).table)
        let raw = try latin1(CSVReader(schema: groupLensItem).read(path: files.items).table)
        return MovieLensData(layout: .grouplens, interactions: interactions, users: users, items: try groupLensItems(raw, file: files.items))
    }

    /// `u.item` rows → `item_id, title, release_year, genres`: the year is the last four
    /// characters of the release date (`01-Jan-1995`; empty or unparsable → null), the genres
    /// are the names of the set flags (each flag must be 0 or 1).
    static func groupLensItems(_ raw: FeatureTable, file: String) throws -> FeatureTable {
        let dates = try raw.column("release_date")
        var years: [Int64?] = []
        for r in 0..<raw.rowCount {
            guard case .string(let s) = dates[r] else {
                years.append(nil)
                continue
            }
            years.append(Int64(s.suffix(4)))
        }
        let flags = try genres.indices.map { try raw.column("genre_\($0)") }
        var lists: [[String]?] = []
        for r in 0..<raw.rowCount {
            var names: [String] = []
            for (g, c) in flags.enumerated() {
                switch c[r] {
                case .int(0): break
                case .int(1): names.append(genres[g])
                case let v:
                    let lines = try rowLines(path: file, header: false)
                    throw HerdDataError.malformedRow(RowError(
                        file: file, line: r < lines.count ? lines[r] : r + 1,
                        reason: "genre flag \(g + 6) (\(genres[g])) must be 0 or 1, got \(v == .null ? "nothing" : v.description)"))
                }
            }
            lists.append(names)
        }
        return try FeatureTable([
            ("item_id", try raw.column("item_id")), ("title", try raw.column("title")),
            ("release_year", Column(int64s: years)), ("genres", Column(stringLists: lists)),
        ])
    }

    /// Re-encodes every string column from Latin-1 (ISO-8859-1, what GroupLens ships) to UTF-8:
    /// each byte ≥ 0x80 is the code point of the same value, two bytes in UTF-8.
    ///
    /// NOTE: done after parsing, on the string bytes: the separators and newlines are ASCII, so
    /// `CSVReader` splits Latin-1 text exactly as it would the decoded text, and line numbers in
    /// its errors stay those of the file.
    static func latin1(_ table: FeatureTable) throws -> FeatureTable {
        var out = table
        for (name, c) in zip(table.names, table.columns) {
            guard case .string(let s) = c.data, s.bytes.contains(where: { $0 >= 0x80 }) else { continue }
            var decoded = StringData()
            decoded.bytes.reserveCapacity(s.bytes.count + s.bytes.count / 8)
            decoded.offsets.reserveCapacity(s.offsets.count)
            for i in 0..<s.count {
                for b in s.bytes[s.offsets[i]..<s.offsets[i + 1]] {
                    if b < 0x80 {
                        decoded.bytes.append(b)
                    } else {
                        decoded.bytes.append(0xC0 | (b >> 6))
                        decoded.bytes.append(0x80 | (b & 0x3F))
                    }
                }
                decoded.offsets.append(decoded.bytes.count)
            }
            out = try out.with(name, Column(type: .string, data: .string(decoded), validity: c.validity))
        }
        return out
    }
}
