import Foundation
import HerdData

/// Streaming SHA-256 (FIPS 180-4), used to checksum exported models and checkpoints.
///
/// Feed bytes with `update` in pieces of any size, then read the digest with `finalize()` or
/// `finalizeHex()`. Finalizing does not consume the hasher: more bytes may follow and a later
/// digest covers everything fed so far.
///
/// NOTE: hand-written because Foundation on Linux has no hash functions and swift-crypto is too slow
/// to build here. Whole 64-byte blocks are compressed straight from the caller's buffer (no copy);
/// only a partial block at either end goes through the internal 64-byte buffer.
public struct SHA256: Sendable {
    /// The eight working hash words H0…H7.
    private var h: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
        0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19
    )
    /// A partial block (64 bytes) waiting for more input.
    private var pending: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    /// Bytes held in `pending` (0..<64).
    private var pendingCount = 0
    /// Bytes fed so far.
    public private(set) var byteCount: UInt64 = 0

    public init() {}

    /// Feeds `bytes`.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var n = bytes.count
        byteCount &+= UInt64(n)
        if pendingCount > 0 {
            let take = min(64 - pendingCount, n)
            let offset = pendingCount
            withUnsafeMutableBytes(of: &pending) { buf in
                (buf.baseAddress! + offset).copyMemory(from: p, byteCount: take)
            }
            pendingCount += take
            p += take
            n -= take
            if pendingCount < 64 { return }
            var block = pending
            withUnsafeBytes(of: &block) { Self.compress(&h, $0.baseAddress!, blocks: 1) }
            pendingCount = 0
        }
        let whole = n / 64
        if whole > 0 {
            Self.compress(&h, p, blocks: whole)
            p += whole * 64
            n -= whole * 64
        }
        if n > 0 {
            withUnsafeMutableBytes(of: &pending) { $0.baseAddress!.copyMemory(from: p, byteCount: n) }
            pendingCount = n
        }
    }

    /// Feeds the bytes of `data`.
    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { update($0) }
    }

    /// Feeds `bytes`.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Feeds the UTF-8 encoding of `string`.
    public mutating func update(_ string: String) {
        var s = string
        s.withUTF8 { update(UnsafeRawBufferPointer($0)) }
    }

    /// The 32-byte digest of everything fed so far.
    public func finalize() -> [UInt8] {
        var copy = self
        let bitLength = byteCount &* 8
        // Padding: 0x80, zeros up to 56 mod 64, then the message length in bits, big-endian.
        var tail = [UInt8](repeating: 0, count: pendingCount < 56 ? 64 - pendingCount : 128 - pendingCount)
        tail[0] = 0x80
        withUnsafeBytes(of: bitLength.bigEndian) { tail.replaceSubrange(tail.count - 8..<tail.count, with: $0) }
        copy.update(tail)
        precondition(copy.pendingCount == 0)
        let words = [copy.h.0, copy.h.1, copy.h.2, copy.h.3, copy.h.4, copy.h.5, copy.h.6, copy.h.7]
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for w in words { withUnsafeBytes(of: w.bigEndian) { out.append(contentsOf: $0) } }
        return out
    }

    /// The digest of everything fed so far as 64 lowercase hex digits.
    public func finalizeHex() -> String {
        let digits = Array("0123456789abcdef".utf8)
        var chars: [UInt8] = []
        chars.reserveCapacity(64)
        for b in finalize() {
            chars.append(digits[Int(b >> 4)])
            chars.append(digits[Int(b & 15)])
        }
        return String(decoding: chars, as: UTF8.self)
    }

    /// Hex digest of `bytes`.
    public static func hex(of bytes: UnsafeRawBufferPointer) -> String {
        var s = SHA256()
        s.update(bytes)
        return s.finalizeHex()
    }

    /// Hex digest of `data`.
    public static func hex(of data: Data) -> String {
        data.withUnsafeBytes { hex(of: $0) }
    }

    /// Hex digest of the file at `url`, read through a memory map (no copy into the heap).
    public static func hex(ofFileAt url: URL) throws -> String {
        let file = try MappedFile(url: url)
        file.adviseSequential()
        return hex(of: file.bytes)
    }

    // MARK: - Compression

    /// Round constants: the first 32 bits of the fractional parts of the cube roots of the first
    /// 64 primes.
    private static let k: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    @inline(__always)
    private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x &>> n) | (x &<< (32 &- n)) }

    /// One round with the eight working variables passed in rotated order, so that an unrolled
    /// group of eight needs no register shuffling: only `d` and `h` change.
    ///
    /// NOTE: `Ch` and `Maj` use their three-operation forms (`g ^ (e & (f ^ g))`,
    /// `(a & b) | (c & (a | b))`); with the unrolling this is ~15% faster than the textbook loop.
    @inline(__always)
    private static func round(
        _ a: UInt32, _ b: UInt32, _ c: UInt32, _ d: inout UInt32,
        _ e: UInt32, _ f: UInt32, _ g: UInt32, _ h: inout UInt32, _ kw: UInt32
    ) {
        let t1 = h &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ (g ^ (e & (f ^ g))) &+ kw
        d &+= t1
        h = t1 &+ (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) | (c & (a | b)))
    }

    /// Compresses `blocks` consecutive 64-byte blocks starting at `p` into `state`.
    private static func compress(
        _ state: inout (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32),
        _ p: UnsafeRawPointer, blocks: Int
    ) {
        k.withUnsafeBufferPointer { kb in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { wb in
                let k = kb.baseAddress!, w = wb.baseAddress!
                var (h0, h1, h2, h3, h4, h5, h6, h7) = state
                for block in 0..<blocks {
                    let base = p + block &* 64
                    for t in 0..<16 {
                        w[t] = UInt32(bigEndian: base.loadUnaligned(fromByteOffset: t &* 4, as: UInt32.self))
                    }
                    for t in 16..<64 {
                        let x = w[t &- 15], y = w[t &- 2]
                        let s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x &>> 3)
                        let s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y &>> 10)
                        w[t] = w[t &- 16] &+ s0 &+ w[t &- 7] &+ s1
                    }
                    var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, hh = h7
                    var t = 0
                    while t < 64 {
                        round(a, b, c, &d, e, f, g, &hh, k[t] &+ w[t])
                        round(hh, a, b, &c, d, e, f, &g, k[t &+ 1] &+ w[t &+ 1])
                        round(g, hh, a, &b, c, d, e, &f, k[t &+ 2] &+ w[t &+ 2])
                        round(f, g, hh, &a, b, c, d, &e, k[t &+ 3] &+ w[t &+ 3])
                        round(e, f, g, &hh, a, b, c, &d, k[t &+ 4] &+ w[t &+ 4])
                        round(d, e, f, &g, hh, a, b, &c, k[t &+ 5] &+ w[t &+ 5])
                        round(c, d, e, &f, g, hh, a, &b, k[t &+ 6] &+ w[t &+ 6])
                        round(b, c, d, &e, f, g, hh, &a, k[t &+ 7] &+ w[t &+ 7])
                        t &+= 8
                    }
                    h0 &+= a
                    h1 &+= b
                    h2 &+= c
                    h3 &+= d
                    h4 &+= e
                    h5 &+= f
                    h6 &+= g
                    h7 &+= hh
                }
                state = (h0, h1, h2, h3, h4, h5, h6, h7)
            }
        }
    }
}
