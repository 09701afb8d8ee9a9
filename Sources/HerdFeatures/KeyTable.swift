/// An open-addressing hash set of byte strings, numbering keys densely in insertion order.
///
/// ```
/// slots      [capacity]  UInt64: 0 empty, else (high 32 bits of the key's hash) << 32 | (key number + 1)
///                        (linear probing; capacity 2^k)
/// hashes     [keys]      UInt64 hash of each key (rehash without rereading bytes)
/// offsets    [keys + 1]  key k is bytes[offsets[k] ..< offsets[k + 1]]
/// bytes                  the keys back to back
/// ```
///
/// NOTE: the one hashing structure behind categorify (counting values), encode (lookup),
/// groupBy / dropDuplicates / join (row keys serialised by `Column.appendKey`): byte slices are
/// hashed and compared in place, so no `String` or array is allocated per row. A slot holds a
/// hash tag next to the key number, so a probe that misses costs one cache line, not three
/// (slot, hash, bytes); keys up to 64 bytes are compared inline, 8 bytes at a time.
struct KeyTable: Sendable {
    private(set) var slots: [UInt64]
    private(set) var hashes: [UInt64] = []
    private(set) var offsets: [Int] = [0]
    private(set) var bytes: [UInt8] = []
    private var mask: Int

    init(capacity: Int = 16) {
        var c = 16
        while c < capacity * 2 { c <<= 1 }
        slots = [UInt64](repeating: 0, count: c)
        mask = c - 1
        hashes.reserveCapacity(capacity)
        offsets.reserveCapacity(capacity + 1)
    }

    /// The keys `bytes[offsets[k] ..< offsets[k + 1]]`, numbered `k` (`offsets` starts at 0 and
    /// ends at `bytes.count`, nondecreasing), as `init(capacity:)` and `insert` in order would
    /// leave them; nil when a key repeats.
    ///
    /// NOTE: building from one contiguous blob (a fitted pipeline's sidecar) copies no key and
    /// allocates nothing per key.
    init?(offsets: [Int], bytes: [UInt8]) {
        precondition(offsets.first == 0 && offsets.last == bytes.count, "offsets must span the bytes")
        let n = offsets.count - 1
        self.init(capacity: n)
        var hs = [UInt64](repeating: 0, count: n)
        let m = mask
        let unique: Bool = bytes.withUnsafeBytes { by in
            offsets.withUnsafeBufferPointer { off in
                hs.withUnsafeMutableBufferPointer { h in
                    slots.withUnsafeMutableBufferPointer { sl in
                        for k in 0..<n {
                            let key = UnsafeRawBufferPointer(rebasing: by[off[k]..<off[k + 1]])
                            let hk = KeyTable.hash(key)
                            h[k] = hk
                            let tag = hk >> 32
                            var s = Int(truncatingIfNeeded: hk) & m
                            while true {
                                let v = sl[s]
                                if v == 0 { break }
                                if v >> 32 == tag {
                                    let j = Int(truncatingIfNeeded: v & 0xFFFF_FFFF) - 1
                                    if KeyTable.equal(by, off[j], off[j + 1], key) { return false }
                                }
                                s = (s + 1) & m
                            }
                            sl[s] = tag << 32 | UInt64(k + 1)
                        }
                        return true
                    }
                }
            }
        }
        guard unique else { return nil }
        hashes = hs
        self.offsets = offsets
        self.bytes = bytes
    }

    var count: Int { hashes.count }

