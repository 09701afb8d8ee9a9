import Foundation
import HerdData
import HerdTensor

/// A validated, memory-mapped safetensors file.
///
/// Opening checks the whole layout — header length against the file size, header JSON, every
/// entry's dtype, shape and offsets, and that the offsets tile the byte buffer exactly (no
/// overlap, no gap, no trailing bytes) — before any tensor is read. Reading a tensor is then a
/// single copy from the mapping into the tensor's storage.
public final class SafeTensorsFile: @unchecked Sendable {
    /// One tensor's header entry.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Byte range within the data buffer (the `data_offsets`).
        public let dataOffsets: Range<Int>
        /// Number of elements (`shape` product; 1 for a scalar).
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// Entries in the order of their data in the file.
    public let entries: [Entry]
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// The mapped file.
    public let file: MappedFile
    private let dataStart: Int
    private let index: [String: Int]

    /// Opens and validates the file at `url`.
    public convenience init(url: URL) throws {
        let mapped: MappedFile
        do {
            mapped = try MappedFile(url: url)
        } catch {
            throw SafeTensorsError(path: url.path, "cannot be read: \(error)")
        }
        try self.init(file: mapped)
    }

    /// Validates an already mapped file (e.g. one whose checksum was just verified).
    public init(file: MappedFile) throws {
        self.file = file
        let path = file.url.path
        func fail(_ reason: String) -> SafeTensorsError { SafeTensorsError(path: path, reason) }

        let bytes = file.bytes
        guard bytes.count >= 8 else {
            throw fail("it has \(bytes.count) bytes, fewer than the 8-byte header length (truncated?)")
        }
        let rawLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard rawLength <= UInt64(bytes.count - 8) else {
            throw fail("the header length \(rawLength) exceeds the \(bytes.count - 8) bytes after it (truncated, or not a safetensors file)")
        }
        let headerLength = Int(rawLength)
        guard headerLength <= SafeTensors.maxHeaderBytes else {
            throw fail("the header length \(headerLength) exceeds the limit of \(SafeTensors.maxHeaderBytes) bytes")
        }
        guard headerLength >= 2, bytes[8] == UInt8(ascii: "{") else {
            throw fail("the header does not start with '{' (not a safetensors file?)")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<(8 + headerLength)])
        guard String(validating: headerBytes.bindMemory(to: UInt8.self), as: UTF8.self) != nil else {
            throw fail("the header is not valid UTF-8")
        }
        let header: JSONValue
        do {
            header = try JSONValue(json: Data(headerBytes))
        } catch {
            throw fail("the header is not valid JSON")
        }
        guard case .object(let members) = header else { throw fail("the header is not a JSON object") }

