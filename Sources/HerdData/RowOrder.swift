import HerdTensor

/// The order in which an epoch visits rows: identity, or a pseudo-random permutation of
/// `0..<rows` fixed by `(seed, epoch)`.
///
/// The permutation is a 6-round Feistel network over the smallest even-bit power-of-two domain
/// ≥ `rows`, with cycle-walking back into range. `order[p]` costs O(1) time and memory, so
/// "batch `k` of epoch `e` with seed `s`" is computed directly (resuming mid-epoch needs no
/// replay) and no per-epoch index array is kept, whatever the row count.
///
/// NOTE: a Feistel network is a bijection on its domain by construction, and cycle-walking
/// preserves bijectivity on `0..<rows`; both are checked by the tests.
public struct RowOrder: Sendable, Equatable {
    public let rows: Int
    /// Round keys, or empty for the identity order.
    private let keys: [UInt64]
    private let halfBits: UInt64
    private let mask: UInt64

    /// Rows in file order.
    public static func sequential(rows: Int) -> RowOrder { RowOrder(rows: rows, seed: nil, epoch: 0) }

    /// Identity when `seed` is nil, else the permutation for `(seed, epoch)`.
    public init(rows: Int, seed: UInt64?, epoch: Int) {
        precondition(rows >= 0, "negative row count")
        self.rows = rows
        var bits: UInt64 = 2
        while (UInt64(1) << bits) < UInt64(rows) { bits += 2 }
        halfBits = bits / 2
        mask = (UInt64(1) << halfBits) - 1
        if let seed {
            var rng = SplitMix64(seed: seed ^ (UInt64(bitPattern: Int64(epoch)) &* 0xD6E8_FEB8_6659_FD93))
            keys = (0..<6).map { _ in rng.next() }
        } else {
            keys = []
        }
    }

    /// True when rows are visited in file order.
    public var isSequential: Bool { keys.isEmpty }

    /// The row visited at `position` (`0..<rows`).
    @inline(__always)
    public subscript(position: Int) -> Int {
        precondition(position >= 0 && position < rows, "position \(position) outside 0..<\(rows)")
        if keys.isEmpty { return position }
        var x = permute(UInt64(position))
        while x >= UInt64(rows) { x = permute(x) }
        return Int(x)
    }

    @inline(__always)
    private func permute(_ x: UInt64) -> UInt64 {
        var left = x >> halfBits, right = x & mask
        for key in keys {
            var z = (right ^ key) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            (left, right) = (right, left ^ (z & mask))
        }
        return left << halfBits | right
    }
}
