import Foundation
import HerdTensor

/// The safetensors format (Hugging Face), written and read exactly as its specification states:
///
/// ```
/// [8 bytes]  N, the header length, unsigned little-endian
/// [N bytes]  UTF-8 JSON header, starting with "{", padded with spaces (0x20) so that 8 + N is a
///            multiple of 8:
///            {"__metadata__": {"key": "value", …},
///             "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, …}
/// [rest]     the byte buffer: every tensor's little-endian elements, row-major, contiguous;
///            offsets are relative to the start of the buffer and cover it without gaps.
/// ```
///
/// Writing streams each tensor straight from its storage to the file; reading maps the file (see
/// `SafeTensorsFile`), so gigabyte-sized files are never held twice in memory.
public enum SafeTensors {
    /// Largest header accepted when reading (the reference implementation's limit).
    public static let maxHeaderBytes = 100_000_000

    /// Writes `items` and `metadata` to `writer`, returns nothing; the caller finishes the writer.
    ///
    /// NOTE: tensors are laid out by element size, largest first (stable within a size), as the
    /// reference writer does: with the 8-aligned header this keeps every tensor aligned to its
    /// element size in the file, so a mapped file can be viewed in place.
    public static func write(_ items: [SafeTensorsItem], metadata: [String: String] = [:], to writer: FileWriter) throws {
        let (header, ordered) = try encodeHeader(items, metadata: metadata)
        var length = UInt64(header.count).littleEndian
        try withUnsafeBytes(of: &length) { try writer.write($0) }
        try writer.write(header)
        for item in ordered {
            try item.withBytes { try writer.write($0) }
        }
    }

    /// Writes a safetensors file at `url` atomically; returns its size and SHA-256.
    @discardableResult
    public static func write(_ items: [SafeTensorsItem], metadata: [String: String] = [:], to url: URL) throws -> FileDigest {
        try AtomicFile.write(to: url) { try write(items, metadata: metadata, to: $0) }
    }

    /// The whole file in memory (for small files and tests).
    public static func serialize(_ items: [SafeTensorsItem], metadata: [String: String] = [:]) throws -> Data {
        let (header, ordered) = try encodeHeader(items, metadata: metadata)
        var out = Data()
        var length = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &length) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for item in ordered { item.withBytes { out.append(contentsOf: $0) } }
        return out
    }

    /// The padded JSON header and the items in data order.
    static func encodeHeader(_ items: [SafeTensorsItem], metadata: [String: String]) throws -> ([UInt8], [SafeTensorsItem]) {
        var seen = Set<String>()
        for item in items {
            guard item.name != "__metadata__" else {
                throw SafeTensorsError(writing: "the tensor name \"__metadata__\" is reserved by the format")
            }
            guard seen.insert(item.name).inserted else {
                throw SafeTensorsError(writing: "tensor name \"\(item.name)\" is used twice")
            }
        }
        let ordered = items.enumerated().sorted { l, r in
            l.element.dtype.byteSize != r.element.dtype.byteSize
                ? l.element.dtype.byteSize > r.element.dtype.byteSize : l.offset < r.offset
        }.map(\.element)

        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += "\"__metadata__\":{"
            json += metadata.sorted { $0.key < $1.key }
                .map { "\(jsonQuoted($0.key)):\(jsonQuoted($0.value))" }.joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        for item in ordered {
            let end = offset + item.byteCount
            if !first { json += "," }
            first = false
            json += "\(jsonQuoted(item.name)):{\"dtype\":\"\(item.dtype.rawValue)\","
            json += "\"shape\":[\(item.shape.map(String.init).joined(separator: ","))],"
            json += "\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        json += "}"
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        return (header, ordered)
    }

    /// `s` as a JSON string literal.
    static func jsonQuoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

/// Element types of the safetensors format, by their names in the header.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case f64 = "F64", i64 = "I64", u64 = "U64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: 1
        case .i16, .u16, .f16, .bf16: 2
        case .i32, .u32, .f32: 4
        case .f64, .i64, .u64: 8
        }
    }
}

/// One named array to write: an F32 `Tensor`, or an I64/I32 array (step counters, ids).
public struct SafeTensorsItem: @unchecked Sendable {
    /// Where the elements live.
    public enum Storage {
        case float32(Tensor)
        case int64([Int64])
        case int32([Int32])
    }

    public let name: String
    public let shape: [Int]
    public let storage: Storage

    /// An F32 tensor with the tensor's shape.
    public init(_ name: String, _ tensor: Tensor) {
        self.name = name
        self.shape = tensor.shape
        self.storage = .float32(tensor)
    }

    /// An I64 array of `shape` (default: one dimension).
    public init(_ name: String, int64 values: [Int64], shape: [Int]? = nil) {
        let s = shape ?? [values.count]
        precondition(s.reduce(1, *) == values.count, "shape \(s) does not hold \(values.count) values")
        self.name = name
        self.shape = s
        self.storage = .int64(values)
    }

    /// An I32 array of `shape` (default: one dimension).
    public init(_ name: String, int32 values: [Int32], shape: [Int]? = nil) {
        let s = shape ?? [values.count]
        precondition(s.reduce(1, *) == values.count, "shape \(s) does not hold \(values.count) values")
        self.name = name
        self.shape = s
        self.storage = .int32(values)
    }

    public var dtype: SafeTensorsDType {
        switch storage {
        case .float32: .f32
        case .int64: .i64
        case .int32: .i32
        }
    }

    /// Size of the elements in bytes.
    public var byteCount: Int { shape.reduce(1, *) * dtype.byteSize }

    /// Calls `body` with the little-endian element bytes.
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        // NOTE: Herd runs on little-endian hosts only (x86-64, arm64), whose memory layout is
        // already the format's byte order.
        switch storage {
        case .float32(let t): return try body(UnsafeRawBufferPointer(start: t.data, count: t.count * 4))
        case .int64(let a): return try a.withUnsafeBytes(body)
        case .int32(let a): return try a.withUnsafeBytes(body)
        }
    }
}

#if _endian(big)
#error("the safetensors code assumes a little-endian host")
#endif

/// A safetensors file that cannot be written or is not valid. `description` names the file and
/// the problem.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable {
    /// The file concerned.
    public let path: String
    /// What is wrong with it.
    public let reason: String

    /// True for a file being read, false for tensors that cannot be written.
    public let reading: Bool

    /// A problem found reading the file at `path`.
    public init(path: String, _ reason: String) {
        self.path = path
        self.reason = reason
        self.reading = true
    }

    /// A problem with tensors to be written.
    public init(writing reason: String) {
        self.path = ""
        self.reason = reason
        self.reading = false
    }

    public var description: String {
        reading ? "\(path) is not a valid safetensors file: \(reason)" : "cannot write safetensors: \(reason)"
    }
}
