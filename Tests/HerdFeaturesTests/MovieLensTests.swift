import Foundation
import HerdData
@testable import HerdFeatures
import XCTest

/// Small MovieLens fixtures in both layouts, with the same content.
enum MovieLensFixture {
    /// (user, item, rating, timestamp)
    static let ratings: [(Int, Int, Int, Int)] = [
        (1, 10, 5, 100), (1, 20, 3, 200), (1, 30, 4, 300),
        (2, 10, 4, 150), (2, 30, 2, 150), (2, 20, 5, 120),
        (3, 20, 1, 50),
    ]
    /// (user, age, gender, occupation, zip)
    static let users: [(Int, Int, String, String, String)] = [
        (1, 24, "M", "technician", "85711"), (2, 53, "F", "other", "94043"), (3, 17, "M", "student", "T8H1N"),
    ]
    /// (item, title, year or nil, genre indices)
    static let items: [(Int, String, Int?, [Int])] = [
        (10, "Toy Story", 1995, [3, 4, 5]), (20, "Misérables, Les", nil, [8]), (30, "Heat", 1995, [1, 6, 16]),
    ]

    /// Writes `u.data`, `u.user`, `u.item` (Latin-1) into `dir`.
    static func writeGroupLens(_ dir: TemporaryDirectory) throws {
        try dir.write("u.data", ratings.map { "\($0.0)\t\($0.1)\t\($0.2)\t\($0.3)\n" }.joined())
        try dir.write("u.user", users.map { "\($0.0)|\($0.1)|\($0.2)|\($0.3)|\($0.4)\n" }.joined())
        var text = ""
        for (id, title, year, genres) in items {
            let flags = (0..<19).map { genres.contains($0) ? "1" : "0" }.joined(separator: "|")
            let date = year.map { "01-Jan-\($0)" } ?? ""
            text += "\(id)|\(title)|\(date)||http://us.imdb.com/M/title-exact?x|\(flags)\n"
        }
        try Data(text.data(using: .isoLatin1)!).write(to: URL(fileURLWithPath: dir.file("u.item")))
    }

    /// Writes `ml.inter`, `ml.user`, `ml.item` (RecBole atomic files) into `dir`.
    static func writeRecBole(_ dir: TemporaryDirectory) throws {
        try dir.write("ml.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
            + ratings.map { "\($0.0)\t\($0.1)\t\($0.2)\t\($0.3)\n" }.joined())
        try dir.write("ml.user", "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
            + users.map { "\($0.0)\t\($0.1)\t\($0.2)\t\($0.3)\t\($0.4)\n" }.joined())
        try dir.write("ml.item", "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
            + items.map { "\($0.0)\t\($0.1)\t\($0.2.map(String.init) ?? "unknown")\t\($0.3.map { MovieLens.genres[$0] }.joined(separator: " "))\n" }.joined())
    }
}

final class MovieLensTests: XCTestCase {
    func checkFixture(_ d: MovieLensData) {
        XCTAssertEqual(d.interactions.names, ["user_id", "item_id", "rating", "timestamp"])
        XCTAssertEqual(d.interactions["user_id"].int64Values, [1, 1, 1, 2, 2, 2, 3])
        XCTAssertEqual(d.interactions["item_id"].int64Values, [10, 20, 30, 10, 30, 20, 20])
        XCTAssertEqual(d.interactions["rating"].doubleValues, [5, 3, 4, 4, 2, 5, 1])
        XCTAssertEqual(d.interactions["timestamp"].int64Values, [100, 200, 300, 150, 150, 120, 50])
        XCTAssertEqual(d.users.names, ["user_id", "age", "gender", "occupation", "zip_code"])
        XCTAssertEqual(d.users["age"].int64Values, [24, 53, 17])
        XCTAssertEqual(d.users["zip_code"].values, ["85711", "94043", "T8H1N"].map { .string($0) })
        XCTAssertEqual(d.items.names, ["item_id", "title", "release_year", "genres"])
        XCTAssertEqual(d.items["title"].values, ["Toy Story", "Misérables, Les", "Heat"].map { .string($0) })
        XCTAssertEqual(d.items["release_year"].values, [.int(1995), .null, .int(1995)])
        XCTAssertEqual(d.items["genres"].values, [
            .list(["Animation", "Children's", "Comedy"].map { .string($0) }), .list([.string("Drama")]),
            .list(["Action", "Crime", "Thriller"].map { .string($0) }),
        ])
    }

