/// MD5 (RFC 1321) of short byte strings, for `hashEncode`'s stable bucket ids.
///
/// NOTE: MD5 rather than a faster hash because Friesian's `hash_encode` uses
/// `int(md5(str(x)).hexdigest(), 16) % bins`: the same bucket for the same value, in Herd, in
/// Friesian and across releases. Not used for anything security-related.
enum MD5 {
    private static let s: [UInt32] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
        5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
        4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
        6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ]
    private static let k: [UInt32] = (0..<64).map { i in
        UInt32(truncatingIfNeeded: Int64((abs(sin(Double(i + 1))) * 4_294_967_296.0).rounded(.down)))
    }

    /// The 16-byte digest of `message`.
    static func digest(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        let (a, b, c, d) = words(message)
        var out: [UInt8] = []
        for v in [a, b, c, d] { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> UInt32(i * 8))) } }
        return out
    }

    /// The digest as its four little-endian state words (no heap allocation).
    static func words(_ message: UnsafeRawBufferPointer) -> (UInt32, UInt32, UInt32, UInt32) {
        var a0: UInt32 = 0x6745_2301, b0: UInt32 = 0xEFCD_AB89, c0: UInt32 = 0x98BA_DCFE, d0: UInt32 = 0x1032_5476
        let n = message.count
        let total = (n + 8) / 64 * 64 + 64
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { block in
            k.withUnsafeBufferPointer { k in
                s.withUnsafeBufferPointer { s in
                    var offset = 0
                    while offset < total {
                        // The 64-byte block: message bytes, then 0x80, zeros, the bit length (LE).
                        for i in 0..<64 {
                            let j = offset + i
                            if j < n { block[i] = message[j] } else if j == n { block[i] = 0x80 } else if j >= total - 8 {
                                block[i] = UInt8(truncatingIfNeeded: (UInt64(n) &* 8) >> UInt64((j - (total - 8)) * 8))
                            } else { block[i] = 0 }
                        }
                        let m = UnsafeRawPointer(block.baseAddress!)
                        var a = a0, b = b0, c = c0, d = d0
                        for i in 0..<64 {
                            var f: UInt32
                            let g: Int
                            switch i {
                            case 0..<16: f = (b & c) | (~b & d); g = i
                            case 16..<32: f = (d & b) | (~d & c); g = (5 * i + 1) & 15
                            case 32..<48: f = b ^ c ^ d; g = (3 * i + 5) & 15
                            default: f = c ^ (b | ~d); g = (7 * i) & 15
                            }
                            f = f &+ a &+ k[i] &+ UInt32(littleEndian: m.loadUnaligned(fromByteOffset: g * 4, as: UInt32.self))
                            a = d
                            d = c
                            c = b
                            b = b &+ ((f << s[i]) | (f >> (32 - s[i])))
                        }
                        a0 = a0 &+ a; b0 = b0 &+ b; c0 = c0 &+ c; d0 = d0 &+ d
                        offset += 64
                    }
                    return (a0, b0, c0, d0)
                }
            }
        }
    }

    /// The digest read as a big-endian 128-bit integer (Python's `int(hexdigest, 16)`), modulo
    /// `m` (1 ≤ m < 2^55).
    static func bucket(_ message: UnsafeRawBufferPointer, _ m: UInt64) -> UInt64 {
        let (a, b, c, d) = words(message)
        var r: UInt64 = 0
        for v in [a, b, c, d] {
            for i in 0..<4 { r = (r << 8 | UInt64(UInt8(truncatingIfNeeded: v >> UInt32(i * 8)))) % m }
        }
        return r
    }
}

import Foundation
