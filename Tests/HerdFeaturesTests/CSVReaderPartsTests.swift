import CHerdKernels
import Foundation
import HerdData
@testable import HerdFeatures
import HerdTensor
import XCTest

/// The reader's parts write their rows straight into each column's final arrays (`RowSlots`)
/// from the slot of their first line, and blank lines and skipped rows are squeezed out
/// afterwards. Checked against a plain line-by-line split of the same text, with many parts of
/// uneven row counts.
final class CSVReaderPartsTests: XCTestCase {
    struct Spec {
        var name: String
        var type: ColumnType
        var listSeparator: Character?
    }

    let specs = [
        Spec(name: "i", type: .int64), Spec(name: "s", type: .string), Spec(name: "d", type: .double),
        Spec(name: "tags", type: .stringList, listSeparator: "\t"), Spec(name: "ids", type: .int64List, listSeparator: "|"),
        Spec(name: "w", type: .doubleList, listSeparator: ";"), Spec(name: "s2", type: .string),
    ]

    /// Random lines: nulls, blank and CRLF lines, quoted strings (when `quoted`), and bad rows.
    func lines(seed: UInt64, count: Int, quoted: Bool) -> [String] {
        var rng = SplitMix64(seed: seed)
        func pick(_ k: Int) -> Int { Int(rng.next() % UInt64(k)) }
        func word() -> String {  // some longer than the list scanner's 16-byte steps
            String((0..<(pick(5) == 0 ? 12 + pick(40) : 1 + pick(6))).map { _ in Character(UnicodeScalar(UInt8(97 + pick(26)))) })
        }
        var out: [String] = []
        for i in 0..<count {
            if pick(25) == 0 || (i < 3 && seed % 2 == 0) {  // blank lines, some at the very start
                out.append(pick(2) == 0 ? "" : "\r")
                continue
            }
            var f: [String] = []
            f.append(pick(8) == 0 ? "" : String(Int64(pick(2_000_000_000)) - 1_000_000_000))
            if quoted && pick(4) == 0 {
                f.append(["\"\"", "\"a\"\"b\"", "\"x\u{01}y\"", "\"\(word())\""][pick(4)])
            } else {
                f.append(pick(8) == 0 ? "" : word())
            }
            f.append(pick(8) == 0 ? "" : String(Double(pick(100_000)) / 64))
            f.append(pick(6) == 0 ? "" : (0..<(1 + pick(4))).map { _ in word() }.joined(separator: "\t"))
            f.append(pick(6) == 0 ? "" : (0..<(1 + pick(5))).map { _ in String(pick(1000) - 500) }.joined(separator: "|"))
            f.append(pick(6) == 0 ? "" : (0..<(1 + pick(3))).map { _ in String(Double(pick(1000)) / 8) }.joined(separator: ";"))
            f.append(pick(5) == 0 ? "" : word())
            switch pick(60) {  // malformed rows
            case 0: f.removeLast()
            case 1: f.append("extra")
            case 2: f[0] = "12x"
            case 3: f[2] = "1.5.5"
            case 4: f[4] = "3|zz"
            default: break
            }
            out.append(f.joined(separator: "\u{01}") + (pick(10) == 0 ? "\r" : ""))
        }
        return out
    }

    /// Splits a line at the separator, honouring quotes like the reader: (text, was quoted).
    func fields(_ line: String, quoted: Bool) -> [(String, Bool)]? {
        guard quoted else { return line.split(separator: "\u{01}", omittingEmptySubsequences: false).map { (String($0), false) } }
        var out: [(String, Bool)] = []
        let chars = Array(line)
        var k = 0
        while true {
            if k < chars.count && chars[k] == "\"" {
                var text = ""
                k += 1
                while true {
                    guard k < chars.count else { return nil }
                    if chars[k] == "\"" {
                        if k + 1 < chars.count && chars[k + 1] == "\"" {
                            text.append("\"")
                            k += 2
                            continue
                        }
                        k += 1
                        break
                    }
                    text.append(chars[k])
                    k += 1
                }
                out.append((text, true))
                if k < chars.count && chars[k] != "\u{01}" { return nil }
            } else {
                var text = ""
                while k < chars.count && chars[k] != "\u{01}" {
                    text.append(chars[k])
                    k += 1
                }
                out.append((text, false))
            }
            if k >= chars.count { return out }
            k += 1  // the separator
        }
    }

