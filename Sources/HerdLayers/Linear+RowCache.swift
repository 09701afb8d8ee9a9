import HerdTensor

/// A replica's buffers for the row cache: per row of a batch its key (words `offsets[i] ..<
/// offsets[i+1]` of `keys`), hash and cached entry; the missed rows' gathered input, sparse terms
/// and raw results; the epilogue's row pointers.
final class RowCacheScratch {
    var keys: [UInt32] = []
    var offsets: [Int] = []
    var hashes: [UInt64] = []
    var found: [RowContributionCache.Entry?] = []
    var missRows: [Int] = []
    var missInput: [Float] = []
    var missRowStart: [Int32] = []
    var missColumns: [Int32] = []
    var missValues: [Float] = []
    var missRaw: [Float] = []
    var rows: [UnsafePointer<Float>] = []
    var seen = Set<ObjectIdentifier>()
}

/// The first layer's row cache on the fused hoisting path (`rowCache`, inference only):
///
/// ```
/// key(b) = [plan id] ++ bits(xg[b, :]) ++ [(column, bits(value)) for each sparse term of row b]
/// r[b] [O] = xg[b]·Wgᵀ + Σ_terms value · Wᵀ[column, :]      (FP32, no bias: cached under key(b))
/// y[b] = act(r[b] + shared)                                  (hit or miss alike)
/// ```
///
/// Misses run `herd_f32_gemm_packed_sparse` without bias or activation (its raw accumulators,
/// the same operations in the same order as with them), then every row gets the kernel's own
/// epilogue (`PackedF32Weight.rowsBiasEpilogue`): the output equals the uncached path's bit for bit.
///
/// NOTE: a recommend request's candidates are the user's recall results, and popular items come
/// back for many users: an item row's share of the first layer is the same in every request whose
/// plan (set of uniform dense columns) matches, so it is computed once and reused. The key holds
/// every value that entered `r[b]`, so a hit is exact whatever assembled the batch; the cache
/// belongs to the layer object (a reloaded model builds new layers, hence a new cache) and frozen
/// weights never change, so no entry is ever stale.
extension Linear {
    /// The id of plan `p` in `cache` (registered once per plan; nil: not cached).
    func rowCacheID(_ p: UniformColumnsPlan, _ cache: RowContributionCache) -> UInt32? {
        let c = ObjectIdentifier(cache)
        if let r = p.rowCacheID, r.cache == c { return r.id }
        let id = cache.planID(p.denseUniform)
        p.rowCacheID = (c, id)
        return id
    }

