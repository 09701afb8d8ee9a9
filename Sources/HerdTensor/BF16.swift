/// Arithmetic precision of the dense layers' GEMMs.
///
/// - `fp32`: FP32 operands, FP32 accumulation (the default).
/// - `bf16`: operands rounded to bfloat16 (round to nearest even), products accumulated and
///   written in FP32 (see `gemmBF16`). Master weights, gradients, optimizer state, element-wise
///   ops, embeddings and the loss stay FP32.
public enum Precision: String, Sendable, Codable, CaseIterable {
    case fp32, bf16
}

/// bfloat16 conversions: the upper 16 bits of an IEEE-754 binary32 (1 sign, 8 exponent, 7
/// mantissa bits), so FP32 → BF16 is a rounding of the low 16 bits and BF16 → FP32 is exact.
public enum BF16 {
    /// FP32 → BF16 bits, round to nearest, ties to even. Infinities stay infinite, finite values
    /// beyond the largest BF16 round to infinity, subnormals are rounded (not flushed), NaNs stay
    /// NaN (quietened, sign and upper payload kept).
    @inlinable
    public static func round(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        if b & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: (b | 0x0040_0000) >> 16) }
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }

    /// BF16 bits → FP32 (exact).
    @inlinable
    public static func toFloat(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// `x` rounded to the nearest BF16 value, as FP32 (`toFloat(round(x))`).
    @inlinable
    public static func rounded(_ x: Float) -> Float { toFloat(round(x)) }

    /// `round` on raw bits without branches (a select), so that loops over it vectorise. Returns
    /// the rounded BF16 in the upper 16 bits; the lower 16 bits are garbage.
    @inlinable @inline(__always)
    static func roundBits(_ b: UInt32) -> UInt32 {
        b & 0x7FFF_FFFF > 0x7F80_0000 ? (b | 0x0040_0000) : (b &+ 0x7FFF &+ ((b >> 16) & 1))
    }

    /// Rounds `count` floats to BF16 bits. A plain loop that LLVM vectorises (≈ 5 G floats/s on
    /// one AVX2 core); NOTE: an explicit `SIMD8<UInt32>` version ran ~100× slower in release
    /// builds (generic SIMD operations were not specialised across modules).
    @inlinable
    public static func convert(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutablePointer<UInt16>) {
        UnsafeRawPointer(src).withMemoryRebound(to: UInt32.self, capacity: count) { s in
            for i in 0..<count { dst[i] = UInt16(truncatingIfNeeded: roundBits(s[i]) >> 16) }
        }
    }

    /// Rounds `count` floats to the nearest BF16 values, kept in FP32 storage (vectorised like
    /// `convert`). `dst` may equal `src`.
    @inlinable
    public static func roundInFloat(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutablePointer<Float>) {
        UnsafeRawPointer(src).withMemoryRebound(to: UInt32.self, capacity: count) { s in
            UnsafeMutableRawPointer(dst).withMemoryRebound(to: UInt32.self, capacity: count) { d in
                for i in 0..<count { d[i] = roundBits(s[i]) & 0xFFFF_0000 }
            }
        }
    }

    /// Widens `count` BF16 values to FP32 (exact).
    @inlinable
    public static func widen(_ src: UnsafePointer<UInt16>, count: Int, into dst: UnsafeMutablePointer<Float>) {
        for i in 0..<count { dst[i] = toFloat(src[i]) }
    }
}

/// A matrix rounded to BF16, stored the way the active BF16 GEMM backend reads it: packed 16-bit
/// values for native backends, or BF16 values widened to FP32 for the emulated one (see
/// `BF16GEMM`). Layers keep one per operand and refill it each step, so each operand is rounded
/// once per step however many GEMMs read it.
public final class BF16Buffer: @unchecked Sendable {
    /// Whether elements are 16-bit (`true`) or widened FP32 (`false`).
    public let packed: Bool
    public let capacity: Int
    /// Elements currently held.
    public private(set) var count = 0
    @usableFromInline let raw: UnsafeMutableRawPointer

    /// An empty buffer of `capacity` elements in the active backend's format (or `packed`).
    public init(capacity: Int, packed: Bool = BF16GEMM.backend.packed) {
        self.capacity = max(capacity, 1)
        self.packed = packed
        raw = UnsafeMutableRawPointer.allocate(byteCount: self.capacity * (packed ? 2 : 4), alignment: 64)
    }

    deinit { raw.deallocate() }

    /// Rounds `count` floats from `src` into the buffer (round to nearest even).
    public func assign(from src: UnsafePointer<Float>, count: Int) {
        precondition(count <= capacity, "BF16Buffer of \(capacity) elements cannot hold \(count)")
        if packed {
            BF16.convert(src, count: count, into: raw.assumingMemoryBound(to: UInt16.self))
        } else {
            BF16.roundInFloat(src, count: count, into: raw.assumingMemoryBound(to: Float.self))
        }
        self.count = count
    }

