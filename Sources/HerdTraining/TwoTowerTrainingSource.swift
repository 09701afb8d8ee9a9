import Foundation
import HerdData
import HerdFeatures
import HerdModels
import HerdTensor

/// How a two-tower model gets its negatives at training time (the spec's `"negatives"` object).
public struct NegativeSampling: Sendable, Equatable {
    /// Which items are drawn as negatives.
    public enum Distribution: String, Sendable, CaseIterable {
        /// Every row of the item table equally likely.
        case uniform
        /// In proportion to the item's count among the training positives (items never liked are
        /// never drawn).
        case popularity
    }

    /// What becomes of the table's own label-0 rows (e.g. MovieLens ratings < 4).
    public enum TableNegatives: String, Sendable, CaseIterable {
        /// Kept as negatives beside the sampled ones.
        case keep
        /// Dropped: the model learns "interacted vs not" from the positives and the samples only.
        case drop
    }

    /// Items drawn per positive row, each epoch anew (0: none, e.g. for in-batch softmax).
    public var perPositive: Int
    public var distribution: Distribution = .uniform
    public var tableNegatives: TableNegatives = .drop

    public init(perPositive: Int, distribution: Distribution = .uniform, tableNegatives: TableNegatives = .drop) {
        self.perPositive = perPositive
        self.distribution = distribution
        self.tableNegatives = tableNegatives
    }
}

/// A `BatchSource` whose epoch is part of the batch: sources that draw something anew every epoch.
public protocol EpochBatchSource: BatchSource {
    /// The rows at `indices` of epoch `epoch`, in that order, as one batch.
    func batch(rows indices: [Int], epoch: Int) -> Batch
}

extension EpochBatchSource {
    public func batch(rows indices: [Int]) -> Batch { batch(rows: indices, epoch: 0) }
    public func batch(range: Range<Int>) -> Batch { batch(rows: Array(range), epoch: 0) }

    /// Batch `index` of epoch `epoch` (`seed == nil`: file order), as `BatchSource.batch(at:…)`
    /// but drawn for that epoch.
    public func epochBatch(at index: Int, size: Int, seed: UInt64?, epoch: Int, blockRows: Int? = nil) -> Batch {
        precondition(index >= 0 && index < batchCount(size: size), "batch \(index) outside 0..<\(batchCount(size: size))")
        let order = rowOrder(seed: seed, epoch: epoch, blockRows: blockRows)
        return batch(rows: ((index * size)..<min((index + 1) * size, rows)).map { order[$0] }, epoch: epoch)
    }
}

extension BatchSource {
    /// Batch `index` of epoch `epoch`, drawn for that epoch when the source is an `EpochBatchSource`.
    public func trainingBatch(at index: Int, size: Int, seed: UInt64?, epoch: Int, blockRows: Int? = nil) -> Batch {
        if let s = self as? any EpochBatchSource { return s.epochBatch(at: index, size: size, seed: seed, epoch: epoch, blockRows: blockRows) }
        return batch(at: index, size: size, seed: seed, epoch: epoch, blockRows: blockRows)
    }
}

/// Two-tower training rows: the training table's positives (and, if kept, its negatives), each
/// positive followed by `perPositive` items drawn from the item table with label 0, and
/// optionally the log sampling probability of each row's item as an extra last dense column (for
/// in-batch softmax with logQ correction).
///
/// ```
/// rows 0 ..< R            the table's rows kept (positives, plus label-0 rows when kept)
/// rows R + p·N + k        negative k of positive p (k < N): user features of positive p,
///                         item features of item-table row draw(seed, epoch, p, k), label 0
/// dense [B, Fd (+1)]      the spec's dense columns, then log q(item) when `logQ` is on
/// ```
///
/// NOTE: the item tower's columns of a negative come from the item table row itself (the same
/// encoded features the item embeddings are computed from), not from a joined table on disk; a
/// draw is a pure function of `(seed, epoch, p, k)`, so an epoch's batches can be computed in any
/// order and a resumed run sees the same negatives. A draw equal to the positive's own item is
/// redrawn (up to 16 times; never when the item table has one item).
public final class TwoTowerTrainingSource: EpochBatchSource, @unchecked Sendable {
    /// All training rows (the spec's features and labels).
    public let table: Batch
    /// Item-table rows: the item tower's features (sparse `itemSparse[k]` is feature k here).
    public let items: Batch
    /// The features of `table` that the item tower reads (sparse, dense), replaced for negatives.
    public let itemSparse: [Int]
    public let itemDense: [Int]
    public let sampling: NegativeSampling
    public let seed: UInt64
    /// Whether batches carry log q(item) as their last dense column.
    public let logQ: Bool
    /// Rows of `table` served as themselves (`0..<R`).
    public let kept: [Int]
    /// Rows of `table` that are positives (the p of a negative).
    public let positives: [Int]
    /// Item-table row of each training row's item (-1: not in the item table).
    let itemRowOfRow: [Int]
    /// log q per item-table row: log(count among positives / positives) (log of the smallest
    /// probability for items never liked, so the correction stays finite).
    public let logQOfItem: [Float]
    /// Cumulative sampling weights over item-table rows (popularity), or empty (uniform).
    private let cumulative: [Double]

