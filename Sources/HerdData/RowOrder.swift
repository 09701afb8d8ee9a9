import HerdTensor

/// The order in which an epoch visits rows: identity, or a pseudo-random permutation of
/// `0..<rows` fixed by `(seed, epoch)`.
///
/// - Row shuffle (`blockRows == nil`): any row can follow any row.
/// - Block shuffle (`blockRows == K`): the full blocks of `K` consecutive rows are visited in a
///   random order and the rows inside each block in a random order; the `rows % K` tail rows come
///   last, shuffled among themselves. A batch then reads one or two contiguous regions of the
///   cache, which keeps epochs fast when the cache is larger than RAM.
///
/// Every permutation is a 6-round Feistel network over the smallest even-bit power-of-two domain
/// covering it, cycle-walked back into range, so `order[p]` costs O(1) time and memory: "batch `k`
/// of epoch `e` with seed `s`" is computed directly (resuming mid-epoch needs no replay) and no
/// per-epoch index array exists, whatever the row count.
///
/// NOTE: a Feistel network is a bijection on its domain by construction, and cycle-walking keeps
/// it a bijection on `0..<count`; the tests check both modes.
public struct RowOrder: Sendable, Equatable {
    public let rows: Int
    /// Rows per shuffled block, or nil for a row shuffle.
    public let blockRows: Int?
    private let keys: [UInt64]
    private let rowPermutation: Feistel
    private let blockPermutation: Feistel
    private let inBlockPermutation: Feistel
    private let tailPermutation: Feistel

    /// Rows in file order.
    public static func sequential(rows: Int) -> RowOrder { RowOrder(rows: rows, seed: nil, epoch: 0) }

    /// Identity when `seed` is nil, else the permutation for `(seed, epoch)` (see the type).
    public init(rows: Int, seed: UInt64?, epoch: Int, blockRows: Int? = nil) {
        precondition(rows >= 0, "negative row count")
        precondition(blockRows.map { $0 > 0 } ?? true, "blockRows must be positive")
        self.rows = rows
        self.blockRows = blockRows
        if let seed {
            var rng = SplitMix64(seed: seed ^ (UInt64(bitPattern: Int64(epoch)) &* 0xD6E8_FEB8_6659_FD93))
            keys = (0..<6).map { _ in rng.next() }
        } else {
            keys = []
        }
        let k = blockRows ?? 1
        rowPermutation = Feistel(count: rows, keys: keys)
        blockPermutation = Feistel(count: rows / k, keys: keys.map { $0 ^ 0xB10C })
        inBlockPermutation = Feistel(count: k, keys: keys.map { $0 ^ 0x1B10C })
        tailPermutation = Feistel(count: rows % k, keys: keys.map { $0 ^ 0x7A11 })
    }

    /// True when rows are visited in file order.
    public var isSequential: Bool { keys.isEmpty }

    /// The row visited at `position` (`0..<rows`).
    @inline(__always)
    public subscript(position: Int) -> Int {
        precondition(position >= 0 && position < rows, "position \(position) outside 0..<\(rows)")
        if keys.isEmpty { return position }
        guard let k = blockRows else { return rowPermutation.apply(position) }
        let fullRows = rows - rows % k
        if position >= fullRows { return fullRows + tailPermutation.apply(position - fullRows) }
        let block = blockPermutation.apply(position / k)
        return block * k + inBlockPermutation.apply(position % k, tweak: UInt64(block) &+ 1)
    }
}

/// A keyed pseudo-random permutation of `0..<count` (Feistel network with cycle-walking).
struct Feistel: Sendable, Equatable {
    let count: UInt64
    let halfBits: UInt64
    let mask: UInt64
    let keys: [UInt64]

    init(count: Int, keys: [UInt64]) {
        self.count = UInt64(count)
        var bits: UInt64 = 2
        while (UInt64(1) << bits) < UInt64(count) { bits += 2 }
        halfBits = bits / 2
        mask = (UInt64(1) << halfBits) - 1
        self.keys = keys
    }

    /// The image of `i`; `tweak` selects one of many independent permutations (one per block).
    @inline(__always)
    func apply(_ i: Int, tweak: UInt64 = 0) -> Int {
        let t = tweak == 0 ? 0 : mix64(tweak)
        var x = permute(UInt64(i), t)
        while x >= count { x = permute(x, t) }
        return Int(x)
    }

    @inline(__always)
    private func permute(_ x: UInt64, _ tweak: UInt64) -> UInt64 {
        var left = x >> halfBits, right = x & mask
        for key in keys {
            var z = (right ^ key ^ tweak) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            (left, right) = (right, left ^ (z & mask))
        }
        return left << halfBits | right
    }
}