    /// One row as a plain loop reads it, or nil when it is malformed (columns in `skip` are
    /// not parsed: their values are not checked).
    func plainRow(_ line: String, quoted: Bool, skip: Set<String>) -> [Value]? {
        guard let f = fields(line, quoted: quoted), f.count == specs.count else { return nil }
        var row: [Value] = []
        for (spec, (text, wasQuoted)) in zip(specs, f) {
            if skip.contains(spec.name) {
                row.append(.null)
                continue
            }
            if text.isEmpty && !(wasQuoted && spec.type == .string) {
                row.append(.null)
                continue
            }
            func scalar(_ t: String, _ type: ColumnType) -> Value? {
                switch type {
                case .int64: return Int64(t).map { .int($0) }
                case .double: return Double(t).map { .double($0) }
                default: return .string(t)
                }
            }
            if let sep = spec.listSeparator {
                var elements: [Value] = []
                for e in text.split(separator: sep, omittingEmptySubsequences: false) {
                    guard let v = scalar(String(e), spec.type.element!) else { return nil }
                    elements.append(v)
                }
                row.append(.list(elements))
            } else {
                guard let v = scalar(text, spec.type) else { return nil }
                row.append(v)
            }
        }
        return row
    }

    func testPartsWriteInPlaceLikeAPlainSplit() throws {
        let dir = try TemporaryDirectory()
        for (seed, quoted) in [(1, false), (2, false), (3, true), (4, true)] as [(UInt64, Bool)] {
            let lines = lines(seed: seed, count: 2500, quoted: quoted)
            let text = lines.joined(separator: "\n") + (seed == 2 ? "" : "\n")  // seed 2: no newline at the end
            let path = try dir.write("p\(seed).txt", text)
            let lineCount = text.utf8.filter { $0 == 10 }.count + (text.utf8.last == 10 ? 0 : 1)  // bytes: "\r\n" is one Character
            let schema = CSVSchema(columns: specs.map { .init(name: $0.name, type: $0.type, listSeparator: $0.listSeparator.map(String.init)) },
                                   separator: "\u{01}", header: false, quote: quoted ? "\"" : nil)
            for partBytes in [1 << 20, 4000, 999, 61] {  // one part, then parts of ~40, ~10 and ~1 lines
                for skip in [[], ["s", "ids"]] as [Set<String>] {
                    // Plain loop.
                    var expected: [[Value]] = []
                    var badLines: [Int] = []
                    for (k, raw) in lines.enumerated() {
                        let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : raw
                        if line.isEmpty { continue }
                        if let row = plainRow(line, quoted: quoted, skip: skip) { expected.append(row) } else { badLines.append(k + 1) }
                    }
                    XCTAssertGreaterThan(badLines.count, 10)
                    var reader = CSVReader(schema: schema, onError: .skip, partBytes: partBytes)
                    reader.skipColumns = skip
                    let (t, s) = try reader.read(path: path)
                    let context = "seed \(seed) partBytes \(partBytes) skip \(skip.sorted())"
                    XCTAssertEqual(s.rows, expected.count, context)
                    XCTAssertEqual(t.rowCount, expected.count, context)
                    XCTAssertEqual(s.skippedRows, badLines.count, context)
                    XCTAssertEqual(s.lines, lineCount, context)
                    XCTAssertEqual(s.skippedSamples.map(\.line), Array(badLines.prefix(CSVReader.sampleLimit)), context)
                    XCTAssertEqual(t.names, specs.map(\.name).filter { !skip.contains($0) }, context)
                    for (c, spec) in specs.enumerated() where !skip.contains(spec.name) {
                        XCTAssertEqual(t[spec.name].values, expected.map { $0[c] }, "\(context) column \(spec.name)")
                    }
                    // Failing: the first bad row, with its file-global line number.
                    reader.onError = .fail
                    XCTAssertThrowsError(try reader.read(path: path)) {
                        XCTAssertTrue("\($0)".hasPrefix("\(path):\(badLines[0]): "), "\($0)")
                    }
                }
            }
        }
    }

