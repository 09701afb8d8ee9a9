import CHerdKernels

extension KeyTable {
    /// Values hashed, prefetched and then inserted together by `count(packed:…)`.
    static let countBlock = 32

    /// Counts packed byte strings: for each `e` in `elements`, inserts
    /// `bytes[offsets[e] ..< offsets[e + 1]]`, adds 1 to `counts[key]` (appending a 1 for a new
    /// key) and, with `record`, appends the key's number to `visited`.
    ///
    /// ```
    /// bytes     the values back to back (a StringData's bytes)
    /// offsets   [≥ elements.upperBound + 1]  value e is bytes[offsets[e] ..< offsets[e + 1]]
    /// counts    [count]  occurrences per key (grows with the table)
    /// visited   [+ elements.count]  with `record`
    /// ```
    ///
    /// NOTE: counting large tables (user and tweet ids) is memory-latency bound: every insert
    /// reads a random slot, then the key's offset and bytes, three dependent cache misses. Values
    /// go in blocks of `countBlock`: all are hashed, their slots prefetched, then (slots now
    /// cached) the offsets, bytes and counts of the keys whose tag matches, and only then inserted, so a
    /// block waits for about three misses instead of three per value. The prefetches are hints:
    /// the inserts are the plain `insert(_:hash:)`.
    mutating func count(
        packed bytes: UnsafeRawBufferPointer, offsets: UnsafeBufferPointer<Int>, elements: Range<Int>,
        counts: inout [Int], record: Bool, visited: inout [Int32]
    ) {
        guard !elements.isEmpty else { return }
        // NOTE: empty values everywhere (no bytes at all) have no base address to point into.
        let base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        @inline(__always) func text(_ e: Int) -> UnsafeRawBufferPointer {
            let a = offsets[e], b = offsets[e + 1]
            return UnsafeRawBufferPointer(start: base + a, count: b - a)
        }
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: KeyTable.countBlock) { hs in
            var e0 = elements.lowerBound
            while e0 < elements.upperBound {
                let m = Swift.min(KeyTable.countBlock, elements.upperBound - e0)
                for j in 0..<m { hs[j] = KeyTable.hash(text(e0 + j)) }
                counts.withUnsafeBufferPointer { prefetch(hashes: UnsafeBufferPointer(rebasing: hs[0..<m]), counts: $0.baseAddress) }
                for j in 0..<m {
                    let (k, inserted) = insert(text(e0 + j), hash: hs[j])
                    if inserted { counts.append(1) } else { counts[k] += 1 }
                    if record { visited.append(Int32(truncatingIfNeeded: k)) }
                }
                e0 += m
            }
        }
    }

    /// Prefetches the home slots of `hashes`, then the offsets, bytes and count (`counts`: one
    /// per key) of the keys in those slots whose tag matches.
    func prefetch(hashes hs: UnsafeBufferPointer<UInt64>, counts: UnsafePointer<Int>?) {
        slots.withUnsafeBufferPointer { sl in
            offsets.withUnsafeBufferPointer { off in
                bytes.withUnsafeBytes { by in
                    let mask = sl.count - 1
                    for h in hs { herd_prefetch(sl.baseAddress! + (Int(truncatingIfNeeded: h) & mask)) }
                    /// The key in `h`'s home slot if its tag matches, else -1.
                    @inline(__always) func home(_ h: UInt64) -> Int {
                        let v = sl[Int(truncatingIfNeeded: h) & mask]
                        return v != 0 && v >> 32 == h >> 32 ? Int(truncatingIfNeeded: v & 0xFFFF_FFFF) - 1 : -1
                    }
                    for h in hs {
                        let k = home(h)
                        if k >= 0 {
                            herd_prefetch(off.baseAddress! + k)
                            if let counts { herd_prefetch(counts + k) }
                        }
                    }
                    guard let b = by.baseAddress else { return }
                    for h in hs {
                        let k = home(h)
                        if k >= 0 { herd_prefetch(b + off[k]) }
                    }
                }
            }
        }
    }
}