    /// The fused forward through the cache (`forwardFused`'s sparse terms already collected for
    /// all `b` rows). Returns the multiply–adds to add to the plain GEMM's `b·|G|·O` (the missed
    /// rows' terms, less the hit rows' product).
    func forwardFusedCached(_ b: Int, _ y: Tensor, xg: Tensor?, plan p: UniformColumnsPlan, id: UInt32,
                            cache: RowContributionCache, output ob: BF16Buffer?) -> Int {
        let o = outputs, g = xg?.columns ?? 0
        let sc = rowCacheScratch ?? RowCacheScratch()
        rowCacheScratch = sc
        // Keys and hashes.
        sc.keys.removeAll(keepingCapacity: true)
        sc.offsets.removeAll(keepingCapacity: true)
        sc.hashes.removeAll(keepingCapacity: true)
        sc.offsets.append(0)
        for s in 0..<b {
            sc.keys.append(id)
            if let xg {
                let row = UnsafeRawPointer(xg.data + s * g).assumingMemoryBound(to: UInt32.self)
                sc.keys.append(contentsOf: UnsafeBufferPointer(start: row, count: g))
            }
            for e in Int(sparseRowStart[s])..<Int(sparseRowStart[s + 1]) {
                sc.keys.append(UInt32(bitPattern: sparseTermColumns[e]))
                sc.keys.append(sparseTermValues[e].bitPattern)
            }
            sc.offsets.append(sc.keys.count)
        }
        sc.keys.withUnsafeBufferPointer { kb in
            for s in 0..<b { sc.hashes.append(RowContributionCache.hash(UnsafeBufferPointer(rebasing: kb[sc.offsets[s]..<sc.offsets[s + 1]]))) }
            sc.offsets.withUnsafeBufferPointer { ob in
                sc.hashes.withUnsafeBufferPointer { hb in cache.lookup(count: b, keys: kb, offsets: ob, hashes: hb, into: &sc.found) }
            }
        }
        // Misses: their gathered input and sparse terms, then the kernel without bias or activation.
        sc.missRows.removeAll(keepingCapacity: true)
        for s in 0..<b where sc.found[s] == nil { sc.missRows.append(s) }
        let m = sc.missRows.count
        var terms = 0
        if m > 0 {
            sc.missInput.removeAll(keepingCapacity: true)
            sc.missRowStart.removeAll(keepingCapacity: true)
            sc.missColumns.removeAll(keepingCapacity: true)
            sc.missValues.removeAll(keepingCapacity: true)
            sc.missRowStart.append(0)
            for s in sc.missRows {
                if let xg { sc.missInput.append(contentsOf: UnsafeBufferPointer(start: xg.data + s * g, count: g)) }
                for e in Int(sparseRowStart[s])..<Int(sparseRowStart[s + 1]) {
                    sc.missColumns.append(sparseTermColumns[e])
                    sc.missValues.append(sparseTermValues[e])
                }
                sc.missRowStart.append(Int32(sc.missColumns.count))
            }
            terms = sc.missColumns.count
            if sc.missRaw.count < m * o { sc.missRaw = [Float](repeating: 0, count: m * o) }
            weightT.withUnsafeBufferPointer { wt in
                sc.missInput.withUnsafeBufferPointer { xa in
                    sc.missRowStart.withUnsafeBufferPointer { rs in
                        sc.missColumns.withUnsafeBufferPointer { tc in
                            sc.missValues.withUnsafeBufferPointer { tv in
                                sc.missRaw.withUnsafeMutableBufferPointer { raw in
                                    PackedF32Weight.multiplySparse(m: m, n: o, weight: p.packedGemmWeight, a: g > 0 ? xa.baseAddress : nil, lda: g,
                                                                   rowStart: terms > 0 ? rs.baseAddress : nil, columns: tc.baseAddress, values: tv.baseAddress,
                                                                   transposed: wt.baseAddress, ldt: weightTStride, bias: nil, relu: false,
                                                                   c: raw.baseAddress, ldc: o, output: nil)
                                }
                            }
                        }
                    }
                }
            }
        }
        // Every row's epilogue (bias = the hoisted share, activation, FP32 and/or BF16 stores).
        sc.missRaw.withUnsafeBufferPointer { rawb in
            let raw = rawb.baseAddress!
            sc.rows.removeAll(keepingCapacity: true)
            sc.seen.removeAll(keepingCapacity: true)
            var k = 0, repeated = 0
            for s in 0..<b {
                if let e = sc.found[s] {
                    if !sc.seen.insert(ObjectIdentifier(e)).inserted { repeated += 1 }
                    sc.rows.append(UnsafePointer(e.values))
                } else {
                    sc.rows.append(raw + k * o)
                    k += 1
                }
            }
            shared.withUnsafeBufferPointer { sh in
                sc.rows.withUnsafeBufferPointer { rp in
                    PackedF32Weight.rowsBiasEpilogue(m: b, n: o, rows: rp.baseAddress!, bias: sh.baseAddress, relu: activation == .relu,
                                                     c: omitsFP32Output && ob != nil ? nil : y.data, ldc: o, output: ob)
                }
            }
            // The misses' raw rows into the cache (entries made outside its lock).
            var new: [RowContributionCache.Entry] = []
            if m > 0 {
                new.reserveCapacity(m)
                sc.keys.withUnsafeBufferPointer { kb in
                    for (k, s) in sc.missRows.enumerated() {
                        new.append(RowContributionCache.Entry(hash: sc.hashes[s], key: UnsafeBufferPointer(rebasing: kb[sc.offsets[s]..<sc.offsets[s + 1]]),
                                                              values: raw + k * o, count: o))
                    }
                }
            }
            cache.insert(new, repeatedInBatch: repeated)
        }
        // NOTE: release the hit entries now (an evicted entry's memory lives while referenced).
        sc.found.removeAll(keepingCapacity: true)
        sc.rows.removeAll(keepingCapacity: true)
        return terms * o - (b - m) * g * o
    }
}