    /// `herd_csv_split_line` (64 bytes at a time) against a plain byte loop: lines shorter and
    /// longer than a block, unaligned starts, no newline, more separators than recorded.
    func testSplitLineEqualsAPlainLoop() {
        var rng = SplitMix64(seed: 11)
        func pick(_ k: Int) -> Int { Int(rng.next() % UInt64(k)) }
        var buffer = [UInt8](repeating: 0, count: 700)
        var seps = [UInt32](repeating: 0, count: 64)
        for _ in 0..<20000 {
            let n = pick(300), offset = pick(64), maxSeps = pick(40)
            let noNewline = pick(3) == 0
            for i in offset..<(offset + n) {
                let r = pick(20)
                buffer[i] = r == 0 ? (noNewline ? 120 : 10) : r < 4 ? 1 : UInt8(96 + r)
            }
            var found = 0
            let length = buffer.withUnsafeBufferPointer { b in
                seps.withUnsafeMutableBufferPointer { s in
                    herd_csv_split_line(b.baseAddress! + offset, b.baseAddress! + offset + n, 1, s.baseAddress!, maxSeps, &found)
                }
            }
            // Plain loop.
            var expectedLength = 0
            var expected: [UInt32] = []
            while expectedLength < n && buffer[offset + expectedLength] != 10 {
                if buffer[offset + expectedLength] == 1 { expected.append(UInt32(expectedLength)) }
                expectedLength += 1
            }
            XCTAssertEqual(length, expectedLength)
            XCTAssertEqual(found, expected.count)
            XCTAssertEqual(Array(seps.prefix(min(found, maxSeps))), Array(expected.prefix(maxSeps)))
        }
    }

    /// `NumberParsing.int64` (eight digits per step) against `Int64(String)`: every length up to
    /// 21, signs, a non-digit at every position, values at and past the Int64 limits.
    func testInt64ParsingEqualsTheStandardLibrary() {
        var rng = SplitMix64(seed: 13)
        func pick(_ k: Int) -> Int { Int(rng.next() % UInt64(k)) }
        func parse(_ s: String) -> Int64? { var s = s; return s.withUTF8 { NumberParsing.int64($0.baseAddress!, $0.count) } }
        var cases = ["9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
                     "18446744073709551615", "18446744073709551616", "99999999", "00000000", "+12345678", "-0"]
        for _ in 0..<50000 {
            var s = (0..<(1 + pick(21))).map { _ in String(pick(10)) }.joined()
            if pick(3) == 0 { s = (pick(2) == 0 ? "-" : "+") + s }
            if pick(4) == 0 {  // one non-digit byte somewhere (":" and "/" sit next to the digits)
                var bytes = Array(s.utf8)
                bytes[pick(bytes.count)] = [47, 58, 32, 97, 0, 255][pick(6)]
                s = String(decoding: bytes, as: UTF8.self)
            }
            cases.append(s)
        }
        for s in cases where !s.utf8.contains(255) {  // (255 is not valid UTF-8; covered below)
            XCTAssertEqual(parse(s), Int64(s), s)
        }
        var bytes = Array("12345678".utf8)
        bytes[3] = 255
        XCTAssertNil(bytes.withUnsafeBufferPointer { NumberParsing.int64($0.baseAddress!, $0.count) })
    }
}
