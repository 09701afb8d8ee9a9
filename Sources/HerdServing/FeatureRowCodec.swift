import Foundation
import HerdFeatures

/// The compact binary form of one feature row (the Redis value / embedded store entry).
///
/// ```
/// version      UInt8 (1)
/// fingerprint  UInt32 LE, the schema's (rows written with another schema are refused on read)
/// per field    UInt8 0 = null | 1 = present, then the value:
///              int64  zig-zag varint        double  8 bytes, IEEE bits LE (exact)
///              string varint length + UTF-8 list    varint count + elements as above
/// ```
enum FeatureRowCodec {
    static let version: UInt8 = 1

    /// Encodes row `row` of `columns` (in `schema.fields` order).
    static func encode(_ columns: [Column], row: Int, fingerprint: UInt32, into out: inout [UInt8]) {
        out.removeAll(keepingCapacity: true)
        out.append(version)
        withUnsafeBytes(of: fingerprint.littleEndian) { out.append(contentsOf: $0) }
        for c in columns {
            if c.isNull(row) {
                out.append(0)
                continue
            }
            out.append(1)
            encode(c.data, row, into: &out)
        }
    }

    private static func encode(_ data: ColumnData, _ i: Int, into out: inout [UInt8]) {
        switch data {
        case .int64(let v): varint(UInt64(bitPattern: (v[i] << 1) ^ (v[i] >> 63)), &out)
        case .double(let v): withUnsafeBytes(of: v[i].bitPattern.littleEndian) { out.append(contentsOf: $0) }
        case .string(let s):
            s.withBytes(i) { b in
                varint(UInt64(b.count), &out)
                out.append(contentsOf: b)
            }
        case .list(let offsets, let inner):
            varint(UInt64(offsets[i + 1] - offsets[i]), &out)
            for e in offsets[i]..<offsets[i + 1] { encode(inner, e, into: &out) }
        }
    }

    private static func varint(_ x: UInt64, _ out: inout [UInt8]) {
        var v = x
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    /// Decodes a row encoded against `schema`; `what` names it in errors (`redis key herd:user:7`).
    ///
    /// NOTE: `what` is an autoclosure: the name is built only when the row is refused (formatting
    /// it for every row was ~4 % of a canK-200 request).
    static func decode(_ bytes: UnsafeRawBufferPointer, schema: FeatureSchema, fingerprint: UInt32, what: @autoclosure () -> String) throws -> [Value] {
        var p = 0
        func fail(_ why: String) -> ServingError { ServingError("\(what()): \(why); re-run `herd nearline` to rewrite the features") }
        func byte() throws -> UInt8 {
            guard p < bytes.count else { throw fail("the row is truncated") }
            defer { p += 1 }
            return bytes[p]
        }
        func varint() throws -> UInt64 {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                let b = try byte()
                guard shift < 64 else { throw fail("a malformed varint") }
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return v }
                shift += 7
            }
        }
        func value(_ type: ColumnType) throws -> Value {
            switch type {
            case .int64:
                let z = try varint()
                return .int(Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1))))
            case .double:
                guard p + 8 <= bytes.count else { throw fail("the row is truncated") }
                defer { p += 8 }
                return .double(Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: p, as: UInt64.self))))
            case .string:
                let n = Int(try varint())
                guard n >= 0, p + n <= bytes.count else { throw fail("the row is truncated") }
                defer { p += n }
                return .string(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[p..<(p + n)]), as: UTF8.self))
            case .int64List, .doubleList, .stringList:
                let n = Int(try varint())
                guard n <= bytes.count else { throw fail("a list length beyond the row") }
                return .list(try (0..<n).map { _ in try value(type.element!) })
            }
        }
        guard try byte() == version else { throw fail("unknown row format version") }
        guard p + 4 <= bytes.count else { throw fail("the row is truncated") }
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: p, as: UInt32.self))
        p += 4
        guard stored == fingerprint else { throw fail("the row was written with a different schema") }
        var out: [Value] = []
        out.reserveCapacity(schema.fields.count)
        for f in schema.fields {
            out.append(try byte() == 0 ? .null : try value(f.type))
        }
        guard p == bytes.count else { throw fail("\(bytes.count - p) unexpected trailing bytes") }
        return out
    }

    /// `decode` for a schema whose fields are all int64 or double (`ScalarRows.fits`): writes field
    /// `f`'s value (the int64, or the double's IEEE bits) to `bits[f]` and whether it is non-null to
    /// `present[f]`, instead of building a `[Value]`. `isDouble[f]`: field `f` is a double. Refuses
    /// what `decode` refuses, with the same messages.
    static func decodeScalars(_ bytes: UnsafeRawBufferPointer, isDouble: UnsafeBufferPointer<Bool>, fingerprint: UInt32,
                              bits: UnsafeMutablePointer<UInt64>, present: UnsafeMutablePointer<Bool>,
                              what: @autoclosure () -> String) throws {
        let count = bytes.count
        var p = 0
        func fail(_ why: String) -> ServingError { ServingError("\(what()): \(why); re-run `herd nearline` to rewrite the features") }
        guard count >= 1 else { throw fail("the row is truncated") }
        guard bytes[0] == version else { throw fail("unknown row format version") }
        p = 1
        guard p + 4 <= count else { throw fail("the row is truncated") }
        let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: p, as: UInt32.self))
        p += 4
        guard stored == fingerprint else { throw fail("the row was written with a different schema") }
        for f in 0..<isDouble.count {
            guard p < count else { throw fail("the row is truncated") }
            let tag = bytes[p]
            p += 1
            guard tag != 0 else {
                present[f] = false
                continue
            }
            present[f] = true
            if isDouble[f] {
                guard p + 8 <= count else { throw fail("the row is truncated") }
                bits[f] = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: p, as: UInt64.self))
                p += 8
            } else {
                var v: UInt64 = 0, shift: UInt64 = 0
                while true {
                    guard p < count else { throw fail("the row is truncated") }
                    let b = bytes[p]
                    p += 1
                    guard shift < 64 else { throw fail("a malformed varint") }
                    v |= UInt64(b & 0x7F) << shift
                    if b < 0x80 { break }
                    shift += 7
                }
                bits[f] = UInt64(bitPattern: Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1))))
            }
        }
        guard p == count else { throw fail("\(count - p) unexpected trailing bytes") }
    }
}
