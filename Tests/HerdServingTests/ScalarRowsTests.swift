import Foundation
import HerdFeatures
@testable import HerdServing
import XCTest

/// Rows decoded straight into flat scalars (`FeatureRowCodec.decodeScalars`, `ScalarRows`) against
/// the value decode (`FeatureRowCodec.decode`), and the ranking batch read from them against the
/// batch read from value rows.
final class ScalarRowsTests: XCTestCase {
    /// A random all-scalar table: key, int64s (negative, large, null), doubles (NaN, ±inf, -0, null).
    func table(rows n: Int, seed: UInt64) throws -> (FeatureTable, FeatureSchema) {
        var rng = SplitMix(seed)
        func maybe<T>(_ v: T) -> T? { rng.next() % 5 == 0 ? nil : v }
        let specials: [Double] = [.nan, .infinity, -.infinity, -0.0, 0, 1e-300, -1.5e300]
        let key = Column(int64s: (0..<n).map { Int64($0 + 1) })
        let a = Column(int64s: (0..<n).map { _ in maybe(Int64(bitPattern: rng.next()) >> Int64(rng.next() % 64)) })
        let b = Column(doubles: (0..<n).map { _ in maybe(rng.next() % 4 == 0 ? specials[Int(rng.next() % 7)] : Double(bitPattern: rng.next() >> 2)) })
        let c = Column(int64s: (0..<n).map { _ in maybe(Int64(rng.next() % 7)) })
        let t = try FeatureTable([("id", key), ("a", a), ("b", b), ("c", c)])
        return (t, try FeatureSchema(table: t, keyColumn: "id"))
    }

    func scalars(_ bytes: [UInt8], _ schema: FeatureSchema, fingerprint: UInt32) throws -> [Value] {
        let isDouble = schema.fields.map { $0.type == .double }
        var s = ScalarRows(count: 1, fields: schema.fields.count)
        try isDouble.withUnsafeBufferPointer { types in
            try s.withBuffers { found, bits, present in
                try bytes.withUnsafeBytes {
                    try FeatureRowCodec.decodeScalars($0, isDouble: types, fingerprint: fingerprint, bits: bits, present: present, what: "row")
                }
                found[0] = true
            }
        }
        return s.valueRows(schema)[0]!
    }

    func testDecodeScalarsEqualsDecode() throws {
        let (t, schema) = try table(rows: 3000, seed: 7)
        let fp = schema.fingerprint
        var bytes: [UInt8] = []
        for r in 0..<t.rowCount {
            FeatureRowCodec.encode(t.columns, row: r, fingerprint: fp, into: &bytes)
            let reference = try bytes.withUnsafeBytes { try FeatureRowCodec.decode($0, schema: schema, fingerprint: fp, what: "row") }
            let got = try scalars(bytes, schema, fingerprint: fp)
            // NOTE: NaN != NaN as a Value: compare the bits.
            XCTAssertEqual(got.map(bitsOf), reference.map(bitsOf), "row \(r)")
        }
    }

    func testDecodeScalarsRefusesWhatDecodeRefusesWithTheSameMessage() throws {
        let (t, schema) = try table(rows: 50, seed: 3)
        let fp = schema.fingerprint
        var good: [UInt8] = []
        FeatureRowCodec.encode(t.columns, row: 4, fingerprint: fp, into: &good)
        var bad: [[UInt8]] = [[], [2] + good.dropFirst(), Array(good.prefix(3)), good + [0], [1, 0, 0, 0, 0]]
        bad += (1..<good.count).map { Array(good.prefix($0)) }                              // every truncation
        bad.append(Array(good.prefix(5)) + [1] + [UInt8](repeating: 0xFF, count: 11))        // a varint past 64 bits
        var wrongFingerprint = good
        wrongFingerprint[1] ^= 1
        bad.append(wrongFingerprint)
        for b in bad {
            var reference = "", got = ""
            XCTAssertThrowsError(try b.withUnsafeBytes { try FeatureRowCodec.decode($0, schema: schema, fingerprint: fp, what: "row") }) { reference = "\($0)" }
            XCTAssertThrowsError(try scalars(b, schema, fingerprint: fp)) { got = "\($0)" }
            XCTAssertEqual(got, reference, "\(b)")
        }
    }

