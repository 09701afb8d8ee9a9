import Foundation
import HerdData
import HerdTensor

/// The binary sidecar of a fitted pipeline: its long string arrays (index and count-encoding
/// values), written next to `pipeline.fitted.json` as `pipeline.fitted.json.strings` so that
/// loading takes one read and no JSON string parsing.
///
/// ```
/// offset 0    8 bytes   magic "HERDFPS1"
/// offset 8    UInt64    byte count of the JSON file it belongs to
/// offset 16   UInt64    ContentHash of that JSON file
/// offset 24   UInt64    number of arrays A
/// offset 32   UInt64    ContentHash of bytes [48, end) of this file
/// offset 40   UInt64    byte count of this file
/// offset 48   A × 4 UInt64: the array's first and past-the-end byte in the JSON (its `[` … `]`),
///             its value count n, its UTF-8 byte count b — in document order
/// then        per array: (n + 1) UInt64 offsets (0 … b), b bytes of values back to back,
///             zero padding to a multiple of 8
/// ```
///
/// Every number is little-endian. The JSON stays complete and authoritative (serving, other
/// tools and people read it); the sidecar is a cache of it, checked on every load: the JSON's
/// length and hash must match (else it is stale — the JSON was edited or replaced), the payload
/// hash must match and every offset and range must be in bounds and ordered (else it is
/// corrupt). A missing sidecar is normal (older files, hand-written pipelines) and a stale or
/// corrupt one is reported; in all three cases the values are read from the JSON, so a sidecar
/// never changes which ids a value gets.
///
/// NOTE: on 1M RecSys rows the JSON holds ≈345k 32-character ids (16.5 MB); reading them from the
/// text took ≈0.25 s of an `--apply` run on 100k rows.
enum FittedSidecar {
    static let magic = Array("HERDFPS1".utf8)
    static let headerBytes = 48

    /// Why a sidecar was not used.
    enum Problem: Error, Equatable {
        /// Written for another version of the JSON.
        case stale
        /// Unreadable: bad magic, hash, bounds.
        case corrupt(String)
    }

    /// The sidecar of a JSON document `json` whose arrays `arrays` sit at `spliced` (document
    /// order, as `StringArrays.splice` recorded them).
    static func encode(json: UnsafeRawBufferPointer, arrays: [[String]], spliced: [(array: Int, start: Int, end: Int)]) -> Data {
        encode(json: json, entries: arrays.map { .strings($0) }, spliced: spliced)
    }