    func testGroupLensLayoutWithLatin1Titles() throws {
        let dir = try TemporaryDirectory()
        try MovieLensFixture.writeGroupLens(dir)
        XCTAssertEqual(try MovieLens.detect(directory: dir.path).layout, .grouplens)
        let d = try MovieLens.read(directory: dir.path)
        XCTAssertEqual(d.layout, .grouplens)
        checkFixture(d)
    }

    func testRecBoleLayoutGivesTheSameTables() throws {
        let a = try TemporaryDirectory(), b = try TemporaryDirectory()
        try MovieLensFixture.writeGroupLens(a)
        try MovieLensFixture.writeRecBole(b)
        let files = try MovieLens.detect(directory: b.path)
        XCTAssertEqual(files.layout, .recbole)
        XCTAssertEqual(files.items, b.file("ml.item"))
        let d = try MovieLens.read(directory: b.path)
        checkFixture(d)
        var g = try MovieLens.read(directory: a.path)
        g.layout = .recbole
        XCTAssertEqual(g, d)
    }

    func testErrorsNameTheFileAndLine() throws {
        let dir = try TemporaryDirectory()
        XCTAssertThrowsError(try MovieLens.read(directory: dir.path)) {
            XCTAssertTrue("\($0)".contains("no MovieLens data found"), "\($0)")
        }
        XCTAssertThrowsError(try MovieLens.read(directory: dir.file("nope"))) { XCTAssertTrue("\($0)".contains("nope"), "\($0)") }

        try MovieLensFixture.writeGroupLens(dir)
        try dir.write("u.data", "1\t10\t5\t100\n\n1\t20\tfive\t200\n")
        XCTAssertThrowsError(try MovieLens.read(directory: dir.path)) {
            XCTAssertEqual("\($0)", "\(dir.file("u.data")):3: column 'rating': cannot parse 'five' as double")
        }
        try dir.write("u.data", "1\t10\t5\t100\n")
        try dir.write("u.user", "1|24|M|technician|85711\n\n1|30|F|other|1\n")
        XCTAssertThrowsError(try MovieLens.read(directory: dir.path)) {
            XCTAssertEqual("\($0)", "\(dir.file("u.user")):3: user_id 1 appears twice (first on line 1)")
        }
        try dir.write("u.user", "1|24|M|technician|85711\n")
        try dir.write("u.item", "10|T|||u|" + Array(repeating: "0", count: 18).joined(separator: "|") + "|2\n")
        XCTAssertThrowsError(try MovieLens.read(directory: dir.path)) {
            XCTAssertTrue("\($0)".hasPrefix("\(dir.file("u.item")):1: genre flag 24 (Western) must be 0 or 1"), "\($0)")
        }
        try FileManager.default.removeItem(atPath: dir.file("u.item"))
        XCTAssertThrowsError(try MovieLens.read(directory: dir.path)) { XCTAssertTrue("\($0)".contains("no u.item"), "\($0)") }

        let rb = try TemporaryDirectory()
        try MovieLensFixture.writeRecBole(rb)
        try rb.write("ml.inter", "user_id:token\titem_id:token\trating:float\n1\t2\t3\n")
        XCTAssertThrowsError(try MovieLens.read(directory: rb.path)) {
            XCTAssertTrue("\($0)".hasPrefix("\(rb.file("ml.inter")):1: no field 'timestamp'"), "\($0)")
        }
        try rb.write("ml.inter", "user_id:token\titem_id:integer\n")
        XCTAssertThrowsError(try MovieLens.read(directory: rb.path)) {
            XCTAssertTrue("\($0)".hasPrefix("\(rb.file("ml.inter")):1: header field 'item_id:integer'"), "\($0)")
        }
        try rb.write("ml.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t3\t4\n1\t2\t3\t4.5\n")
        XCTAssertThrowsError(try MovieLens.read(directory: rb.path)) {
            XCTAssertEqual("\($0)", "\(rb.file("ml.inter")):3: timestamp 4.5 is not a whole number of seconds")
        }
        try rb.write("ml.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t\t3\t4\n")
        XCTAssertThrowsError(try MovieLens.read(directory: rb.path)) {
            XCTAssertEqual("\($0)", "\(rb.file("ml.inter")):2: column 'item_id' is empty")
        }
    }

