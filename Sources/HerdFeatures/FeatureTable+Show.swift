import Foundation

extension FeatureTable: CustomStringConvertible {
    /// The first `n` rows as an aligned text table (Friesian `show`), long values cut to
    /// `width` characters; a last line gives the size.
    public func show(_ n: Int = 20, width: Int = 24) -> String {
        let shown = min(n, rowCount)
        func cut(_ s: String) -> String { s.count > width ? String(s.prefix(width - 1)) + "…" : s }
        var cells = [names.map(cut)]
        for r in 0..<shown { cells.append(columns.map { cut($0[r].description) }) }
        let widths = (0..<columnCount).map { c in cells.map { $0[c].count }.max() ?? 0 }
        var lines = cells.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: " | ")
        }
        lines.insert(widths.map { String(repeating: "-", count: $0) }.joined(separator: "-+-"), at: 1)
        lines.append("\(rowCount) rows × \(columnCount) columns" + (shown < rowCount ? " (first \(shown) shown)" : ""))
        return lines.joined(separator: "\n")
    }

    public var description: String { show(5) }
}

extension FeatureTable {
    /// Rows sorted by `columns` (stable; the first column first), ascending or descending;
    /// nulls first when ascending, last when descending (Spark's defaults). List columns cannot
    /// be sort keys.
    public func orderBy(_ columns: [String], ascending: Bool = true) throws -> FeatureTable {
        let keys = try columns.map { try requireScalar($0) }
        func compare(_ c: Column, _ a: Int, _ b: Int) -> Int {
            let na = c.isNull(a), nb = c.isNull(b)
            if na || nb { return na == nb ? 0 : (na ? -1 : 1) }
            switch c.data {
            case .int64(let v): return v[a] == v[b] ? 0 : (v[a] < v[b] ? -1 : 1)
            case .double(let v): return v[a] == v[b] ? 0 : (v[a] < v[b] ? -1 : 1)
            case .string(let s):
                let x = s.bytes[s.offsets[a]..<s.offsets[a + 1]], y = s.bytes[s.offsets[b]..<s.offsets[b + 1]]
                return x.elementsEqual(y) ? 0 : (x.lexicographicallyPrecedes(y) ? -1 : 1)
            case .list: return 0
            }
        }
        let order = (0..<rowCount).sorted { a, b in
            for c in keys {
                let r = compare(c, a, b)
                if r != 0 { return ascending ? r < 0 : r > 0 }
            }
            return a < b
        }
        return gather(order)
    }
}
