/// Groups of equal rows: `distinct` holds the first row of each group in order of appearance,
/// `map[s]` the group of row `s` (`distinct[map[s]]` equals row `s`).
///
/// ```
/// rows 0 1 2 3 4   (values a b a c b)  →  distinct [0, 1, 3], map [0, 1, 0, 2, 1]
/// ```
///
/// NOTE: rows are grouped by the caller's 64-bit hash and then compared exactly (`equal`) with
/// the group's first row; a row whose hash collides with an unequal row is kept as its own group
/// (never merged). The table is open addressing over `2^⌈log2 2B⌉` slots with linear probing
/// (a `Dictionary`'s hashing and allocation were ≈ 2 % of a BF16 canK-200 recommend request).
public struct RowGroups: Equatable, Sendable {
    public let distinct: [Int]
    public let map: [Int]

    /// The groups of rows `0..<count`; nil when every row is distinct.
    public static func of(count: Int, hash: (Int) -> UInt64, equal: (_ first: Int, _ row: Int) -> Bool) -> RowGroups? {
        guard count > 1 else { return nil }
        var slots = 16
        while slots < 2 * count { slots <<= 1 }
        let mask = slots - 1
        var table = [Int32](repeating: -1, count: slots)
        var hashes: [UInt64] = [], distinct: [Int] = []
        hashes.reserveCapacity(count)
        distinct.reserveCapacity(count)
        var map = [Int](repeating: 0, count: count)
        for s in 0..<count {
            let h = hash(s)
            var i = Int(truncatingIfNeeded: h) & mask
            var group = -1
            while table[i] >= 0 {
                let g = Int(table[i])
                if hashes[g] == h, equal(distinct[g], s) { group = g; break }
                i = (i + 1) & mask
            }
            if group < 0 {
                group = distinct.count
                table[i] = Int32(group)
                hashes.append(h)
                distinct.append(s)
            }
            map[s] = group
        }
        return distinct.count < count ? RowGroups(distinct: distinct, map: map) : nil
    }

    /// One step of the 64-bit mix the row hashes use (multiply–xorshift).
    @inline(__always)
    public static func mix(_ h: UInt64, _ v: UInt64) -> UInt64 {
        let m = (h ^ v) &* 0xFF51_AFD7_ED55_8CCD
        return m ^ (m >> 29)
    }

    /// The seed of a row hash.
    public static let seed: UInt64 = 0x9E37_79B9_7F4A_7C15
}
