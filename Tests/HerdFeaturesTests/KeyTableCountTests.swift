@testable import HerdFeatures
import HerdTensor
import XCTest

/// `KeyTable.count` (prefetching, batched) and `countValues`' string path against plain loops
/// over Swift dictionaries.
final class KeyTableCountTests: XCTestCase {
    /// Random values: empty strings, short ids, long (> 64 bytes) keys, heavy repeats.
    func randomStrings(_ n: Int, seed: UInt64) -> [String] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in
            switch rng.next() % 10 {
            case 0: return ""
            case 1: return String(repeating: "x", count: 60 + Int(rng.next() % 20)) + String(rng.next() % 7)
            case 2, 3: return "hot\(rng.next() % 3)"
            default: return "u\(rng.next() % 2000)"
            }
        }
    }

    func testCountEqualsPlainLoop() {
        let values = randomStrings(20_011, seed: 5)
        let s = StringData(values)
        for elements in [0..<values.count, 17..<18, 3..<40, 500..<19_000, 9..<9] {
            var t = KeyTable(capacity: 4)  // grows many times mid-run
            var counts: [Int] = [], visited: [Int32] = []
            s.bytes.withUnsafeBytes { by in
                s.offsets.withUnsafeBufferPointer { off in
                    t.count(packed: by, offsets: off, elements: elements, counts: &counts, record: true, visited: &visited)
                }
            }
            // Plain loop: numbers in first-seen order.
            var number: [String: Int] = [:], plainCounts: [Int] = [], plainVisited: [Int32] = []
            for e in elements {
                let k = number[values[e]] ?? number.count
                if k == number.count {
                    number[values[e]] = k
                    plainCounts.append(0)
                }
                plainCounts[k] += 1
                plainVisited.append(Int32(k))
            }
            XCTAssertEqual(counts, plainCounts, "\(elements)")
            XCTAssertEqual(visited, plainVisited, "\(elements)")
            XCTAssertEqual(t.count, number.count)
            for (v, k) in number { XCTAssertEqual(String(decoding: t.key(k), as: UTF8.self), v) }
        }
    }

    func testCountIntoEmptyBytes() {
        let s = StringData(["", "", ""])  // no bytes at all
        var t = KeyTable()
        var counts: [Int] = [], visited: [Int32] = []
        s.bytes.withUnsafeBytes { by in
            s.offsets.withUnsafeBufferPointer { off in
                t.count(packed: by, offsets: off, elements: 0..<3, counts: &counts, record: false, visited: &visited)
            }
        }
        XCTAssertEqual(counts, [3])
        XCTAssertEqual(visited, [])
    }

    /// `countValues` on string, string-list (nulls, empty lists, null lists) and int64 columns
    /// equals counting the values of the columns one by one.
    func testCountValuesEqualsPlainLoop() throws {
        var rng = SplitMix64(seed: 9)
        let n = 7_001
        let pool = randomStrings(400, seed: 3)
        func pick(_ k: UInt64) -> Int { Int(rng.next() % k) }
        var a: [String?] = [], l: [[String]?] = [], ints: [Int64?] = []
        for _ in 0..<n {
            a.append(pick(6) == 0 ? nil : pool[pick(400)])
            l.append(pick(5) == 0 ? nil : (0..<pick(4)).map { _ in pool[pick(100)] })
            ints.append(pick(5) == 0 ? nil : Int64(pick(90)) - 20)
        }
        let full = Column(strings: a.map { $0 ?? "" })  // no validity at all
        let t = try FeatureTable([("a", Column(strings: a)), ("l", Column(stringLists: l)), ("n", Column(int64s: ints)), ("f", full)])
        for names in [["a"], ["l"], ["a", "l", "f"], ["n", "a"]] {
            let counted = t.countValues(names.map { t[$0] }, recordKeys: true)
            var plain: [String: Int] = [:]
            var visits: [[String]] = names.map { _ in [] }  // per column, in row order
            for (j, name) in names.enumerated() {
                for v in t[name].values {
                    switch v {
                    case .string(let s): plain[s, default: 0] += 1; visits[j].append(s)
                    case .int(let x): plain[String(x), default: 0] += 1; visits[j].append(String(x))
                    case .list(let es):
                        for case .string(let s) in es { plain[s, default: 0] += 1; visits[j].append(s) }
                    default: break
                    }
                }
            }
            var got: [String: Int] = [:]
            for k in 0..<counted.table.count { got[String(decoding: counted.table.key(k), as: UTF8.self)] = counted.counts[k] }
            XCTAssertEqual(got, plain, "\(names)")
            // Recorded keys, range by range, name the visited values in order.
            for j in names.indices {
                let recorded = counted.keys.flatMap { $0[j] }.map { String(decoding: counted.table.key(Int($0)), as: UTF8.self) }
                XCTAssertEqual(recorded, visits[j], "\(names) column \(j)")
            }
        }
    }
}
