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
        for bag in 0..<bags {
            let o = out + bag * outStride
            o.update(repeating: 0, count: d)
            let start = Int(offsets[bag]), end = Int(offsets[bag + 1])
            for j in start..<end {
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
        pairs.sort()
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

    /// Merges several sparse gradients of the same table (e.g. from data-parallel shards) into one,
    /// summing rows with equal ids.
    public static func mergeSparse(_ parts: [SparseRowGradient]) -> SparseRowGradient {
        precondition(!parts.isEmpty)
        if parts.count == 1 { return parts[0] }
        let d = parts[0].dimension
        var allIds = Set<Int32>()
        for p in parts { allIds.formUnion(p.ids) }
        let ids = allIds.sorted()
        var index = [Int32: Int](minimumCapacity: ids.count)
        for (i, id) in ids.enumerated() { index[id] = i }
        let rows = Tensor(shape: [ids.count, d])
        for p in parts {
            for (j, id) in p.ids.enumerated() {
                axpy(1, p.rows.data + j * d, rows.data + index[id]! * d, count: d)
            }
        }
        return SparseRowGradient(ids: ids, rows: rows, dimension: d)
    }
}
