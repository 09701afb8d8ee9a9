import Foundation
import HerdData

/// The MovieLens-100k ratings with their user and item attributes, read from either layout it
/// ships in, as three `FeatureTable`s with one canonical schema:
///
/// ```
/// interactions [ratings]  user_id int64, item_id int64, rating double, timestamp int64 (Unix s)
/// users        [users]    user_id int64, age int64, gender string, occupation string, zip_code string
/// items        [items]    item_id int64, title string, release_year int64 (null: unknown),
///                         genres string_list (GroupLens names: Action, Children's, Sci-Fi, …)
/// ```
///
/// Layouts (`MovieLens.detect(directory:)`):
/// - GroupLens (`ml-100k.zip`): `u.data` (tab-separated `user id, item id, rating, timestamp`, no
///   header), `u.user` (`|`-separated `user id|age|gender|occupation|zip code`) and `u.item`
///   (`|`-separated, Latin-1: `movie id|title|release date|video release date|IMDb URL|` then 19
///   genre flags in the order of `u.genre`).
/// - RecBole atomic files: `NAME.inter`, `NAME.user`, `NAME.item`, UTF-8, tab-separated, with a
///   typed header (`user_id:token	item_id:token	rating:float	timestamp:float`; `token_seq` fields
///   are space-separated).
///
/// Every file error names `file:line` (`HerdDataError.malformedRow`) or the missing file.
public struct MovieLensData: Sendable, Equatable {
    public var layout: MovieLens.Layout
    public var interactions: FeatureTable
    public var users: FeatureTable
    public var items: FeatureTable

    public init(layout: MovieLens.Layout, interactions: FeatureTable, users: FeatureTable, items: FeatureTable) {
        self.layout = layout
        self.interactions = interactions
        self.users = users
        self.items = items
    }
}

public enum MovieLens {
    /// The two on-disk layouts of MovieLens-100k.
    public enum Layout: String, Sendable, Equatable {
        case grouplens
        case recbole
    }

    /// The files of one data set in a directory.
    public struct Files: Sendable, Equatable {
        public var layout: Layout
        public var interactions: String
        public var users: String
        public var items: String
    }

    /// The 19 GroupLens genres, in the order of `u.genre` (and of `u.item`'s flag columns).
    public static let genres = [
        "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
        "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
    ]

    /// Finds the data files in `directory`: `u.data`/`u.user`/`u.item` (GroupLens) or one
    /// `NAME.inter` with `NAME.user` and `NAME.item` beside it (RecBole).
    public static func detect(directory: String) throws -> Files {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw HerdDataError.fileNotFound(path: directory)
        }
        guard isDirectory.boolValue else {
            throw FeatureError.invalidArgument("\(directory) is a file; give the directory that holds the MovieLens files")
        }
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }
        let expected = "expected u.data, u.user and u.item (GroupLens ml-100k) or NAME.inter, NAME.user and NAME.item (RecBole atomic files)"
        if exists("u.data") {
            for name in ["u.user", "u.item"] where !exists(name) {
                throw FeatureError.invalidArgument("\(directory): has u.data but no \(name) (\(expected))")
            }
            return Files(layout: .grouplens, interactions: path("u.data"), users: path("u.user"), items: path("u.item"))
        }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let inter = entries.filter { $0.hasSuffix(".inter") }.sorted()
        guard let first = inter.first else {
            throw FeatureError.invalidArgument("\(directory): no MovieLens data found (\(expected))")
        }
        guard inter.count == 1 else {
            throw FeatureError.invalidArgument("\(directory): several RecBole interaction files (\(inter.joined(separator: ", "))); keep one data set per directory")
        }
        let stem = String(first.dropLast(".inter".count))
        for name in [stem + ".user", stem + ".item"] where !exists(name) {
            throw FeatureError.invalidArgument("\(directory): has \(first) but no \(name) (\(expected))")
        }
        return Files(layout: .recbole, interactions: path(first), users: path(stem + ".user"), items: path(stem + ".item"))
    }

    /// Reads the data set in `directory` (either layout).
    public static func read(directory: String) throws -> MovieLensData {
        let files = try detect(directory: directory)
        let data: MovieLensData
        switch files.layout {
        case .grouplens: data = try readGroupLens(files)
        case .recbole: data = try readRecBole(files)
        }
        try checkKeys(data.interactions, ["user_id", "item_id", "rating", "timestamp"], file: files.interactions, header: files.layout == .recbole)
        try checkKeys(data.users, ["user_id"], unique: true, file: files.users, header: files.layout == .recbole)
        try checkKeys(data.items, ["item_id"], unique: true, file: files.items, header: files.layout == .recbole)
        return data
    }

    /// Fails with `file:line` on the first null in `columns` (and, with `unique`, on the first
    /// repeated value of the first column).
    static func checkKeys(_ table: FeatureTable, _ columns: [String], unique: Bool = false, file: String, header: Bool) throws {
        var lines: [Int]?
        func line(_ row: Int) throws -> Int {
            if lines == nil { lines = try rowLines(path: file, header: header) }
            return row < lines!.count ? lines![row] : row + 1
        }
        for name in columns {
            let c = try table.column(name)
            if let r = (0..<table.rowCount).first(where: { c.isNull($0) }) {
                throw HerdDataError.malformedRow(RowError(file: file, line: try line(r), reason: "column '\(name)' is empty"))
            }
        }
        if unique, let name = columns.first, let ids = try table.column(name).int64Values {
            var seen: [Int64: Int] = [:]
            for (r, id) in ids.enumerated() {
                if let first = seen.updateValue(r, forKey: id) {
                    throw HerdDataError.malformedRow(RowError(
                        file: file, line: try line(r), reason: "\(name) \(id) appears twice (first on line \(try line(first)))"))
                }
            }
        }
    }

    /// The 1-based line number of every data row of a delimited file: non-blank lines after the
    /// header (how `CSVReader` numbers rows), for errors found after parsing.
    static func rowLines(path: String, header: Bool) throws -> [Int] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw HerdDataError.io(path: path, message: "cannot read: \(error.localizedDescription)")
        }
        var out: [Int] = []
        var line = 1, empty = true
        for b in data {
            if b == 10 {
                if !empty && !(header && line == 1) { out.append(line) }
                line += 1
                empty = true
            } else if b != 13 {
                empty = false
            }
        }
        if !empty && !(header && line == 1) { out.append(line) }
        return out
    }

    /// `timestamp` as int64 when every value is integral (RecBole declares it `float`).
    static func integralTimestamps(_ table: FeatureTable, file: String, header: Bool) throws -> FeatureTable {
        let c = try table.column("timestamp")
        guard let v = c.doubleValues else { return table }
        if let r = v.indices.first(where: { !c.isNull($0) && (v[$0].rounded() != v[$0] || abs(v[$0]) > 9e15) }) {
            let lines = try rowLines(path: file, header: header)
            throw HerdDataError.malformedRow(RowError(
                file: file, line: r < lines.count ? lines[r] : r + 1, reason: "timestamp \(v[r]) is not a whole number of seconds"))
        }
        return try table.cast(["timestamp"], to: .int64)
    }

    /// The first two characters of a zip code (the US "sectional center" region; Canadian codes
    /// give their letter-digit prefix). Applied to raw user rows before the pipeline, here and at
    /// serving time.
    public static func zipPrefix(_ zip: String) -> String { String(zip.prefix(2)) }
}
