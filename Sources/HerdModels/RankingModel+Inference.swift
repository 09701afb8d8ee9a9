import HerdLayers

extension RankingModel {
    /// Inference only (serving): the dense layers derive their BF16 weights (bf16 precision) and
    /// transposed indicator blocks once instead of at every forward, and replicas made afterwards
    /// (`replica()`) share them. Call after the weights are loaded; the model (and its replicas)
    /// must not be trained afterwards (`backward` refuses). Models without such layers: no-op.
    ///
    /// `hoistUniformColumns` (default): the first layer of a deep MLP over the features (W&D,
    /// DeepFM, DCN) multiplies the input columns equal in every row of a batch — the user's
    /// columns when ranking one user's candidates — once per batch (`Linear.hoistsUniformColumns`);
    /// false keeps the plain per-row product (the reference in tests and benchmarks).
    public func freezeForInference(hoistUniformColumns: Bool = true) {
        let hoisted: [MLP]
        switch self {
        case let m as WideAndDeep: hoisted = [m.deepArch]
        case let m as DeepFM: hoisted = [m.deepArch]
        case let m as DCN: hoisted = [m.deepArch]
        default: hoisted = []
        }
        for mlp in inferenceMLPs {
            mlp.freezeForInference(hoistUniformColumns: hoistUniformColumns && hoisted.contains { $0 === mlp })
        }
    }

    /// Inference only (after `freezeForInference`, before `replica()`): a row cache of `bytes`
    /// (0: none) for the hoisting first layer of the deep MLP (W&D, DeepFM, DCN; see
    /// `Linear+RowCache.swift`), shared by replicas made afterwards. Returns it (nil: none — no
    /// such layer, or it does not hoist).
    @discardableResult
    public func setRowCache(bytes: Int) -> RowContributionCache? {
        rowCacheMLP?.setRowCache(bytes: bytes)
    }

    /// Inference only (after `freezeForInference`, before `replica()`): whether the deep MLP of
    /// W&D, DeepFM or DCN runs a batch's repeated rows once (`MLP.dedupesRows`; logits within
    /// float rounding of the full batch's, see `MLP+DistinctRows.swift`). Replicas made afterwards
    /// inherit it.
    public func setDedupesRows(_ on: Bool) {
        rowCacheMLP?.dedupesRows = on
    }

    /// The first-layer row cache (`setRowCache`), nil if none.
    public var rowCache: RowContributionCache? { rowCacheMLP?.rowCache }

    private var rowCacheMLP: MLP? {
        switch self {
        case let m as WideAndDeep: return m.deepArch
        case let m as DeepFM: return m.deepArch
        case let m as DCN: return m.deepArch
        default: return nil
        }
    }

    /// Multiply–adds the MLPs executed in this instance's last forward (`MLP.lastForwardMACs`:
    /// after hoisting, the row cache and the row dedupe; embeddings, interactions and the wide
    /// part not counted), e.g. for serving's executed-FLOP counters.
    public var lastForwardMLPMACs: Int { inferenceMLPs.reduce(0) { $0 + $1.lastForwardMACs } }

    /// The MLPs whose layers `freezeForInference` freezes.
    var inferenceMLPs: [MLP] {
        switch self {
        case let m as WideAndDeep: return [m.deepArch]
        case let m as DLRM: return [m.denseArch, m.overArch]
        case let m as DeepFM: return [m.deepArch]
        case let m as DCN: return [m.deepArch]
        case let m as TwoTower: return [m.userTower.mlp, m.itemTower.mlp]
        default: return []
        }
    }
}