    /// Every key is valid UTF-8 (so `String(decoding:)` keeps its bytes as they are).
    ///
    /// NOTE: ASCII keys (every id) are checked 8 bytes at a time; only a table with other bytes
    /// validates key by key.
    var isValidUTF8: Bool {
        bytes.withUnsafeBufferPointer { b in
            let raw = UnsafeRawBufferPointer(b)
            var i = 0
            var high: UInt64 = 0
            while i + 8 <= raw.count {
                high |= raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < raw.count {
                high |= UInt64(raw[i])
                i += 1
            }
            if high & 0x8080_8080_8080_8080 == 0 { return true }
            return offsets.withUnsafeBufferPointer { o in
                (0..<count).allSatisfy { String(validating: UnsafeBufferPointer(rebasing: b[o[$0]..<o[$0 + 1]]), as: UTF8.self) != nil }
            }
        }
    }

    func key(_ k: Int) -> ArraySlice<UInt8> { bytes[offsets[k]..<offsets[k + 1]] }

    /// The number of `key`, inserting it when new.
    @inline(__always)
    mutating func insert(_ key: UnsafeRawBufferPointer) -> (index: Int, inserted: Bool) {
        insert(key, hash: KeyTable.hash(key))
    }

    /// `insert` with the key's `hash(key)` already known (merging tables).
    @inline(__always)
    mutating func insert(_ key: UnsafeRawBufferPointer, hash h: UInt64) -> (index: Int, inserted: Bool) {
        let (found, slot) = probe(key, h)
        if let found { return (found, false) }
        let k = hashes.count
        slots[slot] = (h >> 32) << 32 | UInt64(k + 1)
        hashes.append(h)
        if key.count > 0 { bytes.append(contentsOf: key.assumingMemoryBound(to: UInt8.self)) }
        offsets.append(bytes.count)
        if hashes.count * 2 > slots.count { grow() }
        return (k, true)
    }

    /// The number of `key`, or nil.
    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer) -> Int? { probe(key, KeyTable.hash(key)).found }

    /// The key's number if present, else the empty slot where it would go.
    @inline(__always)
    private func probe(_ key: UnsafeRawBufferPointer, _ h: UInt64) -> (found: Int?, slot: Int) {
        let tag = h >> 32
        let m = mask
        return slots.withUnsafeBufferPointer { sl in
            offsets.withUnsafeBufferPointer { off in
                bytes.withUnsafeBytes { by in
                    var s = Int(truncatingIfNeeded: h) & m
                    while true {
                        let v = sl[s]
                        if v == 0 { return (nil, s) }
                        if v >> 32 == tag {
                            let k = Int(truncatingIfNeeded: v & 0xFFFF_FFFF) - 1
                            if KeyTable.equal(by, off[k], off[k + 1], key) { return (k, s) }
                        }
                        s = (s + 1) & m
                    }
                }
            }
        }
    }