    /// `encode(json:arrays:spliced:)` with each array as a `StringArrays` entry: strings, or a
    /// lookup table whose keys in order are the values (its offsets and bytes copied whole).
    static func encode(json: UnsafeRawBufferPointer, entries: [StringArrays.Entry], spliced: [(array: Int, start: Int, end: Int)]) -> Data {
        var out: [UInt8] = []
        func put(_ x: UInt64) { withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) } }
        func put(_ x: Int) { put(UInt64(x)) }
        out += magic
        put(json.count)
        put(ContentHash.hash(json))
        put(spliced.count)
        put(0)  // payload hash, filled below
        put(0)  // file length, filled below
        func count(_ e: StringArrays.Entry) -> Int {
            switch e {
            case .strings(let s): return s.count
            case .table(let t): return t.count
            }
        }
        let byteCounts = spliced.map { s in
            switch entries[s.array] {
            case .strings(let values): return values.reduce(0) { $0 + $1.utf8.count }
            case .table(let t): return t.bytes.count
            }
        }
        for (s, b) in zip(spliced, byteCounts) {
            put(s.start)
            put(s.end)
            put(count(entries[s.array]))
            put(b)
        }
        for (s, b) in zip(spliced, byteCounts) {
            out.reserveCapacity(out.count + 8 * (count(entries[s.array]) + 1) + b + 8)
            switch entries[s.array] {
            case .strings(let values):
                var o = 0
                put(0)
                for v in values {
                    o += v.utf8.count
                    put(o)
                }
                for v in values {
                    var v = v
                    v.withUTF8 { out.append(contentsOf: $0) }
                }
            case .table(let t):
                // NOTE: [Int] offsets (0 … b) are the memory image of the little-endian UInt64s on
                // the 64-bit little-endian targets Herd supports (as `decode` reads them).
                t.offsets.withUnsafeBytes { out.append(contentsOf: $0) }
                out.append(contentsOf: t.bytes)
            }
            while out.count % 8 != 0 { out.append(0) }
        }
        let length = out.count
        withUnsafeBytes(of: UInt64(length).littleEndian) { out.replaceSubrange(40..<48, with: $0) }
        let h = out.withUnsafeBytes { ContentHash.hash(UnsafeRawBufferPointer(rebasing: $0[headerBytes...])) }
        withUnsafeBytes(of: h.littleEndian) { out.replaceSubrange(32..<40, with: $0) }
        return Data(out)
    }

    /// The arrays of `sidecar` (as lookup tables, built on both cores) and where they
    /// sit in `json`; throws `Problem` when the sidecar does not belong to `json` or is damaged.
    static func decode(_ sidecar: UnsafeRawBufferPointer, json: UnsafeRawBufferPointer) throws(Problem) -> (StringArrays, [Range<Int>]) {
        func u64(_ at: Int) -> Int { Int(truncatingIfNeeded: sidecar.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian) }
        guard sidecar.count >= headerBytes, sidecar.prefix(8).elementsEqual(magic) else { throw .corrupt("missing HERDFPS1 magic") }
        // The JSON first: a sidecar left beside an edited JSON is stale even if it is damaged too.
        guard u64(8) == json.count, UInt64(bitPattern: Int64(u64(16))) == ContentHash.hash(json) else { throw .stale }
        guard u64(40) == sidecar.count else { throw .corrupt("length \(sidecar.count) bytes, header says \(u64(40)) (truncated?)") }
        guard UInt64(bitPattern: Int64(u64(32))) == ContentHash.hash(UnsafeRawBufferPointer(rebasing: sidecar[headerBytes...])) else {
            throw .corrupt("checksum mismatch")
        }
        let count = u64(24)
        guard count >= 0, count <= (sidecar.count - headerBytes) / 32 else { throw .corrupt("array count \(count)") }
        // The table of arrays: ranges in order inside the JSON, payloads inside the file.
        var ranges: [Range<Int>] = []
        var payloads: [(n: Int, offsets: Int, bytes: Int, b: Int)] = []
        var at = headerBytes + 32 * count
        var previousEnd = 0
        for i in 0..<count {
            let e = headerBytes + 32 * i
            let start = u64(e), end = u64(e + 8), n = u64(e + 16), b = u64(e + 24)
            guard start >= previousEnd, end > start, end <= json.count, json[start] == UInt8(ascii: "["), json[end - 1] == UInt8(ascii: "]") else {
                throw .corrupt("array \(i): JSON range \(start)..<\(end) out of order or not an array")
            }
            guard n >= 0, b >= 0, n < sidecar.count / 8, b <= sidecar.count, at + 8 * (n + 1) + b <= sidecar.count else {
                throw .corrupt("array \(i): \(n) values of \(b) bytes run past the end")
            }
            payloads.append((n, at, at + 8 * (n + 1), b))
            at += 8 * (n + 1) + b
            at = (at + 7) / 8 * 8
            previousEnd = end
            ranges.append(start..<end)
        }
        guard at == sidecar.count else { throw .corrupt("\(sidecar.count - at) bytes after the last array") }

        // Per array (both cores, largest first): copy out the offsets (checked) and bytes, build
        // the lookup table. NOTE: no string is made here (`StringIndex.values` makes them when
        // asked); a repeated value makes strings instead, for `StringIndex` to report it.
        var entries = [StringArrays.Entry?](repeating: nil, count: count)
        var problems = [String?](repeating: nil, count: count)
        let order = (0..<count).sorted { payloads[$0].n > payloads[$1].n }
        entries.withUnsafeMutableBufferPointer { eOut in
            problems.withUnsafeMutableBufferPointer { pOut in
                let eo = UncheckedSendable(eOut), po = UncheckedSendable(pOut)
                Parallel.forEach(order.count) { t in
                    let i = order[t], p = payloads[i]
                    // NOTE: Int64 little-endian offsets are the memory image of [Int] on the
                    // 64-bit little-endian targets Herd supports (as in TableFile).
                    let offsets = [Int](unsafeUninitializedCapacity: p.n + 1) { o, made in
                        UnsafeMutableRawPointer(o.baseAddress!).copyMemory(from: sidecar.baseAddress! + p.offsets, byteCount: 8 * (p.n + 1))
                        made = p.n + 1
                    }
                    var ordered = offsets[0] == 0 && offsets[p.n] == p.b
                    if ordered { for k in 0..<p.n where offsets[k] > offsets[k + 1] { ordered = false; break } }
                    guard ordered else {
                        po.value[i] = "array \(i): offsets out of order"
                        return
                    }
                    let bytes = Array(UnsafeRawBufferPointer(rebasing: sidecar[p.bytes..<(p.bytes + p.b)]))
                    if let table = KeyTable(offsets: offsets, bytes: bytes) {
                        eo.value[i] = .table(table)
                    } else {
                        eo.value[i] = .strings((0..<p.n).map { String(decoding: bytes[offsets[$0]..<offsets[$0 + 1]], as: UTF8.self) })
                    }
                }
            }
        }
        if let bad = problems.compactMap({ $0 }).first { throw .corrupt(bad) }
        return (StringArrays(entries: entries.map { $0! }), ranges)
    }

    /// `json` with each of `ranges` replaced by the placeholder of its array (for `JSONDecoder`
    /// with the stash of `decode`).
    static func replacingArrays(_ json: UnsafeRawBufferPointer, _ ranges: [Range<Int>]) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(json.count - ranges.reduce(0) { $0 + $1.count } + 32 * ranges.count)
        var copied = 0
        for (i, r) in ranges.enumerated() {
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: json[copied..<r.lowerBound]))
            StringArrays.appendEscaped(StringArrays.prefix + String(i), to: &out)
            copied = r.upperBound
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: json[copied...]))
        return Data(out)
    }
}