    public var rows: Int { kept.count + positives.count * sampling.perPositive }

    /// - Parameters:
    ///   - table: the training rows, labelled; `tableItemKeys[r]` is row r's item key.
    ///   - items: the item table's rows with the item tower's features only (sparse feature k =
    ///     `table`'s `itemSparse[k]`, dense column k = `table`'s `itemDense[k]`); `itemKeys[i]` is
    ///     row i's key.
    public init(table: Batch, tableItemKeys: [Int64], items: Batch, itemKeys: [Int64], itemSparse: [Int], itemDense: [Int],
                sampling: NegativeSampling, seed: UInt64, logQ: Bool) throws {
        guard table.labels.count == table.count else { throw TrainingError("two-tower negatives need a labelled training table") }
        guard tableItemKeys.count == table.count, itemKeys.count == items.count else {
            throw TrainingError("item keys: \(tableItemKeys.count) for \(table.count) training rows, \(itemKeys.count) for \(items.count) items")
        }
        guard items.count > 0 else { throw TrainingError("the item table has no rows to draw negatives from") }
        guard items.sparse.features == itemSparse.count, items.dense.columns == itemDense.count else {
            throw TrainingError("the item rows carry \(items.sparse.features) sparse and \(items.dense.columns) dense features, the item tower reads \(itemSparse.count) and \(itemDense.count)")
        }
        guard sampling.perPositive >= 0 else { throw TrainingError("negatives per positive must be >= 0, got \(sampling.perPositive)") }
        self.table = table
        self.items = items
        self.itemSparse = itemSparse
        self.itemDense = itemDense
        self.sampling = sampling
        self.seed = seed
        self.logQ = logQ
        var rowOfKey: [Int64: Int] = [:]
        for (i, k) in itemKeys.enumerated() where rowOfKey[k] == nil { rowOfKey[k] = i }
        itemRowOfRow = tableItemKeys.map { rowOfKey[$0] ?? -1 }
        positives = (0..<table.count).filter { table.labels[$0] >= 0.5 }
        guard !positives.isEmpty else { throw TrainingError("the training table has no positive rows (label 1) to train a two-tower model on") }
        kept = sampling.tableNegatives == .keep ? Array(0..<table.count) : positives
        var counts = [Double](repeating: 0, count: items.count)
        for p in positives where itemRowOfRow[p] >= 0 { counts[itemRowOfRow[p]] += 1 }
        let total = Double(positives.count)
        let floor = Float(log(0.5 / total))
        logQOfItem = counts.map { $0 > 0 ? Float(log($0 / total)) : floor }
        if sampling.distribution == .popularity {
            guard counts.contains(where: { $0 > 0 }) else { throw TrainingError("popularity sampling: no positive's item is in the item table") }
            var sum = 0.0
            cumulative = counts.map { sum += $0; return sum }
        } else {
            cumulative = []
        }
    }

    /// The item-table row drawn as negative `k` of the `p`-th positive in epoch `epoch`.
    public func negativeItem(positive p: Int, k: Int, epoch: Int) -> Int {
        var rng = SplitMix64(seed: seed ^ (UInt64(bitPattern: Int64(epoch)) &* 0x9E37_79B9_7F4A_7C15)
                                  ^ (UInt64(p * max(sampling.perPositive, 1) + k) &* 0xD1B5_4A32_D192_ED03))
        let own = itemRowOfRow[positives[p]]
        var item = 0
        for _ in 0..<16 {
            item = draw(&rng)
            if item != own || items.count == 1 { break }
        }
        return item
    }

