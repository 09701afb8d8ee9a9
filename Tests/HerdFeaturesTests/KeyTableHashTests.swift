@testable import HerdFeatures
import HerdTensor
import XCTest

/// `KeyTable.hash` and `KeyTable.equal` (overlapping loads for the tail) against plain loops over
/// the bytes, at every key length up to 80 and every differing byte position.
final class KeyTableHashTests: XCTestCase {
    /// The hash as a plain loop: words assembled byte by byte (little-endian), the cases of
    /// `KeyTable.hash`'s table.
    func plainHash(_ key: [UInt8]) -> UInt64 {
        func word(_ o: Int) -> UInt64 {
            var w: UInt64 = 0
            for j in 0..<8 { w |= UInt64(key[o + j]) << UInt64(8 * j) }
            return w
        }
        func mum(_ a: UInt64, _ b: UInt64) -> UInt64 {
            let r = a.multipliedFullWidth(by: b)
            return r.high ^ r.low
        }
        let n = key.count, seed = KeyTable.K0 ^ UInt64(n)
        if n == 0 { return mum(KeyTable.K1, seed) }
        if n < 8 {
            var a: UInt64 = 0
            for j in 0..<n { a |= UInt64(key[j]) << UInt64(8 * j) }
            return mum(mum(a ^ KeyTable.K1, seed) ^ KeyTable.K3, KeyTable.K4 ^ UInt64(n))
        }
        if n <= 16 { return mum(mum(word(0) ^ KeyTable.K1, word(n - 8) ^ seed) ^ KeyTable.K3, KeyTable.K4 ^ UInt64(n)) }
        if n <= 32 { return mum(mum(word(0) ^ KeyTable.K1, word(8) ^ seed) ^ KeyTable.K4, mum(word(n - 16) ^ KeyTable.K2, word(n - 8) ^ KeyTable.K3) ^ UInt64(n)) }
        var h0 = seed, h1 = KeyTable.K5
        var i = 0
        while n - i > 32 {
            h0 = mum(word(i) ^ KeyTable.K1, word(i + 8) ^ h0)
            h1 = mum(word(i + 16) ^ KeyTable.K2, word(i + 24) ^ h1)
            i += 32
        }
        return mum(mum(word(n - 32) ^ KeyTable.K1, word(n - 24) ^ h0) ^ KeyTable.K4, mum(word(n - 16) ^ KeyTable.K2, word(n - 8) ^ h1) ^ UInt64(n))
    }

    /// `short` as a plain loop.
    func testShortEqualsPlainLoop() {
        for n in 1...7 {
            let key = (0..<n).map { UInt8(truncatingIfNeeded: 200 &+ $0 &* 7) }
            var plain: UInt64 = 0
            for j in 0..<n { plain |= UInt64(key[j]) << UInt64(j * 8) }
            // Inside a larger buffer, so a load past the key's end would read other bytes.
            let padded = [UInt8](repeating: 0xAB, count: 9) + key + [UInt8](repeating: 0xCD, count: 9)
            let t = padded.withUnsafeBytes { KeyTable.short(UnsafeRawBufferPointer(rebasing: $0[9..<(9 + n)])) }
            XCTAssertEqual(t, plain, "length \(n)")
        }
    }

    /// Sequential hex ids (the RecSys shape) and short decimal strings spread over the slots
    /// (low bits) and the tags (high 32 bits) about as well as random numbers.
    func testSpread() {
        let shapes: [(Int) -> String] = [{ String(format: "%032lX", $0 &* 2_654_435_761) }, { String($0) }, { String(format: "%08d", $0) },
                                         { "user" + String($0) }, { String(format: "%040ld", $0 << 20) }]
        for make in shapes {
            var low = Set<UInt64>(), high = Set<UInt64>(), all = Set<UInt64>()
            for i in 0..<65536 {
                var s = make(i)
                let h = s.withUTF8 { KeyTable.hash(UnsafeRawBufferPointer($0)) }
                low.insert(h & 0xFFFF)
                high.insert(h >> 48)
                all.insert(h)
            }
            // Random: 65536 · (1 − 1/e) ≈ 41427 distinct 16-bit values.
            XCTAssertGreaterThan(low.count, 40_000)
            XCTAssertGreaterThan(high.count, 40_000)
            XCTAssertEqual(all.count, 65536)
        }
    }

    func testHashEqualsPlainLoop() {
        var rng = SplitMix64(seed: 4)
        for n in 0...80 {
            for _ in 0..<5 {
                let key = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                // Inside a larger buffer, so a load past the key's end would read other bytes.
                let padded = [UInt8](repeating: 0xAB, count: 9) + key + [UInt8](repeating: 0xCD, count: 9)
                let h = padded.withUnsafeBytes { KeyTable.hash(UnsafeRawBufferPointer(rebasing: $0[9..<(9 + n)])) }
                XCTAssertEqual(h, plainHash(key), "length \(n)")
            }
        }
    }

    func testEqualAtEveryLengthAndPosition() {
        var rng = SplitMix64(seed: 6)
        for n in 0...80 {
            let key = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() | 1) }
            var t = KeyTable()
            _ = key.withUnsafeBytes { t.insert($0) }
            var variants: [[UInt8]] = [key + [0], Array(key.dropLast())]
            for p in 0..<n {
                var v = key
                v[p] ^= 0x80
                variants.append(v)
            }
            for v in variants where v != key {
                // Surrounded by the key's own bytes: only the compared range may decide.
                let buf = key + v + key
                let k = buf.withUnsafeBytes { KeyTable.equal($0, 0, n, UnsafeRawBufferPointer(rebasing: $0[n..<(n + v.count)])) }
                XCTAssertFalse(k, "length \(n), variant \(v)")
                let r = v.withUnsafeBytes { t.insert($0) }
                XCTAssertTrue(r.inserted, "length \(n)")
            }
            XCTAssertEqual(key.withUnsafeBytes { t.find($0) }, 0, "length \(n)")
            let same = (key + key).withUnsafeBytes { KeyTable.equal($0, 0, n, UnsafeRawBufferPointer(rebasing: $0[n..<(2 * n)])) }
            XCTAssertTrue(same, "length \(n)")
        }
    }
}