    func testValueRowsMarkMissesAndNulls() {
        let schema = FeatureSchema(keyColumn: "id", fields: [.init(name: "id", type: .int64), .init(name: "x", type: .double)])
        var s = ScalarRows(count: 3, fields: 2)
        s.found = [true, false, true]
        s.bits = [7, 2.5.bitPattern, 0, 0, UInt64(bitPattern: -9), 0]
        s.present = [true, true, false, false, true, false]
        XCTAssertEqual(s.valueRows(schema), [[.int(7), .double(2.5)], nil, [.int(-9), .null]])
        let rows = FeatureRows(schema: schema, ids: [1, 2, 3], scalars: s)
        XCTAssertEqual(rows, FeatureRows(schema: schema, ids: [1, 2, 3], rows: [[.int(7), .double(2.5)], nil, [.int(-9), .null]]))
        XCTAssertEqual(rows.found, [true, false, true])
        XCTAssertEqual(rows.missCount, 1)
        XCTAssertEqual((0..<3).map(rows.isFound), [true, false, true])
        XCTAssertTrue(ScalarRows.fits(schema))
        XCTAssertFalse(ScalarRows.fits(FeatureSchema(keyColumn: "id", fields: [.init(name: "id", type: .int64), .init(name: "l", type: .int64List)])))
    }

    /// The embedded store answers all-scalar rows as `ScalarRows`, equal to the value rows, and the
    /// ranking batch read from them equals the batch read from the same rows as values (misses,
    /// nulls, the key of a missing row, an id outside a cardinality refused with the same message).
    func testBatchFromScalarRowsEqualsBatchFromValueRows() throws {
        let (t, schema) = try table(rows: 300, seed: 11)
        let store = try EmbeddedFeatureStore(path: nil)
        try store.put(t, kind: .item, keyColumn: "id")
        let user = try FeatureTable([("uid", Column(int64s: [5])), ("u", Column(doubles: [0.25]))])
        try store.put(user, kind: .user, keyColumn: "uid")
        let userSchema = try XCTUnwrap(try store.schema(kind: .user))
        let spec = BatchSpec(sparse: [.init(name: "id", cardinality: 400), .init(name: "c", cardinality: 7), .init(name: "uid", cardinality: 10)],
                             dense: ["a", "b", "u", "pair"], labels: [])
        let input = RankingInput(spec: spec, userSchema: userSchema, itemSchema: schema)
        let u = try store.get(kind: .user, ids: [5])
        for ids in [Array(Int64(1)...300), [3, 333, 7, 350, 1], [], [398, 399]] as [[Int64]] {
            let scalar = try store.get(kind: .item, ids: ids)
            XCTAssertEqual(scalar.scalars != nil, !ids.isEmpty, "all-scalar rows decode flat")
            let values = FeatureRows(schema: scalar.schema, ids: scalar.ids, rows: scalar.rows)
            XCTAssertNil(values.scalars)
            // NOTE: NaN != NaN as a Value: compare the bits (the codec's own equality test is above).
            XCTAssertTrue(scalar.rows.map { $0?.map(bitsOf) } == values.rows.map { $0?.map(bitsOf) })
            XCTAssertEqual(scalar.found, values.found)
            let a = try input.batch(userID: 5, user: u, items: scalar), b = try input.batch(userID: 5, user: u, items: values)
            XCTAssertEqual(a.dense.shape, b.dense.shape)
            XCTAssertEqual(a.dense.array.map(\.bitPattern), b.dense.array.map(\.bitPattern), "\(ids.prefix(5))")
            XCTAssertEqual(a.sparse.offsets, b.sparse.offsets)
            XCTAssertEqual(a.sparse.ids, b.sparse.ids)
            let viaTable = try input.table(userID: 5, user: u, items: scalar).batch(input.spec)
            XCTAssertEqual(a.sparse.ids, viaTable.sparse.ids)
        }
        // A missing row's key (an id past the key's cardinality) is refused by both, with the same message.
        let missing = try store.get(kind: .item, ids: [2, 450])
        var m1 = "", m2 = ""
        XCTAssertThrowsError(try input.batch(userID: 5, user: u, items: missing)) { m1 = "\($0)" }
        XCTAssertThrowsError(try input.batch(userID: 5, user: u, items: FeatureRows(schema: schema, ids: missing.ids, rows: missing.rows))) { m2 = "\($0)" }
        XCTAssertEqual(m1, m2)
        XCTAssertTrue(m1.contains("outside"), m1)
    }
}

private func bitsOf(_ v: Value) -> String {
    if case .double(let d) = v { return "d\(d.bitPattern)" }
    return "\(v)"
}

private struct SplitMix {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The bounded top-k selection against sorting every candidate.
final class TopKSelectionTests: XCTestCase {
    func testTopKEqualsTheSortedPrefix() {
        var rng = SplitMix(5)
        for trial in 0..<3000 {
            let n = Int(rng.next() % 260)
            let pool: [Float] = [0, 0.5, 1, -0.0, .nan, .infinity, -.infinity, 0.25]
            let values: [Float] = (0..<n).map { _ in
                trial % 3 == 0 ? pool[Int(rng.next() % 8)] : Float(rng.next() % 1000) / 999   // many ties, NaNs
            }
            for k in [0, 1, 3, 10, 50, n, n + 5] {
                XCTAssertEqual(Recommender.topK(values, k: k), Recommender.topKBySorting(values, k: k), "n \(n) k \(k) \(values)")
            }
        }
    }
}
