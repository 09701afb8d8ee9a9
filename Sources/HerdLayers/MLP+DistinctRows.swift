import Foundation
import HerdTensor

/// Inference (`dedupesRows`): a batch's rows equal to an earlier row (bit for bit, every input
/// column) are run through the MLP once and their output copied.
///
/// ```
/// x [B, I] → distinct rows d (first of each group, in order), map [B] → group
/// y [B, O] : y[s] = MLP(x[d])[map[s]]      (B' = |d| rows through the layers instead of B)
/// ```
///
/// NOTE: a recommend request's candidates often share their ranking features: recall returns
/// different items whose feature rows (without the item id, which the wide part reads) are equal,
/// e.g. ≈ 31 % of canK-200 rows on the serving workspace (`herd_ranking_row_cache_repeated_in_batch_total`).
/// Each row's output depends only on that row: the first layer's uniform columns are the same
/// over the distinct rows as over the batch, and the packed kernels compute a row independently of
/// the others, so the hidden layers' outputs are the full batch's bit for bit. The logit layer
/// (`O = 1`, OpenBLAS) picks its summation order by the row count, so logits agree within float
/// rounding (`InferenceFreezeTests`: ≤ 1e-5 relative; seen: a few ulps). A batch of one distinct
/// row runs two copies of it, so the first layer keeps its batch (hoisting) path.
extension MLP {
    /// Groups of equal rows of `x` (bit for bit, every column; `RowGroups`). Nil when every row
    /// is distinct.
    static func distinctRows(_ x: Tensor) -> RowGroups? {
        let n = x.columns
        return x.data.withMemoryRebound(to: UInt32.self, capacity: x.rows * n) { w in
            RowGroups.of(count: x.rows, hash: { s in
                let row = w + s * n
                var h = RowGroups.seed, c = 0
                while c + 1 < n {
                    h = RowGroups.mix(h, UInt64(row[c]) | UInt64(row[c + 1]) << 32)
                    c += 2
                }
                if c < n { h = RowGroups.mix(h, UInt64(row[c])) }
                return h
            }, equal: { r, s in memcmp(w + r * n, w + s * n, n * 4) == 0 })
        }
    }

    /// `forward` through the distinct rows `d` only, the output scattered to every row.
    func forwardDistinct(_ x: Tensor, _ d: RowGroups) -> Tensor {
        let b = x.rows, n = x.columns
        // At least two rows (see above): the one distinct row twice.
        let rows = d.distinct.count >= 2 ? d.distinct : [d.distinct[0], d.distinct[0]]
        let xu = Tensor.ensure(distinctInput, shape: [rows.count, n])
        distinctInput = xu
        for (k, s) in rows.enumerated() { (xu.data + k * n).update(from: x.data + s * n, count: n) }
        let hu = forwardRows(xu)
        let o = hu.columns
        let y = Tensor.ensure(distinctOutput, shape: [b, o])
        distinctOutput = y
        for s in 0..<b { (y.data + s * o).update(from: hu.data + d.map[s] * o, count: o) }
        return y
    }
}
