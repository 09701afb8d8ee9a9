import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension FeatureTable {
    /// Keys sorted at most this large go through the comparison sort (`indexOrderByComparison`).
    static let radixOrderMinimum = 512
    /// Counts from this on share the radix sort's first bucket and are ordered by comparison.
    static let radixCountBuckets = 4096

    /// The keys of `table` seen at least `freqLimit` times, in index order: descending count, ties
    /// by ascending bytes (a shorter key before the longer one it starts).
    ///
    /// ```
    /// counts   [table.count]   occurrences of each key
    /// result   [kept]          key numbers, id order (result[i] gets id i + 1)
    /// ```
    ///
    /// NOTE: a radix sort instead of a comparison sort (≈ 4 % of a RecSys fit sorted 300k+ user and
    /// tweet ids with a closure per compare): records (first 8 bytes big-endian, key) are sorted
    /// least significant digit first — the 8 prefix bytes, then the count (counts ≥
    /// `radixCountBuckets` in one bucket) — each pass a stable counting sort, passes whose byte is
    /// the same everywhere skipped. What the digits cannot tell apart is then finished by
    /// comparison: the few keys of the large-count bucket, and runs sharing count and prefix
    /// (`memcmp` of the whole keys).
    static func indexOrder(_ table: KeyTable, _ counts: [Int], freqLimit: Int) -> [Int32] {
        table.bytes.withUnsafeBytes { by in
            table.offsets.withUnsafeBufferPointer { off in
                counts.withUnsafeBufferPointer { cnt in
                    indexOrder(bytes: by, offsets: off, counts: cnt, freqLimit: freqLimit)
                }
            }
        }
    }

    /// `indexOrder` over keys `bytes[offsets[k] ..< offsets[k + 1]]` with `counts[k]`.
    static func indexOrder(bytes by: UnsafeRawBufferPointer, offsets off: UnsafeBufferPointer<Int>, counts cnt: UnsafeBufferPointer<Int>,
                           freqLimit: Int) -> [Int32] {
        let n = cnt.count
        var kept = 0
        for k in 0..<n where cnt[k] >= freqLimit { kept += 1 }
        if kept <= radixOrderMinimum { return indexOrderByComparison(bytes: by, offsets: off, counts: cnt, freqLimit: freqLimit) }

        let buckets = radixCountBuckets
        @inline(__always) func bucket(_ k: Int) -> Int { Swift.min(cnt[k], buckets) }
        var prefix = [UInt64](unsafeUninitializedCapacity: kept) { p, m in
            var i = 0
            for k in 0..<n where cnt[k] >= freqLimit {
                p[i] = prefix8(by, off[k], off[k + 1])
                i += 1
            }
            m = kept
        }
        var keys = [Int32](unsafeUninitializedCapacity: kept) { p, m in
            var i = 0
            for k in 0..<n where cnt[k] >= freqLimit {
                p[i] = Int32(truncatingIfNeeded: k)
                i += 1
            }
            m = kept
        }
        var prefix2 = [UInt64](unsafeUninitializedCapacity: kept) { _, m in m = kept }
        var keys2 = [Int32](unsafeUninitializedCapacity: kept) { _, m in m = kept }
        /// One stable counting-sort pass: record `i` moves to slot `start[digit(prefix, key)]` (then
        /// incremented) of the spare arrays, which become the current ones.
        @inline(__always) func scatter(_ start: inout [Int], _ digit: (UInt64, Int32) -> Int) {
            prefix.withUnsafeBufferPointer { p in
                keys.withUnsafeBufferPointer { k in
                    prefix2.withUnsafeMutableBufferPointer { p2 in
                        keys2.withUnsafeMutableBufferPointer { k2 in
                            start.withUnsafeMutableBufferPointer { st in
                                for i in 0..<kept {
                                    let v = digit(p[i], k[i])
                                    let at = st[v]
                                    st[v] = at + 1
                                    p2[at] = p[i]
                                    k2[at] = k[i]
                                }
                            }
                        }
                    }
                }
            }
            swap(&prefix, &prefix2)
            swap(&keys, &keys2)
        }
        // The 8 byte histograms in one pass.
        var hist = [Int](repeating: 0, count: 8 * 256)
        prefix.withUnsafeBufferPointer { p in
            hist.withUnsafeMutableBufferPointer { h in
                for x in p {
                    for d in 0..<8 { h[d << 8 | Int(truncatingIfNeeded: (x >> UInt64(d * 8)) & 0xFF)] += 1 }
                }
            }
        }
        var start = [Int](repeating: 0, count: 256)
        for d in 0..<8 {
            let h = hist[(d << 8)..<((d + 1) << 8)]
            if h.contains(kept) { continue }  // one byte value everywhere: the pass changes nothing
            var s = 0
            for v in 0..<256 {
                start[v] = s
                s += h[(d << 8) + v]
            }
            let shift = UInt64(d * 8)
            scatter(&start) { p, _ in Int(truncatingIfNeeded: (p >> shift) & 0xFF) }
        }
        // The count pass: descending, so bucket `buckets` first.
        var countStart = [Int](repeating: 0, count: buckets + 1)
        keys.withUnsafeBufferPointer { k in
            for i in 0..<kept { countStart[bucket(Int(k[i]))] += 1 }
        }
        var s = 0
        for b in stride(from: buckets, through: 0, by: -1) {
            let c = countStart[b]
            countStart[b] = s
            s += c
        }
        scatter(&countStart) { _, k in bucket(Int(k)) }

        keys.withUnsafeMutableBufferPointer { k in
            prefix.withUnsafeBufferPointer { p in
                /// Full index order of two keys.
                @inline(__always) func before(_ a: Int32, _ b: Int32) -> Bool {
                    let a = Int(a), b = Int(b)
                    if cnt[a] != cnt[b] { return cnt[a] > cnt[b] }
                    return bytesBefore(by, off, a, b)
                }
                // The large-count bucket: ordered by count only up to `buckets`.
                var large = 0
                while large < kept && cnt[Int(k[large])] >= buckets { large += 1 }
                if large > 1 { k[0..<large].sort(by: before) }
                // Runs of one count and prefix: ordered by the whole keys.
                var i = large
                while i < kept {
                    var j = i + 1
                    let c = cnt[Int(k[i])]
                    while j < kept && p[j] == p[i] && cnt[Int(k[j])] == c { j += 1 }
                    if j - i > 1 { k[i..<j].sort(by: before) }
                    i = j
                }
            }
        }
        return keys
    }

    /// `indexOrder` by a comparison sort of (count, prefix, key) records: the reference the radix
    /// sort must equal, and the path for a few keys.
    static func indexOrderByComparison(bytes by: UnsafeRawBufferPointer, offsets off: UnsafeBufferPointer<Int>, counts cnt: UnsafeBufferPointer<Int>,
                                       freqLimit: Int) -> [Int32] {
        var kept: [SortRecord] = []
        for k in 0..<cnt.count where cnt[k] >= freqLimit {
            kept.append(SortRecord(count: cnt[k], prefix: prefix8(by, off[k], off[k + 1]), key: k))
        }
        kept.sort { a, b in
            if a.count != b.count { return a.count > b.count }
            if a.prefix != b.prefix { return a.prefix < b.prefix }
            return bytesBefore(by, off, a.key, b.key)
        }
        return kept.map { Int32(truncatingIfNeeded: $0.key) }
    }

    /// Key `a`'s bytes order before key `b`'s (a proper prefix first).
    @inline(__always)
    static func bytesBefore(_ by: UnsafeRawBufferPointer, _ off: UnsafeBufferPointer<Int>, _ a: Int, _ b: Int) -> Bool {
        let la = off[a + 1] - off[a], lb = off[b + 1] - off[b], m = Swift.min(la, lb)
        let c = m == 0 ? 0 : memcmp(by.baseAddress! + off[a], by.baseAddress! + off[b], m)
        return c != 0 ? c < 0 : la < lb
    }
}