        dataStart = 8 + headerLength
        let bufferSize = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in members {
            if name == "__metadata__" {
                guard case .object(let pairs) = value else { throw fail("__metadata__ is not an object") }
                for (k, v) in pairs {
                    guard case .string(let s) = v else { throw fail("__metadata__[\"\(k)\"] is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard case .string(let dtypeName)? = value["dtype"] else {
                throw fail("tensor \"\(name)\" has no \"dtype\" string")
            }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw fail("tensor \"\(name)\" has unsupported dtype \"\(dtypeName)\"")
            }
            guard case .array(let shapeValues)? = value["shape"],
                  let shape = Self.nonNegativeInts(shapeValues)
            else { throw fail("tensor \"\(name)\" has no valid \"shape\" (a list of non-negative integers)") }
            guard case .array(let offsetValues)? = value["data_offsets"],
                  let offsets = Self.nonNegativeInts(offsetValues), offsets.count == 2, offsets[0] <= offsets[1]
            else { throw fail("tensor \"\(name)\" has no valid \"data_offsets\" ([begin, end] with begin ≤ end)") }
            var elements = 1
            for d in shape {
                let (p, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("tensor \"\(name)\" shape \(shape) is too large") }
                elements = p
            }
            let (needed, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow else { throw fail("tensor \"\(name)\" shape \(shape) is too large") }
            guard offsets[1] <= bufferSize else {
                throw fail("tensor \"\(name)\" data_offsets [\(offsets[0]), \(offsets[1])] run past the end of the \(bufferSize)-byte data buffer (truncated?)")
            }
            guard offsets[1] - offsets[0] == needed else {
                throw fail("tensor \"\(name)\" (\(dtypeName) \(shape)) needs \(needed) bytes but its data_offsets [\(offsets[0]), \(offsets[1])] span \(offsets[1] - offsets[0])")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, dataOffsets: offsets[0]..<offsets[1]))
        }
        entries.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound) }
        var position = 0
        for e in entries {
            if e.dataOffsets.lowerBound < position {
                throw fail("tensor \"\(e.name)\" data_offsets [\(e.dataOffsets.lowerBound), \(e.dataOffsets.upperBound)] overlap the previous tensor, which ends at \(position)")
            }
            if e.dataOffsets.lowerBound > position {
                throw fail("bytes \(position)..<\(e.dataOffsets.lowerBound) of the data buffer belong to no tensor (a gap before \"\(e.name)\")")
            }
            position = e.dataOffsets.upperBound
        }
        guard position == bufferSize else {
            throw fail("the tensors cover \(position) bytes but the data buffer has \(bufferSize) (trailing bytes)")
        }
        self.entries = entries
        self.metadata = metadata
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() { index[e.name] = i }
        self.index = index
    }

    private static func nonNegativeInts(_ values: [JSONValue]) -> [Int]? {
        var out: [Int] = []
        out.reserveCapacity(values.count)
        for v in values {
            guard case .int(let i) = v, i >= 0, let n = Int(exactly: i) else { return nil }
            out.append(n)
        }
        return out
    }

    /// Tensor names in data order.
    public var names: [String] { entries.map(\.name) }

    /// The entry for `name`, if present.
    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    /// The raw little-endian bytes of `name`, valid while this object is alive.
    public func bytes(of name: String) throws -> UnsafeRawBufferPointer {
        let e = try require(name)
        return UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + e.dataOffsets.lowerBound)..<(dataStart + e.dataOffsets.upperBound)])
    }

    /// The F32 tensor `name`, copied out of the mapping.
    ///
    /// NOTE: this is the only copy of the data (file pages → tensor storage); `Tensor` owns aligned
    /// storage, so it cannot alias the mapping. (Its initializer zero-fills first: one extra write
    /// pass, which `Tensor` offers no way to skip.)
    public func tensor(_ name: String) throws -> Tensor {
        let e = try require(name, dtype: .f32)
        let t = Tensor(shape: e.shape)
        let src = try bytes(of: name)
        if src.count > 0 { UnsafeMutableRawPointer(t.data).copyMemory(from: src.baseAddress!, byteCount: src.count) }
        return t
    }

    /// The I64 array `name` (flattened).
    public func int64s(_ name: String) throws -> [Int64] {
        try require(name, dtype: .i64)
        return try Self.copy(bytes(of: name), as: Int64.self)
    }

    /// The I32 array `name` (flattened).
    public func int32s(_ name: String) throws -> [Int32] {
        try require(name, dtype: .i32)
        return try Self.copy(bytes(of: name), as: Int32.self)
    }

    /// Every F32 tensor, by name.
    public func floatTensors() throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for e in entries where e.dtype == .f32 { out[e.name] = try tensor(e.name) }
        return out
    }

    private static func copy<T: FixedWidthInteger>(_ src: UnsafeRawBufferPointer, as: T.Type) -> [T] {
        let n = src.count / MemoryLayout<T>.size
        return [T](unsafeUninitializedCapacity: n) { buf, initialized in
            if n > 0 { UnsafeMutableRawPointer(buf.baseAddress!).copyMemory(from: src.baseAddress!, byteCount: src.count) }
            initialized = n
        }
    }

    @discardableResult
    private func require(_ name: String, dtype: SafeTensorsDType? = nil) throws -> Entry {
        guard let e = entry(name) else {
            throw SafeTensorsError(path: file.url.path, "it has no tensor named \"\(name)\"")
        }
        if let dtype, e.dtype != dtype {
            throw SafeTensorsError(path: file.url.path, "tensor \"\(name)\" is \(e.dtype.rawValue), expected \(dtype.rawValue)")
        }
        return e
    }
}
