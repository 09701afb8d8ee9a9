import HerdTensor

/// Random tensors for tests, deterministic for a seed.
public func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var rng = SplitMix64(seed: seed)
    let t = Tensor(shape: shape)
    for i in 0..<t.count { t[i] = (rng.nextUniform() * 2 - 1) * scale }
    return t
}

/// Asserts-free comparison helper: the largest absolute difference between two float sequences.
public func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a[i] - b[i])) }
    return m
}