    /// `bytes[lo..<hi] == key`.
    @inline(__always)
    static func equal(_ bytes: UnsafeRawBufferPointer, _ lo: Int, _ hi: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let n = hi - lo
        guard n == key.count else { return false }
        if n == 0 { return true }
        let a = bytes.baseAddress! + lo, b = key.baseAddress!
        if n > 64 { return memcmp(a, b, n) == 0 }
        if n < 8 {  // NOTE: overlapping loads (as `short`), not a byte loop
            if n >= 4 {
                return a.loadUnaligned(as: UInt32.self) == b.loadUnaligned(as: UInt32.self)
                    && a.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self) == b.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
            }
            let m = n >> 1
            return a.load(as: UInt8.self) == b.load(as: UInt8.self) && a.load(fromByteOffset: m, as: UInt8.self) == b.load(fromByteOffset: m, as: UInt8.self)
                && a.load(fromByteOffset: n - 1, as: UInt8.self) == b.load(fromByteOffset: n - 1, as: UInt8.self)
        }
        var i = 0
        while i + 8 <= n {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i += 8
        }
        return i == n || a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) == b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
    }

    /// The bytes of a 1- to 7-byte `key` as a little-endian integer, read without touching a byte
    /// outside it.
    ///
    /// NOTE: two 4-byte loads (or three single bytes) OR-ed into place, the overlapping bytes
    /// agreeing, instead of a loop over the bytes.
    @inline(__always)
    static func short(_ key: UnsafeRawBufferPointer) -> UInt64 {
        let n = key.count, p = key.baseAddress!
        if n >= 4 {
            let a = UInt64(p.loadUnaligned(as: UInt32.self).littleEndian)
            let b = UInt64(p.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self).littleEndian)
            return a | b << UInt64((n - 4) * 8)
        }
        let m = n >> 1
        return UInt64(p.load(as: UInt8.self)) | UInt64(p.load(fromByteOffset: m, as: UInt8.self)) << UInt64(m * 8)
            | UInt64(p.load(fromByteOffset: n - 1, as: UInt8.self)) << UInt64((n - 1) * 8)
    }

    private mutating func grow() {
        let c = slots.count * 2
        slots = [UInt64](repeating: 0, count: c)
        mask = c - 1
        for (k, h) in hashes.enumerated() {
            var s = Int(truncatingIfNeeded: h) & mask
            while slots[s] != 0 { s = (s + 1) & mask }
            slots[s] = (h >> 32) << 32 | UInt64(k + 1)
        }
    }

    /// A fast 64-bit hash of a byte string (not cryptographic, not persisted — `hashEncode` uses
    /// MD5 for stable ids): 8-byte words combined in pairs by `mum`, the 128-bit product's halves
    /// XOR-ed.
    ///
    /// ```
    /// n = 0          mum(K1, seed)                      seed = K0 ^ n
    /// 1 ≤ n ≤ 16     mum(mum(a ^ K1, b ^ seed) ^ K3,    a, b: first and last 8 bytes (n ≥ 8), else
    ///                    K4 ^ n)                        a = the n bytes little-endian, b = 0
    ///                                                   (one product alone left the high bits of
    ///                                                   short decimal strings clumped)
    /// 16 < n ≤ 32    mum(mum(w0 ^ K1, w1 ^ seed) ^ K4, mum(x0 ^ K2, x1 ^ K3) ^ n)
    ///                                                   w: first 16 bytes, x: last 16 (overlapping)
    /// n > 32         two chains over 32-byte blocks (all but the last), then the last 32 bytes as
    ///                above, folded into both
    /// ```
    ///
    /// NOTE: the RecSys ids are 32 bytes: the old word-by-word multiply-xorshift chain was ≈ 36
    /// cycles of dependent latency per id, on ≈ 4M values per fit (categorify counting, encoding,
    /// lookups); here the two halves' products are independent and the id takes two products in a
    /// row.
    @inline(__always)
    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        let n = key.count
        let seed = K0 ^ UInt64(truncatingIfNeeded: n)
        guard n > 0 else { return mum(K1, seed) }
        let p = key.baseAddress!
        @inline(__always) func w(_ o: Int) -> UInt64 { p.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian }
        if n <= 16 {
            let h = n >= 8 ? mum(w(0) ^ K1, w(n - 8) ^ seed) : mum(short(key) ^ K1, seed)
            return mum(h ^ K3, K4 ^ UInt64(truncatingIfNeeded: n))
        }
        if n <= 32 { return mum(mum(w(0) ^ K1, w(8) ^ seed) ^ K4, mum(w(n - 16) ^ K2, w(n - 8) ^ K3) ^ UInt64(truncatingIfNeeded: n)) }
        var h0 = seed, h1 = K5
        var i = 0
        while n - i > 32 {
            h0 = mum(w(i) ^ K1, w(i + 8) ^ h0)
            h1 = mum(w(i + 16) ^ K2, w(i + 24) ^ h1)
            i += 32
        }
        let a = mum(w(n - 32) ^ K1, w(n - 24) ^ h0), b = mum(w(n - 16) ^ K2, w(n - 8) ^ h1)
        return mum(a ^ K4, b ^ UInt64(truncatingIfNeeded: n))
    }

    static let K0: UInt64 = 0x9E37_79B9_7F4A_7C15
    static let K1: UInt64 = 0xA076_1D64_78BD_642F
    static let K2: UInt64 = 0xE703_7ED1_A0B4_28DB
    static let K3: UInt64 = 0x8EBC_6AF0_9C88_C6E3
    static let K4: UInt64 = 0x5899_65CC_7537_4CC3
    static let K5: UInt64 = 0x1D8E_4E27_C47D_124F

    /// The two halves of the 128-bit product `a · b`, XOR-ed.
    @inline(__always)
    static func mum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let r = a.multipliedFullWidth(by: b)
        return r.high ^ r.low
    }

}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
