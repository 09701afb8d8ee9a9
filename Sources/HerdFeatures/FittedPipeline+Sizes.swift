import Foundation

extension FittedPipeline {
    /// The cardinality of every categorical column the pipeline outputs (ids `0 ..< size`), for
    /// embedding and one-hot table sizes (Friesian's `categorical_sizes`):
    ///
    /// ```
    /// categorify            index size: indexed values + 1 (id 0 = null/unknown/rare), for every
    ///                       column of the index (a shared index gives its columns one size)
    /// keep_most_frequent    the size of the index its list was encoded with
    /// map_encode            largest id (mapping or default) + 1
    /// cut_bins              boundaries + 1 (bin count n: n + 2)
    /// hash_encode, cross_hash_encode     bins
    /// ```
    ///
    /// Follows `select`, `drop` and `rename`; a column overwritten by a non-categorical op
    /// (`not_null`, `list_length`, `count_encode` in place) loses its size. With `table` (the
    /// pipeline's output), only its int64 and int64-list columns are kept.
    public func categoricalSizes(in table: FeatureTable? = nil) -> [String: Int] {
        var sizes: [String: Int] = [:]
        for s in steps {
            switch (s.step.op, s.step.args, s.state) {
            case (.categorify, _, .indices(let indices)?):
                for index in indices { for c in index.columns { sizes[c] = index.size } }
            case (.keepMostFrequent, .count(let c, let outs), _):
                for (k, name) in c.enumerated() { sizes[outs?[k] ?? name] = sizes[name] }
            case (.notNull, .count(let c, let outs), _), (.listLength, .count(let c, let outs), _), (.countEncode, .count(let c, let outs), _):
                for (k, name) in c.enumerated() { sizes[outs?[k] ?? name] = nil }
            case (_, .mapEncode(let c, let mapping, let fallback), _):
                let size = Int(max(mapping.values.max() ?? 0, fallback)) + 1
                for name in c { sizes[name] = size }
            case (_, .cutBins(let c, let bins, let outs, _), _):
                for (k, name) in c.enumerated() { sizes[outs?[k] ?? name + "_bin"] = bins.count + 1 }
            case (_, .cutBinCount(let c, let n, let outs, _), _):
                for (k, name) in c.enumerated() { sizes[outs?[k] ?? name + "_bin"] = n + 2 }
            case (_, .hash(let c, let bins), _):
                for name in c { sizes[name] = bins }
            case (_, .cross(let c, let bins, let name), _):
                sizes[name ?? "crossed_" + c.joined(separator: "_")] = bins
            case (.drop, .columns(let c), _):
                for name in c { sizes[name] = nil }
            case (.select, .columns(let c), _):
                sizes = sizes.filter { c.contains($0.key) }
            case (_, .rename(let m), _):
                var renamed: [String: Int] = [:]
                for (name, size) in sizes { renamed[m[name] ?? name] = size }
                sizes = renamed
            default:
                break
            }
        }
        guard let table else { return sizes }
        return sizes.filter { name, _ in
            guard let c = try? table.column(name) else { return false }
            return c.type == .int64 || c.type == .int64List
        }
    }
}
