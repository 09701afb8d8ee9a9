import Foundation

/// Byte-level number parsing for the CSV reader and `cast` (no `String` per field).
enum NumberParsing {
    /// An optional sign and 1–19 decimal digits; `nil` otherwise (including overflow).
    @inline(__always)
    static func int64(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
        guard n > 0 else { return nil }
        var i = 0
        var negative = false
        if p[0] == 45 || p[0] == 43 {  // - +
            negative = p[0] == 45
            i = 1
        }
        guard i < n, n - i <= 19 else { return n - i > 19 ? slowInt64(p, n) : nil }
        var v: Int64 = 0
        // NOTE: eight digits per step (timestamps have ten): one load, one check, three
        // multiplies, instead of a multiply-add chain per digit. Wrapping arithmetic gives the
        // same value modulo 2^64 as the digit loop, so the overflow test below still holds.
        while n - i >= 8 {
            guard let eight = eightDigits(UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)) else { return nil }
            v = v &* 100_000_000 &+ Int64(eight)
            i += 8
        }
        while i < n {
            let d = p[i] &- 48
            guard d < 10 else { return nil }
            v = v &* 10 &+ Int64(d)
            i += 1
        }
        // 19 digits can exceed Int64.max: the wrapped value is then negative.
        if v < 0 { return negative && v == .min ? v : nil }
        return negative ? -v : v
    }

    /// The value of 8 ASCII digits loaded little-endian (first digit in the low byte), or nil
    /// when a byte is not a digit.
    @inline(__always)
    static func eightDigits(_ word: UInt64) -> UInt64? {
        // Each byte 0x30...0x39: high nibble 3, and adding 6 does not carry into the high nibble.
        let highNibbles = (word & 0xF0F0_F0F0_F0F0_F0F0) | (((word &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4)
        guard highNibbles == 0x3333_3333_3333_3333 else { return nil }
        var x = word & 0x0F0F_0F0F_0F0F_0F0F
        x = (x &* (10 << 8 + 1)) >> 8 & 0x00FF_00FF_00FF_00FF         // pairs: 10·d0 + d1
        x = (x &* (100 << 16 + 1)) >> 16 & 0x0000_FFFF_0000_FFFF      // quads
        return (x &* (10000 << 32 + 1)) >> 32                          // all eight
    }

    private static func slowInt64(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int64? {
        Int64(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
    }

    /// A decimal or scientific number (`1`, `-2.5`, `1e-3`, `nan`, `inf`) as `strtod` reads it,
    /// with the whole field consumed; `nil` otherwise.
    @inline(__always)
    static func double(_ p: UnsafePointer<UInt8>, _ n: Int) -> Double? {
        guard n > 0 else { return nil }
        // Fast path: [-]digits[.digits] with at most 15 significant digits is exact in Double.
        var i = 0
        let negative = p[0] == 45
        if negative || p[0] == 43 { i = 1 }
        var mantissa: Int64 = 0
        var digits = 0
        var fraction = 0
        var seenDot = false
        var simple = i < n
        while i < n {
            let c = p[i]
            if c == 46 {  // .
                if seenDot { simple = false; break }
                seenDot = true
            } else if c &- 48 < 10 {
                mantissa = mantissa * 10 + Int64(c &- 48)
                digits += 1
                if seenDot { fraction += 1 }
                if digits > 15 { simple = false; break }
            } else {
                simple = false
                break
            }
            i += 1
        }
        if simple && digits > 0 {
            let v = Double(mantissa) / powersOfTen[fraction]
            return negative ? -v : v
        }
        return slowDouble(p, n)
    }

    private static let powersOfTen: [Double] = (0...22).map { pow(10.0, Double($0)) }

    private static func slowDouble(_ p: UnsafePointer<UInt8>, _ n: Int) -> Double? {
        guard n < 64 else { return Double(String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)) }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buf in
            for k in 0..<n { buf[k] = CChar(bitPattern: p[k]) }
            buf[n] = 0
            // strtod skips leading blanks; a field with them is not a number.
            if n > 0 && (buf[0] == 32 || buf[0] == 9) { return nil }
            var end: UnsafeMutablePointer<CChar>?
            let v = strtod(buf.baseAddress!, &end)
            return end == buf.baseAddress! + n ? v : nil
        }
    }
}
