import Foundation
@testable import HerdData
import HerdTensor
import XCTest

/// The 8-byte hex fast path of `CriteoParser` against plain loops.
final class CriteoParserHexTests: XCTestCase {
    /// Plain loop: the value of 8 hex digits, nil when any byte is not one.
    private func plainHex8(_ bytes: [UInt8]) -> UInt32? {
        var value: UInt32 = 0
        for b in bytes {
            let digit: UInt32
            switch b {
            case 48...57: digit = UInt32(b - 48)
            case 97...102: digit = UInt32(b - 87)
            case 65...70: digit = UInt32(b - 55)
            default: return nil
            }
            value = value << 4 | digit
        }
        return value
    }

    private func word(_ bytes: [UInt8]) -> UInt64 {
        bytes.enumerated().reduce(0) { $0 | UInt64($1.element) << UInt64(8 * $1.offset) }
    }

    func testHex8MatchesPlainLoopForEveryByteAtEveryPosition() {
        let bases: [[UInt8]] = [Array("05db9164".utf8), Array("FFFFFFFF".utf8), Array("00000000".utf8), Array("aB3fE9c0".utf8)]
        for base in bases {
            XCTAssertEqual(CriteoParser.hex8(word(base)), plainHex8(base))
            for position in 0..<8 {
                for b in 0...255 {
                    var bytes = base
                    bytes[position] = UInt8(b)
                    XCTAssertEqual(CriteoParser.hex8(word(bytes)), plainHex8(bytes), "byte \(b) at \(position) in \(base)")
                }
            }
        }
        var rng = SplitMix64(seed: 4)
        let alphabet = Array("0123456789abcdefABCDEF".utf8)
        for _ in 0..<20_000 {
            let bytes = (0..<8).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            XCTAssertEqual(CriteoParser.hex8(word(bytes)), plainHex8(bytes))
            let any = (0..<8).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            XCTAssertEqual(CriteoParser.hex8(word(any)), plainHex8(any))
        }
    }

    /// Fields of 7, 8 and 9 characters, in the last column, before `\r`, with bad bytes: the parse
    /// equals a plain per-field reading.
    func testFieldsAroundEightBytesParseLikePlainReading() throws {
        let fields = ["1234567", "12345678", "123456789", "abcdefAB", "0000000g", "0000000\u{e9}", "", "00000000",
                      "FFFFFFFF", "ffffffff", "7"]
        var rng = SplitMix64(seed: 8)
        for separator in ["\t", ","] {
            for ending in ["\n", "\r\n", ""] {
                for _ in 0..<200 {
                    var cats = (0..<26).map { _ in fields[Int(rng.next() % UInt64(fields.count))] }
                    if rng.next() % 3 == 0 { cats[25] = "12345678" }
                    let text = tsvRow(label: "1", dense: Array(repeating: "3", count: 13), cats: cats, separator: separator) + ending
                    let expected = cats.map { f -> UInt64?? in
                        if f.isEmpty { return .some(RawChunk.missing) }
                        let bytes = Array(f.utf8)
                        guard bytes.count <= 8, bytes.allSatisfy({ plainHex8([UInt8](repeating: 48, count: 7) + [$0]) != nil })
                        else { return .some(nil) }
                        return .some(UInt64(plainHex8([UInt8](repeating: 48, count: 8 - bytes.count) + bytes)!))
                    }
                    let bad = expected.firstIndex { $0! == nil }
                    do {
                        let (rows, _) = try CriteoReader.parse(text: text)
                        XCTAssertNil(bad, "accepted \(cats)")
                        for c in 0..<26 { XCTAssertEqual(rows.categoricalValue(row: 0, column: c), expected[c]!, "C\(c + 1) of \(cats)") }
                    } catch {
                        let message = "\(error)"
                        XCTAssertNotNil(bad, "rejected \(cats): \(message)")
                        if let bad { XCTAssertTrue(message.contains("C\(bad + 1): expected a hex id"), message) }
                    }
                }
            }
        }
    }
}