/// A fast 64-bit content hash (not cryptographic): XXH64 with seed 0 (four lanes over 32-byte
/// stripes, then the tail, then an avalanche), several GB/s. Detects edits and damage; it is
/// persisted in sidecars, so it must not change (tests pin it to XXH64's published values).
enum ContentHash {
    static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
    @inline(__always) static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 { rotl(acc &+ input &* p2, 31) &* p1 }
    @inline(__always) static func merge(_ acc: UInt64, _ lane: UInt64) -> UInt64 { (acc ^ round(0, lane)) &* p1 &+ p4 }

    static func hash(_ b: UnsafeRawBufferPointer) -> UInt64 {
        let n = b.count
        var i = 0
        var h: UInt64
        if n >= 32 {
            var v1 = p1 &+ p2, v2 = p2, v3: UInt64 = 0, v4 = 0 &- p1
            while i + 32 <= n {
                v1 = round(v1, b.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian)
                v2 = round(v2, b.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self).littleEndian)
                v3 = round(v3, b.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self).littleEndian)
                v4 = round(v4, b.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self).littleEndian)
                i += 32
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            h = merge(merge(merge(merge(h, v1), v2), v3), v4)
        } else {
            h = p5
        }
        h = h &+ UInt64(n)
        while i + 8 <= n {
            h ^= round(0, b.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian)
            h = rotl(h, 27) &* p1 &+ p4
            i += 8
        }
        if i + 4 <= n {
            h ^= UInt64(b.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian) &* p1
            h = rotl(h, 23) &* p2 &+ p3
            i += 4
        }
        while i < n {
            h ^= UInt64(b[i]) &* p5
            h = rotl(h, 11) &* p1
            i += 1
        }
        h ^= h >> 33
        h = h &* p2
        h ^= h >> 29
        h = h &* p3
        h ^= h >> 32
        return h
    }
}
