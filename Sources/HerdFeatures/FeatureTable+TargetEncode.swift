import HerdTensor
import Foundation

/// Fitted target statistics of `targetEncode`, re-appliable to another table (test split,
/// serving): a row whose categorical key was seen gets `(sum + mean·smooth) / (count + smooth)`
/// over the whole fitting table; an unseen key gets the global target mean.
public struct TargetEncoding: Sendable, Equatable, Codable {
    public struct Group: Sendable, Equatable, Codable {
        /// The categorical columns forming the key.
        public var columns: [String]
        /// Serialised keys (`Column.appendKey` bytes, base64) and their row counts.
        public var keys: [String]
        public var counts: [Int]
        /// Per target column (same order as `targets`): the target sum of each key.
        public var sums: [[Double]]
    }

    public var targets: [String]
    /// Global mean of each target over the fitting table.
    public var targetMeans: [Double]
    public var smooth: Double
    public var groups: [Group]

    /// Output column name: `<c1>_<c2>…_te_<target>` (Friesian's naming).
    public static func outputName(_ columns: [String], _ target: String) -> String {
        columns.joined(separator: "_") + "_te_" + target
    }

    public func apply(_ table: FeatureTable) throws -> FeatureTable {
        var out = table
        for g in groups {
            var lookup = KeyTable(capacity: g.keys.count)
            for k in g.keys {
                guard let bytes = Data(base64Encoded: k) else { throw FeatureError.invalidArgument("target encoding of \(g.columns): a key is not base64") }
                _ = bytes.withUnsafeBytes { lookup.insert($0) }
            }
            let cs = try g.columns.map { try table.column($0) }
            var scratch: [UInt8] = []
            var values = [[Double]](repeating: [Double](repeating: 0, count: table.rowCount), count: targets.count)
            for r in 0..<table.rowCount {
                scratch.removeAll(keepingCapacity: true)
                for c in cs { c.appendKey(r, to: &scratch) }
                let k = scratch.withUnsafeBytes { lookup.find($0) }
                for t in 0..<targets.count {
                    let m = targetMeans[t]
                    values[t][r] = k.map { (g.sums[t][$0] + m * smooth) / (Double(g.counts[$0]) + smooth) } ?? m
                }
            }
            for (t, target) in targets.enumerated() {
                out = try out.with(Self.outputName(g.columns, target), Column(type: .double, data: .double(values[t])))
            }
        }
        return out
    }
}

extension FeatureTable {
    /// Friesian `target_encode`: for each group of categorical columns and each target column, a
    /// new double column `<cats>_te_<target>` holding the smoothed target mean of the row's
    /// category: `(sum + mean·smooth) / (count + smooth)`, `mean` the global target mean.
    ///
    /// Out of fold (k-fold, `kfold ≥ 2`): each row draws a fold in `0..<kfold` (seeded) and is
    /// encoded with statistics of the other folds only, so a row's own label never leaks into its
    /// feature. `kfold == 1` uses the whole table. The returned `TargetEncoding` holds the
    /// whole-table statistics, for other tables. Null targets are not counted; a null category
    /// is a category of its own.
    public func targetEncode(
        _ groups: [[String]], targets: [String], smooth: Double = 20, kfold: Int = 2, seed: UInt64 = 0
    ) throws -> (FeatureTable, TargetEncoding) {
        guard kfold >= 1 else { throw FeatureError.invalidArgument("targetEncode: kfold must be >= 1, got \(kfold)") }
        guard smooth >= 0 else { throw FeatureError.invalidArgument("targetEncode: smooth must be >= 0") }
        guard !targets.isEmpty, !groups.isEmpty, groups.allSatisfy({ !$0.isEmpty }) else {
            throw FeatureError.invalidArgument("targetEncode: give categorical column groups and target columns")
        }
        let ts = try targets.map { try numeric($0) }
        var means: [Double] = []
        for (v, validity) in ts {
            var s = 0.0, n = 0.0
            for r in 0..<rowCount where validity?[r] ?? true { s += v[r]; n += 1 }
            means.append(n > 0 ? s / n : 0)
        }
        var rng = SplitMix64(seed: seed)
        let fold = (0..<rowCount).map { _ in kfold == 1 ? 0 : Int(rng.next() % UInt64(kfold)) }
        var out = self
        var fitted: [TargetEncoding.Group] = []
        for cols in groups {
            let g = Grouping(try cols.map { try column($0) }, rows: rowCount)
            // Per key and fold: counts and sums (fold-major), then totals.
            var counts = [Int](repeating: 0, count: g.count * kfold)
            var sums = [[Double]](repeating: [Double](repeating: 0, count: g.count * kfold), count: targets.count)
            var countsByTarget = [[Int]](repeating: [Int](repeating: 0, count: g.count * kfold), count: targets.count)
            for r in 0..<rowCount {
                let cell = g.group[r] * kfold + fold[r]
                counts[cell] += 1
                for t in 0..<targets.count where ts[t].1?[r] ?? true {
                    sums[t][cell] += ts[t].0[r]
                    countsByTarget[t][cell] += 1
                }
            }
            var totalCount = [Int](repeating: 0, count: g.count)
            var totalSums = [[Double]](repeating: [Double](repeating: 0, count: g.count), count: targets.count)
            var totalTargetCounts = [[Int]](repeating: [Int](repeating: 0, count: g.count), count: targets.count)
            for k in 0..<g.count {
                for f in 0..<kfold {
                    totalCount[k] += counts[k * kfold + f]
                    for t in 0..<targets.count {
                        totalSums[t][k] += sums[t][k * kfold + f]
                        totalTargetCounts[t][k] += countsByTarget[t][k * kfold + f]
                    }
                }
            }
            for (t, target) in targets.enumerated() {
                var encoded = [Double](repeating: 0, count: rowCount)
                for r in 0..<rowCount {
                    let k = g.group[r], cell = k * kfold + fold[r]
                    let s = totalSums[t][k] - (kfold > 1 ? sums[t][cell] : 0)
                    let n = Double(totalTargetCounts[t][k] - (kfold > 1 ? countsByTarget[t][cell] : 0))
                    encoded[r] = (s + means[t] * smooth) / (n + smooth)
                    if n + smooth == 0 { encoded[r] = means[t] }
                }
                out = try out.with(TargetEncoding.outputName(cols, target), Column(type: .double, data: .double(encoded)))
            }
            fitted.append(.init(
                columns: cols,
                keys: (0..<g.count).map { Data(g.keys.key($0)).base64EncodedString() },
                counts: (0..<g.count).map { totalTargetCounts[0][$0] },
                sums: totalSums))
            // NOTE: the fitted state keeps one count per key for all targets, so targets encoded
            // together must be null in the same rows.
            if targets.count > 1, totalTargetCounts.contains(where: { $0 != totalTargetCounts[0] }) {
                throw FeatureError.invalidArgument("targetEncode: targets \(targets) have nulls in different rows; encode them one at a time")
            }
        }
        return (out, TargetEncoding(targets: targets, targetMeans: means, smooth: smooth, groups: fitted))
    }
}