    private func draw(_ rng: inout SplitMix64) -> Int {
        if cumulative.isEmpty { return Int(rng.next() % UInt64(items.count)) }
        let x = rng.nextDouble() * cumulative.last!
        var lo = 0, hi = cumulative.count - 1  // first index with cumulative > x
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] > x { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// Where virtual row `v` comes from: a table row (item -1: the row's own item features) or a
    /// positive's user features with an item-table row.
    func origin(of v: Int, epoch: Int) -> (row: Int, item: Int) {
        precondition(v >= 0 && v < rows, "row \(v) outside 0..<\(rows)")
        if v < kept.count { return (kept[v], -1) }
        let n = sampling.perPositive, w = v - kept.count
        return (positives[w / n], negativeItem(positive: w / n, k: w % n, epoch: epoch))
    }

    public func batch(rows indices: [Int], epoch: Int) -> Batch {
        let b = indices.count
        let origins = indices.map { origin(of: $0, epoch: epoch) }
        let itemFeature = Dictionary(uniqueKeysWithValues: itemSparse.enumerated().map { ($1, $0) })
        var offsets: [Int32] = [0], ids: [Int32] = []
        offsets.reserveCapacity(table.sparse.features * b + 1)
        for f in 0..<table.sparse.features {
            let local = itemFeature[f]
            for (r, i) in origins {
                if let local, i >= 0 { ids.append(contentsOf: items.sparse.bag(feature: local, row: i)) } else { ids.append(contentsOf: table.sparse.bag(feature: f, row: r)) }
                offsets.append(Int32(ids.count))
            }
        }
        let fd = table.dense.columns, od = fd + (logQ ? 1 : 0), id = items.dense.columns
        let dense = Tensor(shape: [b, od])
        for (s, (r, i)) in origins.enumerated() {
            (dense.data + s * od).update(from: table.dense.data + r * fd, count: fd)
            if i >= 0 { for (k, c) in itemDense.enumerated() { dense.data[s * od + c] = items.dense.data[i * id + k] } }
            if logQ {
                let item = i >= 0 ? i : itemRowOfRow[r]
                dense.data[s * od + fd] = item >= 0 ? logQOfItem[item] : logQOfItem.min() ?? 0
            }
        }
        let labels = origins.map { $0.item >= 0 ? Float(0) : table.labels[$0.row] }
        return Batch(dense: dense, sparse: KeyedJagged(features: table.sparse.features, batchSize: b, offsets: offsets, ids: ids), labels: labels)
    }
}

extension TwoTowerTrainingSource {
    /// The source for a resolved two-tower spec: the training table's rows (`spec`'s features,
    /// the item key column `itemKey`), the item table (`itemKey` and the item tower's columns).
    /// `itemTableName` names the item table in messages.
    public convenience init(train: FeatureTable, items: FeatureTable, itemTableName: String, spec: BatchSpec, model: TwoTowerConfig,
                            itemKey: String, sampling: NegativeSampling, seed: UInt64) throws {
        let itemSpec = spec.subset(sparse: model.item.inputs, dense: model.item.denseFeatures)
        let missing = itemSpec.missingColumns(in: items, labelled: false) + (items.contains(itemKey) ? [] : [itemKey])
        guard missing.isEmpty else {
            throw TrainingError("\(itemTableName): no column \(missing.map { "\"\($0)\"" }.joined(separator: ", ")) for the item tower's negatives (its columns: \(items.names.joined(separator: ", ")))")
        }
        func keys(_ t: FeatureTable, _ name: String) throws -> [Int64] {
            let c = try t.column(itemKey)
            guard let v = c.int64Values else { throw TrainingError("\(name): the item key \"\(itemKey)\" has type \(c.type), expected int64 ids") }
            return v
        }
        let itemBatch: Batch
        do { itemBatch = try items.batch(itemSpec) } catch { throw TrainingError("\(itemTableName): \(error)") }
        try self.init(table: try train.batch(spec), tableItemKeys: try keys(train, "the training table"), items: itemBatch,
                      itemKeys: try keys(items, itemTableName), itemSparse: model.item.inputs, itemDense: model.item.denseFeatures,
                      sampling: sampling, seed: seed, logQ: model.logQColumn != nil)
    }
}

extension TwoTowerTrainingSource {
    /// Starts `model`'s per-item bias (`TwoTowerConfig.itemBiasFeature`) at each item's log
    /// popularity among the training positives, `log q_j − min log q` (0 for items never liked,
    /// and for ids not in the item table); returns the number of items set, 0 without a bias.
    ///
    /// NOTE: the bias's optimum under the logQ-corrected softmax is about log q_j (the item's
    /// marginal, which the unit vectors cannot carry); from zero, lazy Adam moves a row by about
    /// its learning rate per step the item appears in, so a few epochs leave it far below the
    /// several nats of the popularity range. The bias is trained from this start. Softmax and
    /// retrieval are unchanged by the constant shift.
    @discardableResult
    public func startItemBias(of model: TwoTower) -> Int {
        guard let bias = model.itemBias, let f = model.config.itemBiasFeature, let local = itemSparse.firstIndex(of: f),
              let low = logQOfItem.min() else { return 0 }
        let w = bias.tables[0].weight
        var set = 0
        for i in 0..<items.count {
            for id in items.sparse.bag(feature: local, row: i) where id >= 0 && Int(id) < w.rows {
                w[Int(id)] = logQOfItem[i] - low
                set += 1
            }
        }
        return set
    }
}
