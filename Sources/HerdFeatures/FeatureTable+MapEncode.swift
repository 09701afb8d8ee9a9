import Foundation
import HerdTensor

extension FeatureTable {
    /// Friesian `encode_string(columns, {value: id})` with a fixed dictionary: each string value
    /// becomes `mapping[value]` (int64); a null or a value missing from `mapping` becomes
    /// `defaultID`. Int64 columns are looked up by their decimal text.
    ///
    /// The RecSys 2021 media and tweet-type maps are such dictionaries: the categories are known
    /// in advance, so their ids do not depend on the data (unlike `categorify`).
    public func mapEncode(_ columns: [String], mapping: [String: Int64], defaultID: Int64 = 0) throws -> FeatureTable {
        var out = self
        for name in columns {
            let c = try column(name)
            guard c.type == .string || c.type == .int64 else {
                throw FeatureError.wrongType(column: name, type: c.type, expected: "string or int64")
            }
            if case .string(let strings) = c.data, let small = SmallKeyMap(mapping) {
                // NOTE: few short keys (the RecSys media, tweet-type and boolean maps): each value
                // read as two masked words and compared in a small table, no byte-slice hashing.
                let ids: [Int64] = strings.offsets.withUnsafeBufferPointer { o in
                    strings.bytes.withUnsafeBufferPointer { b in
                        FeatureTable.rowParallel(rowCount) { rows, ids in
                            for r in rows { ids[r] = c.isNull(r) ? defaultID : small.id(b, o[r], o[r + 1]) ?? defaultID }
                        }
                    }
                }
                out = try out.with(name, Column(type: .int64, data: .int64(ids)))
                continue
            }
            // NOTE: values are looked up as bytes in place (no String per row), rows split across workers.
            var keys = KeyTable(capacity: mapping.count)
            var idOfKey: [Int64] = []
            for (value, id) in mapping {
                var v = value
                v.withUTF8 { _ = keys.insert(UnsafeRawBufferPointer($0)) }
                idOfKey.append(id)
            }
            var ids = [Int64](repeating: defaultID, count: rowCount)
            ids.withUnsafeMutableBufferPointer { buf in
                let b = UncheckedSendable(buf)
                let ranges = Parallel.ranges(rowCount, parts: Parallel.threads)
                Parallel.forEach(ranges.count) { p in
                    forEachText(c, rows: ranges[p]) { r, bytes in
                        if let k = keys.find(bytes) { b.value[r] = idOfKey[k] }
                    }
                }
            }
            out = try out.with(name, Column(type: .int64, data: .int64(ids)))
        }
        return out
    }
}

/// A map of at most `maxKeys` byte strings of at most 16 bytes each to ids, looked up by value
/// words: a value is its length and its bytes as two little-endian words, zero-padded.
///
/// ```
/// slots   [128]  (lo, hi, length, id); length -1 = empty; linear probing from `slot(lo, hi, n)`
/// ```
struct SmallKeyMap {
    static let maxKeys = 64
    private var lo = [UInt64](repeating: 0, count: 128)
    private var hi = [UInt64](repeating: 0, count: 128)
    private var length = [Int](repeating: -1, count: 128)
    private var ids = [Int64](repeating: 0, count: 128)

    /// nil when `mapping` has more than `maxKeys` keys or one longer than 16 bytes.
    init?(_ mapping: [String: Int64]) {
        guard mapping.count <= SmallKeyMap.maxKeys else { return nil }
        for (key, id) in mapping {
            let bytes = Array(key.utf8)
            guard bytes.count <= 16 else { return nil }
            let (a, b) = bytes.withUnsafeBufferPointer { SmallKeyMap.words($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, 0, bytes.count, end: bytes.count) }
            var s = SmallKeyMap.slot(a, b, bytes.count)
            while length[s] >= 0 { s = (s + 1) & 127 }
            lo[s] = a
            hi[s] = b
            length[s] = bytes.count
            ids[s] = id
        }
    }

    @inline(__always)
    static func slot(_ a: UInt64, _ b: UInt64, _ n: Int) -> Int {
        Int(truncatingIfNeeded: ((a &* 0x9E37_79B9_7F4A_7C15) ^ (b &* 0xBF58_476D_1CE4_E5B9) ^ UInt64(truncatingIfNeeded: n)) >> 57)
    }

    /// Bytes `from ..< from + n` (n ≤ 16) of `p` as two zero-padded little-endian words; reads
    /// whole words only when they end before `end` (the buffer's size), else byte by byte.
    @inline(__always)
    static func words(_ p: UnsafePointer<UInt8>, _ from: Int, _ n: Int, end: Int) -> (UInt64, UInt64) {
        if from + 16 <= end {
            let raw = UnsafeRawPointer(p + from)
            let a = raw.loadUnaligned(as: UInt64.self).littleEndian, b = raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
            @inline(__always) func mask(_ k: Int) -> UInt64 { k >= 8 ? ~0 : k <= 0 ? 0 : (1 << UInt64(8 * k)) - 1 }
            return (a & mask(n), b & mask(n - 8))
        }
        var a: UInt64 = 0, b: UInt64 = 0
        for j in 0..<n {
            if j < 8 { a |= UInt64(p[from + j]) << UInt64(8 * j) } else { b |= UInt64(p[from + j]) << UInt64(8 * (j - 8)) }
        }
        return (a, b)
    }

    /// The id of the value `bytes[from ..< to]`, or nil.
    @inline(__always)
    func id(_ bytes: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Int64? {
        let n = to - from
        guard n <= 16 else { return nil }
        let (a, b) = n == 0 ? (0, 0) : SmallKeyMap.words(bytes.baseAddress!, from, n, end: bytes.count)
        var s = SmallKeyMap.slot(a, b, n)
        while true {
            let len = length[s]
            if len < 0 { return nil }
            if len == n && lo[s] == a && hi[s] == b { return ids[s] }
            s = (s + 1) & 127
        }
    }
}
