import Foundation
import HerdData
import HerdTraining

/// The on-disk form of every ANN index: a small JSON header, the index's own payload, and a SHA-256
/// of everything before it.
///
/// ```
/// "HERDANN1"            8 bytes magic
/// header length         UInt64 little-endian
/// header                JSON: format_version, kind, spec, dimension, metric, count, payload_bytes
/// payload               payload_bytes bytes, layout owned by the index kind
/// SHA-256               32 bytes, over magic + length + header + payload
/// ```
///
/// Loading checks the magic, the sizes (a truncated copy is caught before hashing) and the digest,
/// so a corrupt, partial or tampered file is refused with a message instead of being searched.
public enum ANNIndexFile {
    static let magic = Array("HERDANN1".utf8)
    public static let formatVersion = 1

    public struct Header: ChecksummedHeader, Sendable, Equatable {
        public var formatVersion: Int
        public var kind: String
        public var spec: String
        public var dimension: Int
        public var metric: ANNMetric
        public var count: Int
        public var payloadBytes: Int

        enum CodingKeys: String, CodingKey {
            case formatVersion = "format_version", kind, spec, dimension, metric, count
            case payloadBytes = "payload_bytes"
        }
    }

    /// Writes `header` and the payload `body` streams (exactly `header.payloadBytes` bytes) to `url`
    /// atomically.
    static func write(to url: URL, header: Header, _ body: (PayloadWriter) throws -> Void) throws {
        try write(to: url, magic: magic, header: header, body)
    }

    /// Opens `url`, verifies it and returns its header and a reader over the payload.
    static func read(_ url: URL) throws -> (Header, PayloadReader) {
        try read(url, magic: magic, what: "Herd ANN index", rebuild: "rebuild it (herd nearline) or restore a good copy")
    }

    /// Writes `magic`, `header` and the payload `body` streams (exactly `header.payloadBytes` bytes)
    /// and the digest to `url` atomically.
    static func write<H: ChecksummedHeader>(to url: URL, magic: [UInt8], header: H, _ body: (PayloadWriter) throws -> Void) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try AtomicFile.write(to: url) { file in
            let w = PayloadWriter(file)
            try w.bytes(magic)
            let json = try JSONEncoder().encode(header)
            try w.scalar(UInt64(json.count))
            try w.bytes(Array(json))
            let before = w.written
            try body(w)
            guard w.written - before == header.payloadBytes else {
                throw ServingError("internal: \(url.lastPathComponent) payload is \(w.written - before) bytes, header says \(header.payloadBytes)")
            }
            try file.write(w.sha.finalize())
        }
    }

    /// Opens a file written by `write(to:magic:header:_:)`, verifies it and returns its header and a
    /// reader over the payload. Errors name the file, what it should be (`what`) and what to do.
    static func read<H: ChecksummedHeader>(_ url: URL, magic: [UInt8], what: String, rebuild: String) throws -> (H, PayloadReader) {
        let path = url.path
        func fail(_ why: String) -> ServingError {
            ServingError("\(path): \(why); \(rebuild)")
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw ServingError("\(path): no such file; build it with `herd nearline`")
        }
        let mapped: MappedFile
        do { mapped = try MappedFile(url: url) } catch { throw fail("cannot be read (\(error))") }
        let bytes = mapped.bytes
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else {
            throw fail(bytes.count < 16 ? "only \(bytes.count) bytes, not a \(what) (truncated?)" : "not a \(what) (wrong magic bytes)")
        }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        guard headerLength < UInt64(bytes.count) - 16 else { throw fail("the header length \(headerLength) exceeds the file (truncated)") }
        let headerEnd = 16 + Int(headerLength)
        let header: H
        do {
            header = try JSONDecoder().decode(H.self, from: Data(bytes[16..<headerEnd]))
        } catch {
            throw fail("the header is not valid JSON (\(error))")
        }
        guard header.formatVersion == H.currentVersion else {
            throw fail("format version \(header.formatVersion), this build reads \(H.currentVersion)")
        }
        let expected = headerEnd + header.payloadBytes + 32
        guard bytes.count == expected else {
            throw fail("\(bytes.count) bytes where the header announces \(expected) (\(bytes.count < expected ? "truncated or partially written" : "trailing bytes"))")
        }
        var sha = SHA256()
        sha.update(UnsafeRawBufferPointer(rebasing: bytes[0..<(expected - 32)]))
        guard sha.finalize() == Array(bytes[(expected - 32)..<expected]) else {
            throw fail("checksum mismatch: the file is corrupt or was modified after it was written")
        }
        return (header, PayloadReader(mapped, start: headerEnd, end: headerEnd + header.payloadBytes, path: path))
    }

    /// Streams payload bytes into the file and the running checksum.
    final class PayloadWriter {
        let file: FileWriter
        var sha = SHA256()
        var written = 0
        init(_ file: FileWriter) { self.file = file }

        func bytes(_ raw: UnsafeRawBufferPointer) throws {
            sha.update(raw)
            try file.write(raw)
            written += raw.count
        }
        func bytes(_ b: [UInt8]) throws { try b.withUnsafeBytes { try bytes($0) } }
        func scalar<T: FixedWidthInteger>(_ v: T) throws { try withUnsafeBytes(of: v.littleEndian) { try bytes($0) } }
        func array<T>(_ a: [T]) throws { try a.withUnsafeBytes { try bytes($0) } }
        func buffer<T>(_ a: UnsafeBufferPointer<T>) throws { try bytes(UnsafeRawBufferPointer(a)) }
    }

    /// Reads a verified payload front to back; running past its end is reported as a corrupt file.
    final class PayloadReader {
        let mapped: MappedFile
        var offset: Int
        let end: Int
        let path: String
        init(_ mapped: MappedFile, start: Int, end: Int, path: String) {
            self.mapped = mapped
            offset = start
            self.end = end
            self.path = path
        }

        func need(_ n: Int) throws {
            guard n >= 0, offset + n <= end else {
                throw ServingError("\(path): the payload is shorter than its layout requires (corrupt file); rebuild it with `herd nearline`")
            }
        }
        func scalar<T: FixedWidthInteger>(_: T.Type = T.self) throws -> T {
            try need(MemoryLayout<T>.size)
            defer { offset += MemoryLayout<T>.size }
            return T(littleEndian: mapped.bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        func array<T>(_: T.Type, count: Int) throws -> [T] {
            let n = count * MemoryLayout<T>.stride
            try need(n)
            defer { offset += n }
            return [T](unsafeUninitializedCapacity: count) { buf, initialized in
                UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: mapped.bytes[offset..<(offset + n)]))
                initialized = count
            }
        }
        func rawBytes(_ n: Int) throws -> UnsafeRawBufferPointer {
            try need(n)
            defer { offset += n }
            return UnsafeRawBufferPointer(rebasing: mapped.bytes[offset..<(offset + n)])
        }
        var isAtEnd: Bool { offset == end }
    }
}

/// The header of a checksummed file: JSON with a format version and the payload size.
protocol ChecksummedHeader: Codable {
    static var currentVersion: Int { get }
    var formatVersion: Int { get }
    var payloadBytes: Int { get }
}

extension ANNIndexFile.Header {
    static var currentVersion: Int { ANNIndexFile.formatVersion }
}
