import CHerdKernels
import Foundation

/// A dense Float32 tensor: row-major, contiguous, 64-byte aligned, reference semantics.
///
/// Numeric conventions, stated once for all of Herd:
/// - Values are `Float` (FP32). Storage is row-major: the last index varies fastest.
/// - Shape letters used in doc comments: `B` batch rows, `F` fields (dense columns or sparse
///   features/tables), `D` embedding dimension, `N` table rows, `I`/`O` a layer's input/output width,
///   `U` unique ids in a sparse gradient.
/// - A `[B, I]` tensor holds row `b` at `data + b * I`.
///
/// `Tensor` is a class so that parameters, gradients and activation buffers can be updated in place
/// and shared between a layer and its optimizer. Its capacity is fixed at creation; `reshape` may
/// shrink or regrow the logical shape within that capacity (the last batch of an epoch is smaller).
public final class Tensor: @unchecked Sendable {
    /// Logical shape; `count == shape.reduce(1, *)`.
    public private(set) var shape: [Int]
    /// Number of logical elements.
    public private(set) var count: Int
    /// Allocated elements (≥ `count`).
    public let capacity: Int
    /// The storage. Valid for `capacity` elements for the tensor's lifetime.
    public let data: UnsafeMutablePointer<Float>

    /// A zero-filled tensor of `shape`.
    public init(shape: [Int], capacity: Int? = nil) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        let n = shape.reduce(1, *)
        let cap = max(capacity ?? n, n, 1)
        self.shape = shape
        self.count = n
        self.capacity = cap
        let bytes = cap * MemoryLayout<Float>.stride
        let raw: UnsafeMutableRawPointer
        if bytes >= Tensor.hugePageMinBytes {
            // NOTE: embedding tables and their optimizer slots are read and written at random
            // rows; with 4 KiB pages nearly every such access also misses the TLB. Large tensors
            // are 2 MiB-aligned, padded to whole 2 MiB pages and advised as huge pages before the
            // zero fill below first touches them.
            let huge = 1 << 21
            let padded = (bytes + huge - 1) / huge * huge
            raw = UnsafeMutableRawPointer.allocate(byteCount: padded, alignment: huge)
            _ = herd_advise_huge_pages(raw, UInt(padded))
        } else {
            raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        }
        self.data = raw.bindMemory(to: Float.self, capacity: cap)
        self.data.initialize(repeating: 0, count: cap)
    }

    /// A tensor holding `values` with `shape`.
    public convenience init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.init(shape: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { data.deallocate() }

    /// Tensors of at least this many bytes are backed by transparent huge pages where the OS
    /// offers them (see `init`).
    public static let hugePageMinBytes = 4 << 20

    /// Rows of a 2-D tensor (the first dimension).
    @inlinable public var rows: Int { shape.first ?? 1 }
    /// Columns of a 2-D tensor (the product of all but the first dimension).
    @inlinable public var columns: Int { shape.count <= 1 ? (shape.first ?? 1) : count / max(shape[0], 1) }

    /// Changes the logical shape within the allocated capacity. Contents are not moved or cleared.
    public func reshape(_ newShape: [Int]) {
        let n = newShape.reduce(1, *)
        precondition(n <= capacity, "reshape to \(newShape) exceeds capacity \(capacity)")
        shape = newShape
        count = n
    }

    /// Element access by flat index.
    @inlinable public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }

    /// Element access of a 2-D tensor.
    @inlinable public subscript(r: Int, c: Int) -> Float {
        get { data[r * columns + c] }
        set { data[r * columns + c] = newValue }
    }

    /// The logical elements as an array (for tests and export).
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// Fills every logical element with `value`.
    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    /// Copies the logical elements of `other` (same count) into this tensor.
    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy of \(other.count) elements into \(count)")
        data.update(from: other.data, count: count)
    }

    /// A new tensor with the same shape and contents.
    public func clone() -> Tensor {
        let t = Tensor(shape: shape)
        t.copy(from: self)
        return t
    }

    /// Makes `tensor` have `shape`, reallocating only when its capacity is too small.
    /// Returns the (possibly new) tensor. Used for activation buffers sized by the batch.
    public static func ensure(_ tensor: Tensor?, shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        if let t = tensor, t.capacity >= n {
            t.reshape(shape)
            return t
        }
        return Tensor(shape: shape)
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = array.prefix(8).map { String(format: "%.4g", Double($0)) }.joined(separator: ", ")
        return "Tensor\(shape)[\(head)\(count > 8 ? ", …" : "")]"
    }
}

/// Deterministic pseudo-random numbers (SplitMix64), used for initialisation, shuffling and data
/// generation so that a seed fixes every result on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    @inlinable public mutating func nextUniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }
    /// Uniform in [0, 1) as Double.
    @inlinable public mutating func nextDouble() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }
    /// Standard normal (Box–Muller).
    @inlinable public mutating func nextGaussian() -> Float {
        let u1 = max(nextDouble(), 1e-300)
        let u2 = nextDouble()
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }
}

@usableFromInline func _log(_ x: Double) -> Double { Foundation.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Foundation.cos(x) }
