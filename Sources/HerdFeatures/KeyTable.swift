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
        var i = 0
        while i + 8 <= n {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i += 8
        }
        while i < n {
            if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
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

    /// A fast 64-bit hash of a byte string (8 bytes per multiply-xorshift round; not
    /// cryptographic, not persisted — `hashEncode` uses MD5 for stable ids).
    @inline(__always)
    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(key.count)
        var i = 0
        let n = key.count
        while i + 8 <= n {
            h = (h ^ key.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            i += 8
        }
        if i < n {
            var tail: UInt64 = 0
            for j in i..<n { tail |= UInt64(key[j]) << UInt64((j - i) * 8) }
            h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        }
        h ^= h >> 32
        h = h &* 0xD6E8_FEB8_6659_FD93
        h ^= h >> 32
        return h
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