    /// Fused forward epilogue: `y = act(y + bias)` in place on a contiguous `[rows, cols]` block
    /// (`relu` or identity), and the result rounded into the buffer — one pass instead of
    /// `addBias(ReLU)` then `assign`. The buffer then holds the next layer's BF16 input.
    public func assignBiasActivation(_ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, bias: UnsafePointer<Float>, relu: Bool) {
        let count = rows * cols
        precondition(count <= capacity, "BF16Buffer of \(capacity) elements cannot hold \(count)")
        if packed {
            Self.biasActivation(y, rows: rows, cols: cols, bias: bias, relu: relu, into: raw.assumingMemoryBound(to: UInt16.self))
        } else {
            Self.biasActivation(y, rows: rows, cols: cols, bias: bias, relu: relu, into: raw.assumingMemoryBound(to: UInt32.self))
        }
        self.count = count
    }

    /// Fused backward epilogue: ReLU backward on `g` in place (when `reluOutput` is given), the
    /// bias gradient `columnSums += Σ_rows g`, and `g` rounded into the buffer, in one pass over a
    /// contiguous `[rows, cols]` block (see `Kernels.reluBackwardColumnSums`).
    public func assignGradient(
        _ g: UnsafeMutablePointer<Float>, reluOutput y: UnsafePointer<Float>?, rows: Int, cols: Int, columnSums out: UnsafeMutablePointer<Float>
    ) {
        let count = rows * cols
        precondition(count <= capacity, "BF16Buffer of \(capacity) elements cannot hold \(count)")
        if packed {
            Self.maskedGradient(g, reluOutput: y, rows: rows, cols: cols, columnSums: out, into: raw.assumingMemoryBound(to: UInt16.self))
        } else {
            Self.maskedGradient(g, reluOutput: y, rows: rows, cols: cols, columnSums: out, into: raw.assumingMemoryBound(to: UInt32.self))
        }
        self.count = count
    }

    // NOTE: the element type of `dst` picks the storage: UInt16 keeps the rounded upper half,
    // UInt32 the rounded value widened back to FP32 bits. Generic over `BF16Storage` so each
    // loop is written once and specialised (both are called with concrete types above).
    @inline(__always)
    static func biasActivation<S: BF16Storage>(_ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, bias: UnsafePointer<Float>, relu: Bool,
                                               into dst: UnsafeMutablePointer<S>) {
        for r in 0..<rows {
            let row = y + r &* cols, d = dst + r &* cols
            if relu {
                for j in 0..<cols {
                    let v = max(row[j] + bias[j], 0)
                    row[j] = v
                    d[j] = S(roundedBits: BF16.roundBits(v.bitPattern))
                }
            } else {
                for j in 0..<cols {
                    let v = row[j] + bias[j]
                    row[j] = v
                    d[j] = S(roundedBits: BF16.roundBits(v.bitPattern))
                }
            }
        }
    }

    @inline(__always)
    static func maskedGradient<S: BF16Storage>(_ g: UnsafeMutablePointer<Float>, reluOutput y: UnsafePointer<Float>?, rows: Int, cols: Int,
                                               columnSums out: UnsafeMutablePointer<Float>, into dst: UnsafeMutablePointer<S>) {
        for r in 0..<rows {
            let row = g + r &* cols, d = dst + r &* cols
            if let y {
                let yr = y + r &* cols
                for j in 0..<cols {
                    let v = yr[j] > 0 ? row[j] : 0
                    row[j] = v
                    out[j] += v
                    d[j] = S(roundedBits: BF16.roundBits(v.bitPattern))
                }
            } else {
                for j in 0..<cols {
                    let v = row[j]
                    out[j] += v
                    d[j] = S(roundedBits: BF16.roundBits(v.bitPattern))
                }
            }
        }
    }

    /// Sets how many elements the buffer holds after a kernel wrote them directly.
    func setCount(_ n: Int) {
        precondition(n <= capacity, "BF16Buffer of \(capacity) elements cannot hold \(n)")
        count = n
    }

    /// Element `i` as FP32.
    public subscript(i: Int) -> Float {
        packed ? BF16.toFloat(raw.assumingMemoryBound(to: UInt16.self)[i]) : raw.assumingMemoryBound(to: Float.self)[i]
    }

    /// `buffer` if it is in the active format and holds `count` elements, else a new one; then
    /// filled from `src`.
    public static func ensure(_ buffer: BF16Buffer?, from src: UnsafePointer<Float>, count: Int) -> BF16Buffer {
        let b: BF16Buffer
        if let buffer, buffer.capacity >= count, buffer.packed == BF16GEMM.backend.packed { b = buffer } else { b = BF16Buffer(capacity: count) }
        b.assign(from: src, count: count)
        return b
    }
}

/// How a `BF16Buffer` stores one rounded element (see `BF16Buffer.packed`).
protocol BF16Storage {
    /// From the output of `BF16.roundBits` (rounded value in the upper 16 bits).
    init(roundedBits: UInt32)
}

extension UInt16: BF16Storage {
    @inline(__always) init(roundedBits b: UInt32) { self = UInt16(truncatingIfNeeded: b >> 16) }
}

extension UInt32: BF16Storage {
    @inline(__always) init(roundedBits b: UInt32) { self = b & 0xFFFF_0000 }
}
