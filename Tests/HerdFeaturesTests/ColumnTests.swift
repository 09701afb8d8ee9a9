import Foundation
@testable import HerdFeatures
import XCTest

final class ColumnTests: XCTestCase {
    func testValidityAcrossWordBoundaries() {
        var v = Validity(count: 70, valid: true)
        v[3] = false
        v[69] = false
        XCTAssertEqual(v.validCount, 68)
        var w = Validity(count: 3, valid: true)
        w.append(v)
        XCTAssertEqual(w.count, 73)
        XCTAssertFalse(w[6])
        XCTAssertFalse(w[72])
        XCTAssertTrue(w[71])
        XCTAssertEqual(w.validCount, 71)
        XCTAssertTrue(Validity(count: 64, valid: true).allValid)
    }

    func testGatherConcatenateAndNullRows() {
        let c = Column(stringLists: [["a"], nil, ["b", "c"], []])
        let g = c.gather([2, -1, 0, 1])
        XCTAssertEqual(g.values, [.list([.string("b"), .string("c")]), .null, .list([.string("a")]), .null])
        let both = Column.concatenate([c, Column(stringLists: [["d"]])])
        XCTAssertEqual(both.count, 5)
        XCTAssertEqual(both[4], .list([.string("d")]))
        XCTAssertEqual(both.nullCount, 1)
        let ints = Column(int64s: [1, 2, 3])
        XCTAssertNil(ints.validity)  // no nulls: no bitmap
        XCTAssertEqual(ints.gather([-1, 2])[0], .null)
    }

    func testKeysDistinguishTypesNullsAndLengths() {
        func key(_ c: Column, _ i: Int) -> [UInt8] {
            var k: [UInt8] = []
            c.appendKey(i, to: &k)
            return k
        }
        let s = Column(strings: ["ab", "", nil])
        XCTAssertNotEqual(key(s, 1), key(s, 2))  // "" is not null
        let l = Column(stringLists: [["a", "b"], ["ab"]])
        XCTAssertNotEqual(key(l, 0), key(l, 1))
        XCTAssertEqual(key(Column(doubles: [0.0]), 0), key(Column(doubles: [-0.0]), 0))
    }

    func testNumberParsing() {
        func i(_ s: String) -> Int64? { var s = s; return s.withUTF8 { NumberParsing.int64($0.baseAddress!, $0.count) } }
        func d(_ s: String) -> Double? { var s = s; return s.withUTF8 { NumberParsing.double($0.baseAddress!, $0.count) } }
        XCTAssertEqual(i("-9223372036854775808"), .min)
        XCTAssertEqual(i("9223372036854775807"), .max)
        XCTAssertNil(i("9223372036854775808"))
        XCTAssertNil(i("12a"))
        XCTAssertNil(i("-"))
        XCTAssertEqual(i("+7"), 7)
        XCTAssertEqual(d("0.1"), 0.1)
        XCTAssertEqual(d("-2.50"), -2.5)
        XCTAssertEqual(d("1e-3"), 0.001)
        XCTAssertEqual(d("12345678901234567890"), 12345678901234567890.0)
        XCTAssertNil(d(" 1"))
        XCTAssertNil(d("1.2.3"))
        XCTAssertNil(d("."))
    }
}
