/// An open-addressing hash set of byte strings, numbering keys densely in insertion order.
///
/// ```
/// slots      [capacity]  Int32: -1 empty, else the key number (linear probing; capacity 2^k)
/// hashes     [keys]      UInt64 hash of each key (rehash without rereading bytes)
/// offsets    [keys + 1]  key k is bytes[offsets[k] ..< offsets[k + 1]]
/// bytes                  the keys back to back
/// ```
///
/// NOTE: the one hashing structure behind categorify (counting values), encode (lookup),
/// groupBy / dropDuplicates / join (row keys serialised by `Column.appendKey`): byte slices are
/// hashed and compared in place, so no `String` or array is allocated per row.
struct KeyTable: Sendable {
    private(set) var slots: [Int32]
    private(set) var hashes: [UInt64] = []
    private(set) var offsets: [Int] = [0]
    private(set) var bytes: [UInt8] = []
    private var mask: Int

    init(capacity: Int = 16) {
        var c = 16
        while c < capacity * 2 { c <<= 1 }
        slots = [Int32](repeating: -1, count: c)
        mask = c - 1
    }

    var count: Int { hashes.count }

    func key(_ k: Int) -> ArraySlice<UInt8> { bytes[offsets[k]..<offsets[k + 1]] }

    /// The number of `key`, inserting it when new.
    @inline(__always)
    mutating func insert(_ key: UnsafeRawBufferPointer) -> (index: Int, inserted: Bool) {
        let h = KeyTable.hash(key)
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let k = Int(slots[s])
            if k < 0 { break }
            if hashes[k] == h && equal(k, key) { return (k, false) }
            s = (s + 1) & mask
        }
        let k = hashes.count
        slots[s] = Int32(k)
        hashes.append(h)
        if key.count > 0 { bytes.append(contentsOf: key.assumingMemoryBound(to: UInt8.self)) }
        offsets.append(bytes.count)
        if hashes.count * 2 > slots.count { grow() }
        return (k, true)
    }

    /// The number of `key`, or nil.
    @inline(__always)
    func find(_ key: UnsafeRawBufferPointer) -> Int? {
        let h = KeyTable.hash(key)
        var s = Int(truncatingIfNeeded: h) & mask
        while true {
            let k = Int(slots[s])
            if k < 0 { return nil }
            if hashes[k] == h && equal(k, key) { return k }
            s = (s + 1) & mask
        }
    }

    @inline(__always)
    private func equal(_ k: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let lo = offsets[k], n = offsets[k + 1] - lo
        guard n == key.count else { return false }
        if n == 0 { return true }
        return bytes.withUnsafeBytes { memcmp($0.baseAddress! + lo, key.baseAddress!, n) == 0 }
    }

    private mutating func grow() {
        let c = slots.count * 2
        slots = [Int32](repeating: -1, count: c)
        mask = c - 1
        for (k, h) in hashes.enumerated() {
            var s = Int(truncatingIfNeeded: h) & mask
            while slots[s] >= 0 { s = (s + 1) & mask }
            slots[s] = Int32(k)
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
