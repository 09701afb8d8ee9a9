/// An open-addressing hash map from `UInt32` keys (raw categorical ids) to values, with linear
/// probing and a multiplicative (Fibonacci) hash.
///
/// NOTE: vocabulary counting and lookup run once per categorical field of every row; Swift's
/// `Dictionary` hashes with SipHash (DoS-resistant, ≈ 16 % of preprocessing time in a profile).
/// Raw ids come from the data, not an adversary, so a cheap hash is enough here.
struct UInt32HashMap<Value> {
    private(set) var keys: [UInt32]
    private(set) var values: [Value?]
    private(set) var count = 0
    private var shift: UInt32

    /// A map that holds `capacity` entries before growing.
    init(capacity: Int = 16) {
        var bits: UInt32 = 4
        while (1 << bits) < capacity * 2 { bits += 1 }
        keys = [UInt32](repeating: 0, count: 1 << bits)
        values = [Value?](repeating: nil, count: 1 << bits)
        shift = 32 - bits
    }

    @inline(__always)
    private func slot(_ key: UInt32) -> Int { Int((key &* 0x9E37_79B1) >> shift) }

    /// The value for `key`, or nil.
    @inline(__always)
    func value(for key: UInt32) -> Value? {
        let mask = keys.count - 1
        var i = slot(key)
        while let v = values[i] {
            if keys[i] == key { return v }
            i = (i + 1) & mask
        }
        return nil
    }

    /// Sets `key`'s value to `update(old)` (`old` nil when absent).
    @inline(__always)
    mutating func update(_ key: UInt32, _ update: (Value?) -> Value) {
        if (count + 1) * 2 > keys.count { grow() }
        let mask = keys.count - 1
        var i = slot(key)
        while let v = values[i] {
            if keys[i] == key { values[i] = update(v); return }
            i = (i + 1) & mask
        }
        keys[i] = key
        values[i] = update(nil)
        count += 1
    }

    /// The value for `key`; when absent, stores `value` and returns it with `inserted` true.
    @inline(__always)
    mutating func value(for key: UInt32, orInsert value: Value) -> (value: Value, inserted: Bool) {
        if (count + 1) * 2 > keys.count { grow() }
        let mask = keys.count - 1
        var i = slot(key)
        while let v = values[i] {
            if keys[i] == key { return (v, false) }
            i = (i + 1) & mask
        }
        keys[i] = key
        values[i] = value
        count += 1
        return (value, true)
    }

    /// Every (key, value) pair, in slot order.
    var entries: [(key: UInt32, value: Value)] {
        var out: [(key: UInt32, value: Value)] = []
        out.reserveCapacity(count)
        for i in keys.indices { if let v = values[i] { out.append((keys[i], v)) } }
        return out
    }

    private mutating func grow() {
        let old = entries
        self = UInt32HashMap(capacity: keys.count)
        for (k, v) in old { update(k) { _ in v } }
    }
}

extension UInt32HashMap: Sendable where Value: Sendable {}
