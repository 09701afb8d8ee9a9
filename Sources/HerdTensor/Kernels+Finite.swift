extension Kernels {
    /// Whether all `count` floats at `p` are finite (no NaN, no ±infinity).
    ///
    /// NOTE: `x - x` is exactly 0 for a finite `x` and NaN for NaN or ±infinity, and a NaN stays in
    /// a running sum, so one subtraction and one add per lane, 16 lanes at a time, with no branch.
    @inlinable
    public static func allFinite(_ p: UnsafePointer<Float>, count: Int) -> Bool {
        var acc = SIMD16<Float>(repeating: 0)
        var i = 0
        while i + 16 <= count {
            let v = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self)
            acc += v - v
            i += 16
        }
        var tail: Float = 0
        while i < count { tail += p[i] - p[i]; i += 1 }
        return tail == 0 && acc == SIMD16(repeating: 0)
    }
}
