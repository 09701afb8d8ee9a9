import HerdData

extension Tower {
    /// The distinct rows of `batch` as this tower sees them (its sparse inputs' bags and its
    /// dense columns): `distinct` holds the first row of each group in order of appearance,
    /// `map[s]` the group of row `s`. Nil when every row is distinct.
    ///
    /// NOTE: rows are grouped by a 64-bit hash and then compared exactly with the group's first
    /// row; a row whose hash collides with an unequal row is kept as its own group (never merged).
    public func distinctRows(_ batch: Batch) -> (distinct: [Int], map: [Int])? {
        let b = batch.count
        guard b > 1 else { return nil }
        let sparse = config.inputs, dense = config.denseFeatures
        let kj = batch.sparse, fd = batch.dense.columns, d = batch.dense.data
        return kj.offsets.withUnsafeBufferPointer { off in
            kj.ids.withUnsafeBufferPointer { ids in
                func hash(_ s: Int) -> UInt64 {
                    var h: UInt64 = 0x9E37_79B9_7F4A_7C15
                    func mix(_ v: UInt64) {
                        h = (h ^ v) &* 0xFF51_AFD7_ED55_8CCD
                        h ^= h >> 32
                    }
                    for f in sparse {
                        let lo = Int(off[f * b + s]), hi = Int(off[f * b + s + 1])
                        mix(UInt64(hi - lo) | 0x1_0000_0000)
                        for i in lo..<hi { mix(UInt64(UInt32(bitPattern: ids[i]))) }
                    }
                    for c in dense { mix(UInt64(d[s * fd + c].bitPattern)) }
                    return h
                }
                func equal(_ r: Int, _ s: Int) -> Bool {
                    for f in sparse {
                        let lr = Int(off[f * b + r]), hr = Int(off[f * b + r + 1])
                        let ls = Int(off[f * b + s]), hs = Int(off[f * b + s + 1])
                        guard hr - lr == hs - ls else { return false }
                        for i in 0..<(hr - lr) where ids[lr + i] != ids[ls + i] { return false }
                    }
                    for c in dense where d[r * fd + c].bitPattern != d[s * fd + c].bitPattern { return false }
                    return true
                }
                var first = [UInt64: Int](minimumCapacity: b)
                var distinct: [Int] = [], map = [Int](repeating: 0, count: b)
                distinct.reserveCapacity(b)
                for s in 0..<b {
                    let h = hash(s)
                    if let g = first[h], equal(distinct[g], s) {
                        map[s] = g
                    } else {
                        if first[h] == nil { first[h] = distinct.count }
                        map[s] = distinct.count
                        distinct.append(s)
                    }
                }
                return distinct.count < b ? (distinct, map) : nil
            }
        }
    }
}
