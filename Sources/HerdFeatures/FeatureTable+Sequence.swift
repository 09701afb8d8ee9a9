import HerdTensor
import Foundation

extension FeatureTable {
    /// Friesian `add_negative_samples`: every row is kept with `label = 1` and followed by
    /// `negNum` copies with `label = 0` and a random item id, uniform in `1..<itemSize` and
    /// different from the row's item (ids start at 1; 0 is the unknown id). Deterministic for a
    /// seed. The item column must be int64 without nulls; the label column is added or replaced.
    public func addNegativeSamples(
        itemSize: Int, itemColumn: String = "item", labelColumn: String = "label", negNum: Int = 1, seed: UInt64 = 0
    ) throws -> FeatureTable {
        guard itemSize >= 3 else { throw FeatureError.invalidArgument("addNegativeSamples: itemSize must be >= 3 (ids 1..<itemSize, two at least), got \(itemSize)") }
        guard negNum >= 1 else { throw FeatureError.invalidArgument("addNegativeSamples: negNum must be >= 1, got \(negNum)") }
        let c = try column(itemColumn)
        guard let items = c.int64Values, c.nullCount == 0 else {
            throw FeatureError.wrongType(column: itemColumn, type: c.type, expected: "int64 without nulls")
        }
        var rng = SplitMix64(seed: seed)
        var rows: [Int] = [], newItems: [Int64] = [], labels: [Int64] = []
        let span = UInt64(itemSize - 1)
        for r in 0..<rowCount {
            rows.append(r)
            newItems.append(items[r])
            labels.append(1)
            for _ in 0..<negNum {
                var x: Int64
                repeat { x = Int64(1 + rng.next() % span) } while x == items[r]
                rows.append(r)
                newItems.append(x)
                labels.append(0)
            }
        }
        return try gather(rows)
            .with(itemColumn, Column(type: .int64, data: .int64(newItems)))
            .with(labelColumn, Column(type: .int64, data: .int64(labels)))
    }

    /// Friesian `add_hist_seq`: for each row, the values of `columns` in the same user's earlier
    /// rows (ordered by `sortColumn`, ties by row order), the most recent `maxLen` of them, oldest
    /// first, as new list columns `<column>_hist_seq`. Only rows with at least `minLen` earlier
    /// rows are kept (in their original order). Null history values read as 0 / "" (list
    /// elements carry no nulls).
    public func addHistSeq(
        _ columns: [String], userColumn: String, sortColumn: String, minLen: Int = 1, maxLen: Int = 100
    ) throws -> FeatureTable {
        guard minLen >= 0, maxLen >= 1, minLen <= maxLen else {
            throw FeatureError.invalidArgument("addHistSeq: need 0 <= minLen <= maxLen and maxLen >= 1, got \(minLen), \(maxLen)")
        }
        let (sortKey, sortValidity) = try numeric(sortColumn)
        let values = try columns.map { name -> Column in
            let c = try column(name)
            guard c.type.listType != nil else { throw FeatureError.wrongType(column: name, type: c.type, expected: "a scalar column") }
            return c
        }
        let g = Grouping([try column(userColumn)], rows: rowCount)
        // Rows of each user, sorted by time (stable).
        var perUser = [[Int]](repeating: [], count: g.count)
        for r in 0..<rowCount { perUser[g.group[r]].append(r) }
        var histStart = [Int](repeating: 0, count: rowCount)  // into `order`
        var histEnd = [Int](repeating: -1, count: rowCount)
        var order: [Int] = []
        order.reserveCapacity(rowCount)
        for rows in perUser {
            let sorted = rows.sorted { a, b in
                let ka = sortValidity?[a] ?? true ? sortKey[a] : -.infinity
                let kb = sortValidity?[b] ?? true ? sortKey[b] : -.infinity
                return ka != kb ? ka < kb : a < b
            }
            let base = order.count
            order += sorted
            for (i, r) in sorted.enumerated() {
                histStart[r] = base + Swift.max(0, i - maxLen)
                histEnd[r] = base + i
            }
        }
        let kept = (0..<rowCount).filter { histEnd[$0] - histStart[$0] >= minLen }
        var offsets = [0]
        var elements: [Int] = []
        for r in kept {
            elements += order[histStart[r]..<histEnd[r]]
            offsets.append(elements.count)
        }
        var out = gather(kept)
        for (name, c) in zip(columns, values) {
            let list = Column(type: c.type.listType!, data: .list(offsets: offsets, values: Column.gather(c.data, elements)))
            out = try out.with(name + "_hist_seq", list)
        }
        return out
    }
}
