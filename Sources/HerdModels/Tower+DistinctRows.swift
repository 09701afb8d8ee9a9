import HerdData
import HerdTensor

extension Tower {
    /// The distinct rows of `batch` as this tower sees them (its sparse inputs' bags and its
    /// dense columns; `RowGroups`: hashed, then compared exactly). Nil when every row is distinct.
    public func distinctRows(_ batch: Batch) -> RowGroups? {
        let b = batch.count
        let sparse = config.inputs, dense = config.denseFeatures
        let kj = batch.sparse, fd = batch.dense.columns, d = batch.dense.data
        return kj.offsets.withUnsafeBufferPointer { off in
            kj.ids.withUnsafeBufferPointer { ids in
                RowGroups.of(count: b, hash: { s in
                    var h = RowGroups.seed
                    for f in sparse {
                        let lo = Int(off[f * b + s]), hi = Int(off[f * b + s + 1])
                        h = RowGroups.mix(h, UInt64(hi - lo) | 0x1_0000_0000)
                        for i in lo..<hi { h = RowGroups.mix(h, UInt64(UInt32(bitPattern: ids[i]))) }
                    }
                    for c in dense { h = RowGroups.mix(h, UInt64(d[s * fd + c].bitPattern)) }
                    return h
                }, equal: { r, s in
                    for f in sparse {
                        let lr = Int(off[f * b + r]), hr = Int(off[f * b + r + 1])
                        let ls = Int(off[f * b + s]), hs = Int(off[f * b + s + 1])
                        guard hr - lr == hs - ls else { return false }
                        for i in 0..<(hr - lr) where ids[lr + i] != ids[ls + i] { return false }
                    }
                    for c in dense where d[r * fd + c].bitPattern != d[s * fd + c].bitPattern { return false }
                    return true
                })
            }
        }
    }
}
