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
    /// go in blocks of `countBlock`, software-pipelined three blocks deep: while block b is
    /// inserted, the key bytes of block b (whose offsets were prefetched one block earlier), the
    /// offsets and counts of block b + 1 (whose slots were prefetched one block earlier) and the
    /// home slots of block b + 2 are prefetched, so each miss has a block's work to arrive in
    /// instead of stalling (the previous one-block scheme waited for about three misses per
    /// block). The prefetches are hints: the inserts are the plain `insert(_:hash:)`, and a block
    /// prefetched before the table grew merely prefetches the wrong lines.
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
        let block = KeyTable.countBlock
        let blocks = (elements.count + block - 1) / block
        @inline(__always) func range(_ b: Int) -> Range<Int> {
            let lo = elements.lowerBound + b * block
            return lo..<Swift.min(lo + block, elements.upperBound)
        }
        // Hashes of three blocks in a ring: block b in rows b % 3.
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 3 * block) { ring in
            @inline(__always) func hashes(_ b: Int) -> UnsafeBufferPointer<UInt64> {
                UnsafeBufferPointer(rebasing: ring[((b % 3) * block)..<((b % 3) * block + range(b).count)])
            }
            @inline(__always) func hashAndPrefetchSlots(_ b: Int) {
                let r = range(b), at = (b % 3) * block
                for (j, e) in r.enumerated() { ring[at + j] = KeyTable.hash(text(e)) }
                prefetchSlots(hashes(b))
            }
            hashAndPrefetchSlots(0)
            if blocks > 1 { hashAndPrefetchSlots(1) }
            counts.withUnsafeBufferPointer { prefetchOffsets(hashes(0), counts: $0.baseAddress) }
            for b in 0..<blocks {
                if b + 2 < blocks { hashAndPrefetchSlots(b + 2) }
                if b + 1 < blocks { counts.withUnsafeBufferPointer { prefetchOffsets(hashes(b + 1), counts: $0.baseAddress) } }
                prefetchBytes(hashes(b))
                let hs = hashes(b)
                for (j, e) in range(b).enumerated() {
                    let (k, inserted) = insert(text(e), hash: hs[j])
                    if inserted { counts.append(1) } else { counts[k] += 1 }
                    if record { visited.append(Int32(truncatingIfNeeded: k)) }
                }
            }
        }
    }

    /// The key in `h`'s home slot if its tag matches, else -1.
    @inline(__always)
    private func home(_ sl: UnsafeBufferPointer<UInt64>, _ h: UInt64) -> Int {
        let v = sl[Int(truncatingIfNeeded: h) & (sl.count - 1)]
        return v != 0 && v >> 32 == h >> 32 ? Int(truncatingIfNeeded: v & 0xFFFF_FFFF) - 1 : -1
    }

    /// Prefetches the home slots of `hashes`.
    func prefetchSlots(_ hs: UnsafeBufferPointer<UInt64>) {
        slots.withUnsafeBufferPointer { sl in
            let mask = sl.count - 1
            for h in hs { herd_prefetch(sl.baseAddress! + (Int(truncatingIfNeeded: h) & mask)) }
        }
    }

    /// Prefetches the offsets and count (`counts`: one per key) of the keys in the home slots of
    /// `hashes` whose tag matches.
    func prefetchOffsets(_ hs: UnsafeBufferPointer<UInt64>, counts: UnsafePointer<Int>?) {
        slots.withUnsafeBufferPointer { sl in
            offsets.withUnsafeBufferPointer { off in
                for h in hs {
                    let k = home(sl, h)
                    if k >= 0 {
                        herd_prefetch(off.baseAddress! + k)
                        if let counts { herd_prefetch(counts + k) }
                    }
                }
            }
        }
    }

    /// Prefetches the bytes of the keys in the home slots of `hashes` whose tag matches.
    func prefetchBytes(_ hs: UnsafeBufferPointer<UInt64>) {
        slots.withUnsafeBufferPointer { sl in
            offsets.withUnsafeBufferPointer { off in
                bytes.withUnsafeBytes { by in
                    guard let b = by.baseAddress else { return }
                    for h in hs {
                        let k = home(sl, h)
                        if k >= 0 { herd_prefetch(b + off[k]) }
                    }
                }
            }
        }
    }
}
