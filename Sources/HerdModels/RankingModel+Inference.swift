import HerdLayers

extension RankingModel {
    /// Inference only (serving): the dense layers derive their BF16 weights (bf16 precision) and
    /// transposed indicator blocks once instead of at every forward, and replicas made afterwards
    /// (`replica()`) share them. Call after the weights are loaded; the model (and its replicas)
    /// must not be trained afterwards (`backward` refuses). Models without such layers: no-op.
    public func freezeForInference() {
        for mlp in inferenceMLPs { mlp.freezeForInference() }
    }

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
