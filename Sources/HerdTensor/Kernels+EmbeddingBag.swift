import CHerdKernels

/// How the rows of one bag are pooled.
public enum Pooling: String, Sendable, Codable {
    case sum, mean
}

/// Row gradients of an embedding table for one step: `U` unique row ids (ascending) and their
/// summed gradients `[U, D]`. Duplicate ids in the batch are merged before an optimizer sees them.
public struct SparseRowGradient: Sendable {
    public var ids: [Int32]
    public var rows: Tensor
    public let dimension: Int
    public init(ids: [Int32], rows: Tensor, dimension: Int) {
        self.ids = ids
        self.rows = rows
        self.dimension = dimension
    }
    public var count: Int { ids.count }
}

extension Kernels {
    /// Embedding-bag forward: pools table rows per bag.
    ///
    /// - `table`: `[N, D]`. `ids`: row ids of all bags, concatenated. `offsets`: `bags + 1` entries;
    ///   bag `i` holds `ids[offsets[i] ..< offsets[i+1]]` (an empty bag gives zeros).
    /// - Writes bag `i` to `out + i * outStride` (`D` floats), so a caller can pool straight into a
    ///   wider interaction buffer.
    @inlinable
    public static func embeddingBagForward(
        table: UnsafePointer<Float>, rows n: Int, dimension d: Int,
        ids: UnsafePointer<Int32>, offsets: UnsafePointer<Int32>, bags: Int, pooling: Pooling,
        out: UnsafeMutablePointer<Float>, outStride: Int
    ) {
        // NOTE: rows of large tables are random memory accesses; prefetching the row needed
        // `prefetchDistance` ids ahead overlaps those cache misses (2× on 26 × 100k-row tables).
        let first = Int(offsets[0]), last = Int(offsets[bags])
        let linesPerRow = max(1, (d * MemoryLayout<Float>.stride + 63) / 64)
        for j in first..<min(first + prefetchDistance, last) { prefetchRow(table, Int(ids[j]), d, linesPerRow, n) }
        for bag in 0..<bags {
            let o = out + bag * outStride
            let start = Int(offsets[bag]), end = Int(offsets[bag + 1])
            if end - start == 1 {
                // One-hot bag (every Criteo field): a row copy.
                if start + prefetchDistance < last { prefetchRow(table, Int(ids[start + prefetchDistance]), d, linesPerRow, n) }
                let id = Int(ids[start])
                precondition(id >= 0 && id < n, "embedding id \(id) outside table of \(n) rows")
                if d == 16 {
                    // NOTE: an inline 64-byte copy; `update(from:)` is a `memmove` call per row.
                    UnsafeMutableRawPointer(o).storeBytes(of: UnsafeRawPointer(table + id * 16).loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
                } else {
                    o.update(from: table + id * d, count: d)
                }
                continue
            }
            o.update(repeating: 0, count: d)
            for j in start..<end {
                if j + prefetchDistance < last { prefetchRow(table, Int(ids[j + prefetchDistance]), d, linesPerRow, n) }
                let id = Int(ids[j])
                precondition(id >= 0 && id < n, "embedding id \(id) outside table of \(n) rows")
                let row = table + id * d
                for k in 0..<d { o[k] += row[k] }
            }
            if pooling == .mean && end - start > 1 {
                let s = 1 / Float(end - start)
                for k in 0..<d { o[k] *= s }
            }
        }
    }

    /// Ids looked ahead when prefetching embedding rows.
    public static let prefetchDistance = 16

    /// Prefetches row `id` (`lines` cache lines) of a `[n, d]` table; ignores out-of-range ids
    /// (they are reported by the lookup itself).
    @inlinable @inline(__always)
    public static func prefetchRow(_ table: UnsafePointer<Float>, _ id: Int, _ d: Int, _ lines: Int, _ n: Int) {
        guard id >= 0 && id < n else { return }
        let p = UnsafeRawPointer(table + id * d)
        for l in 0..<lines { herd_prefetch(p + l * 64) }
    }

    /// Embedding-bag backward: scatters the bag gradients `gradOut` (`bags` rows of `D` floats at
    /// stride `gradStride`) back to the rows that were pooled, merging duplicate ids.
    ///
    /// Returns the unique ids in ascending order with their summed gradients `[U, D]`.
    public static func embeddingBagBackward(
        gradOut: UnsafePointer<Float>, gradStride: Int, dimension d: Int,
        ids: UnsafePointer<Int32>, offsets: UnsafePointer<Int32>, bags: Int, pooling: Pooling
    ) -> SparseRowGradient {
        let nnz = Int(offsets[bags]) - Int(offsets[0])
        // (id, bag) pairs sorted by id, then runs of equal ids accumulate into one row.
        var pairs = [UInt64]()
        pairs.reserveCapacity(nnz)
        for bag in 0..<bags {
            for j in Int(offsets[bag])..<Int(offsets[bag + 1]) {
                pairs.append(UInt64(UInt32(bitPattern: ids[j])) << 32 | UInt64(bag))
            }
        }
        radixSortByHighWord(&pairs)
        var unique = 0
        var last: UInt64 = .max
        for p in pairs where p >> 32 != last { unique += 1; last = p >> 32 }
        let rows = Tensor(shape: [unique, d])
        var outIds = [Int32](repeating: 0, count: unique)
        var u = -1
        last = .max
        for p in pairs {
            let id = p >> 32, bag = Int(p & 0xFFFF_FFFF)
            if id != last { u += 1; last = id; outIds[u] = Int32(truncatingIfNeeded: id) }
            let len = Int(offsets[bag + 1] - offsets[bag])
            let scale: Float = pooling == .mean && len > 1 ? 1 / Float(len) : 1
            let g = gradOut + bag * gradStride
            let r = rows.data + u * d
            for k in 0..<d { r[k] += scale * g[k] }
        }
        return SparseRowGradient(ids: outIds, rows: rows, dimension: d)
    }

    /// Embedding-bag backward fused with a plain SGD step: adds `alpha · gradOut[bag]` (divided by
    /// the bag's length with mean pooling) to the table row of every id in the bag, in bag order.
    ///
    /// - `table`: `[N, D]`, updated in place. `gradOut`, `ids`, `offsets` as in
    ///   `embeddingBagBackward`.
    ///
    /// NOTE: SGD is linear in the gradient, so adding each occurrence of an id in turn gives the
    /// merged update `alpha · Σ g` (up to float rounding order) without sorting the ids or
    /// allocating row gradients. Rows are prefetched for writing `prefetchDistance` ids ahead.
    @inlinable
    public static func embeddingBagScatterAdd(
        alpha: Float, gradOut: UnsafePointer<Float>, gradStride: Int, dimension d: Int,
        ids: UnsafePointer<Int32>, offsets: UnsafePointer<Int32>, bags: Int, pooling: Pooling,
        table: UnsafeMutablePointer<Float>, rows n: Int
    ) {
        let first = Int(offsets[0]), last = Int(offsets[bags])
        for j in first..<min(first + prefetchDistance, last) where ids[j] >= 0 && Int(ids[j]) < n { prefetchForWrite(table + Int(ids[j]) * d, count: d) }
        for bag in 0..<bags {
            let start = Int(offsets[bag]), end = Int(offsets[bag + 1])
            if start == end { continue }
            let scale: Float = pooling == .mean && end - start > 1 ? alpha / Float(end - start) : alpha
            let g = gradOut + bag * gradStride
            for j in start..<end {
                let ahead = j + prefetchDistance
                if ahead < last, ids[ahead] >= 0, Int(ids[ahead]) < n { prefetchForWrite(table + Int(ids[ahead]) * d, count: d) }
                let id = Int(ids[j])
                precondition(id >= 0 && id < n, "embedding id \(id) outside table of \(n) rows")
                let row = table + id * d
                if d == 16 {
                    let gv = UnsafeRawPointer(g).loadUnaligned(as: SIMD16<Float>.self)
                    let rv = UnsafeRawPointer(row).loadUnaligned(as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(row).storeBytes(of: rv + SIMD16(repeating: scale) * gv, as: SIMD16<Float>.self)
                } else {
                    for k in 0..<d { row[k] += scale * g[k] }
                }
            }
        }
    }

    /// Merges several sparse gradients of the same table (e.g. from data-parallel shards) into one,
    /// summing rows with equal ids. Inputs have ascending ids; so does the result.
    public static func mergeSparse(_ parts: [SparseRowGradient]) -> SparseRowGradient {
        precondition(!parts.isEmpty)
        if parts.count == 1 { return parts[0] }
        var merged = parts[0]
        for p in parts.dropFirst() { merged = mergeTwo(merged, p) }
        return merged
    }

    /// Two-way merge of ascending id lists.
    static func mergeTwo(_ a: SparseRowGradient, _ b: SparseRowGradient) -> SparseRowGradient {
        let d = a.dimension
        var ids: [Int32] = []
        ids.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a.ids[i] < b.ids[j]) { ids.append(a.ids[i]); i += 1 }
            else if i == a.count || b.ids[j] < a.ids[i] { ids.append(b.ids[j]); j += 1 }
            else { ids.append(a.ids[i]); i += 1; j += 1 }
        }
        let rows = Tensor(shape: [ids.count, d])
        i = 0; j = 0
        for (u, id) in ids.enumerated() {
            let r = rows.data + u * d
            if i < a.count && a.ids[i] == id { r.update(from: a.rows.data + i * d, count: d); i += 1 }
            if j < b.count && b.ids[j] == id { axpy(1, b.rows.data + j * d, r, count: d); j += 1 }
        }
        return SparseRowGradient(ids: ids, rows: rows, dimension: d)
    }
}

