import HerdFeatures
import XCTest

/// Row keys and the tables of users/tweets whose id is not in the training index.
final class RecSys2021UnseenTests: XCTestCase {
    /// Known ids keep their id; each distinct raw value of an unknown one gets `size + k` (train
    /// first, in order of appearance), shared between train and test; a null raw value stays 0.
    func testRowKeysAgainstAHandComputedCase() throws {
        let encTrain = try FeatureTable([("u", Column(int64s: [3, 0, 0, 5, 0]))])
        let rawTrain = try FeatureTable([("u", Column(strings: ["a", "x", "y", "b", "x"]))])
        let encTest = try FeatureTable([("u", Column(int64s: [0, 3, 0, 0]))])
        let rawTest = try FeatureTable([("u", Column(strings: ["y", "a", "z", nil]))])
        let (train, test) = try RecSys2021Features.rowKeys("u", encoded: (encTrain, encTest), raw: (rawTrain, rawTest), size: 6)
        XCTAssertEqual(train.int64Values, [3, 6, 7, 5, 6])
        XCTAssertEqual(test.int64Values, [7, 3, 8, 0])
        let short = try FeatureTable([("u", Column(strings: ["a"]))])
        XCTAssertThrowsError(try RecSys2021Features.rowKeys("u", encoded: (encTrain, encTest), raw: (short, rawTest), size: 6)) {
            XCTAssertTrue("\($0)".contains("kept 5 of 1 rows"), "\($0)")
        }
    }

    /// One row per unseen entity (id 0, row key non-zero): its latest row over train then test.
    func testUnseenTableKeepsTheLatestRowPerRowKey() throws {
        let time = RecSys2021Features.timeColumn, key = "u", row = RecSys2021Features.rowKey(of: "u")
        let train = try FeatureTable([(row, Column(int64s: [3, 6, 7, 6])), (key, Column(int64s: [3, 0, 0, 0])),
                                      ("f", Column(int64s: [1, 2, 3, 4])), (time, Column(int64s: [10, 11, 12, 13]))])
        let test = try FeatureTable([(row, Column(int64s: [7, 0, 6])), (key, Column(int64s: [0, 0, 0])),
                                     ("f", Column(int64s: [5, 6, 7])), (time, Column(int64s: [20, 21, 5]))])
        let t = try RecSys2021Features.unseenTable(train: train, test: test, columns: [key, "f"])
        XCTAssertEqual(t.names, [row, key, "f"])
        XCTAssertEqual(t[row].int64Values, [6, 7])
        XCTAssertEqual(t[key].int64Values, [0, 0])
        XCTAssertEqual(t["f"].int64Values, [4, 5], "user 6: train row at time 13 beats test's at 5; user 7: test's at 20")
    }
}