    func testLeaveLastOutByHand() throws {
        // user: a a b a b c nil b ; time: 5 9 3 9 7 1 8 nil
        // a: rows 0 (5), 1 (9), 3 (9) → tie at 9, the later row 3 is the test row.
        // b: rows 2 (3), 4 (7), 7 (null) → 4. c: row 5 only → test. nil user (row 6) → train.
        let t = try FeatureTable([
            ("user", Column(strings: ["a", "a", "b", "a", "b", "c", nil, "b"])),
            ("time", Column(int64s: [5, 9, 3, 9, 7, 1, 8, nil])),
            ("row", Column(int64s: [0, 1, 2, 3, 4, 5, 6, 7])),
        ])
        let (train, test) = try t.leaveLastOut(user: "user", time: "time")
        XCTAssertEqual(test["row"].int64Values, [3, 4, 5])
        XCTAssertEqual(train["row"].int64Values, [0, 1, 2, 6, 7])
        XCTAssertEqual(test.names, t.names)
        XCTAssertThrowsError(try t.leaveLastOut(user: "user", time: "nope"))
        XCTAssertThrowsError(try t.leaveLastOut(user: "time", time: "user")) {
            XCTAssertTrue("\($0)".contains("expected int64 or double"), "\($0)")
        }
    }
}

final class MovieLensPreprocessTests: XCTestCase {
    func testPreprocessByHand() throws {
        let dir = try TemporaryDirectory()
        try MovieLensFixture.writeRecBole(dir)
        let f = try MovieLens.preprocess(try MovieLens.read(directory: dir.path))
        // Leave-last-out: user 1 → (30, t300); user 2 → tie at t150, the later line (30, rating 2);
        // user 3's only rating → test. Train: (1,10) (1,20) (2,10) (2,20).
        XCTAssertEqual(f.train.rowCount, 4)
        // Ids by training frequency (ties by text): users 1→1, 2→2 (3 unseen → 0); items 10→1, 20→2 (30 → 0).
        XCTAssertEqual(f.train["user_id"].int64Values, [1, 1, 2, 2])
        XCTAssertEqual(f.train["item_id"].int64Values, [1, 2, 1, 2])
        XCTAssertEqual(f.train["label"].int64Values, [1, 0, 1, 1])
        XCTAssertEqual(f.test["user_id"].int64Values, [1, 2, 0])
        XCTAssertEqual(f.test["item_id"].int64Values, [0, 0, 2])
        XCTAssertEqual(f.test["label"].int64Values, [1, 0, 0])
        XCTAssertEqual(f.test.names, f.train.names)
        // Histories (earlier items by time, ties by line): train (1,10) [], (1,20) [10], (2,10) [20],
        // (2,20) []; test user 1 [10 20], user 2 [20 10], user 3 []. They share the item index.
        XCTAssertEqual(f.train["item_id_hist_seq"].values, [.list([]), .list([.int(1)]), .list([.int(2)]), .list([])])
        XCTAssertEqual(f.test["item_id_hist_seq"].values, [.list([.int(1), .int(2)]), .list([.int(2), .int(1)]), .list([])])
        // Users: F (2 rows) = 1, M (2 rows) = 2; ages 24 → bin 2, 53 → bin 6.
        XCTAssertEqual(f.users.names, MovieLens.userColumns)
        XCTAssertEqual(f.users["user_id"].int64Values, [1, 2])
        XCTAssertEqual(f.users["gender"].int64Values, [2, 1])
        XCTAssertEqual(f.users["age_bin"].int64Values, [2, 6])
        XCTAssertEqual(f.users["item_id_hist_seq"].values, [.list([.int(1), .int(2)]), .list([.int(2), .int(1)])])
        XCTAssertEqual(f.unknownUsers, 1)
        // Items: genres Animation, Children's, Comedy, Drama → 1…4; 1995 → bin 7, unknown year → bin 0.
        XCTAssertEqual(f.items.names, MovieLens.itemColumns)
        XCTAssertEqual(f.items["item_id"].int64Values, [1, 2])
        XCTAssertEqual(f.items["genres"].values, [.list([.int(1), .int(2), .int(3)]), .list([.int(4)])])
        XCTAssertEqual(f.items["release_year_bin"].int64Values, [7, 0])
        XCTAssertEqual(f.unknownItems, 1)
        XCTAssertEqual(f.sizes, ["user_id": 3, "item_id": 3, "item_id_hist_seq": 3, "gender": 3, "occupation": 3, "zip_prefix": 3, "genres": 5,
                                 "age_bin": 8, "release_year_bin": 10])
        // The fitted pipeline re-applies to raw rows (serving) with the same ids.
        let again = try f.fitted.apply(try MovieLens.rawRows(try MovieLens.read(directory: dir.path)))
        XCTAssertEqual(again["item_id"].int64Values, [1, 2, 0, 1, 0, 2, 2])
    }

    func testEmbeddedPipelineEqualsTheExampleFile() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try Pipeline.load(path: root.appendingPathComponent("examples/movielens/pipeline.json").path)
        XCTAssertEqual(file, try MovieLens.pipeline())
    }
}