extension Kernels {
    /// Prefetches the cache lines of `count` floats at `p` for writing (optimizer row updates).
    @inlinable @inline(__always)
    public static func prefetchForWrite(_ p: UnsafeMutablePointer<Float>, count: Int) {
        let raw = UnsafeRawPointer(p)
        var off = 0
        while off < count * 4 { herd_prefetch_write(raw + off); off += 64 }
    }
}

/// Sorts `(id << 32 | bag)` keys by id with a stable LSD radix sort on 11-bit digits of the id
/// (only as many passes as the largest id needs). Stability keeps bags ascending within an id, so
/// the order equals a full sort of the keys.
///
/// NOTE: a comparison sort of ~2k keys per table per step cost more than the scatter it feeds.
@usableFromInline
func radixSortByHighWord(_ keys: inout [UInt64]) {
    let n = keys.count
    guard n > 1 else { return }
    var maxID: UInt64 = 0
    for k in keys { maxID = max(maxID, k >> 32) }
    var passes = 0
    while passes < 3 && (passes == 0 || maxID >> UInt64(11 * passes) != 0) { passes += 1 }
    var tmp = [UInt64](repeating: 0, count: n)
    var counts = [Int](repeating: 0, count: 2048)
    for p in 0..<passes {
        let shift = UInt64(32 + 11 * p)
        for i in 0..<2048 { counts[i] = 0 }
        for k in keys { counts[Int((k >> shift) & 2047)] += 1 }
        var sum = 0
        for i in 0..<2048 { let c = counts[i]; counts[i] = sum; sum += c }
        for k in keys {
            let d = Int((k >> shift) & 2047)
            tmp[counts[d]] = k
            counts[d] += 1
        }
        swap(&keys, &tmp)
    }
}
