import Foundation
import HerdData
import HerdFeatures
import HerdLayers
import HerdModels
import HerdTensor

/// A table model spec resolved against a training table: what feeds the model and the model.
public struct ResolvedTableModel: Sendable, Equatable {
    /// The encoded columns the model reads, with cardinalities.
    public let batchSpec: BatchSpec
    /// The model, its feature indices pointing into `batchSpec`.
    public let config: ModelConfig
    /// Two-tower: the key column of the user and the item table (`"user"`, `"item"`).
    public let keyColumns: [String: String]
}

extension TableModelSpec {
    /// The columns of each role, with the spec key naming them (for messages).
    func roles(for kind: ModelKind) -> (sparse: [(key: String, name: String)], dense: [(key: String, name: String)]) {
        var sparse: [(String, String)] = [], dense: [(String, String)] = []
        func add(_ key: String, _ names: [String], to list: inout [(String, String)]) {
            for n in names where !list.contains(where: { $0.1 == n }) { list.append((key, n)) }
        }
        switch kind {
        case .wnd:
            add("embed_cols", embedCols, to: &sparse)
            add("indicator_cols", indicatorCols, to: &sparse)
            add("wide_base_cols", wideBaseCols, to: &sparse)
            add("wide_cross_cols", wideCrossCols, to: &sparse)
            add("continuous_cols", continuousCols, to: &dense)
        case .dlrm, .deepfm, .dcn:
            add("embed_cols", embedCols, to: &sparse)
            add("continuous_cols", continuousCols, to: &dense)
        case .twotower:
            for (side, t) in [("user", user), ("item", item)] {
                guard let t else { continue }
                add("\(side).embed_cols", t.embedCols, to: &sparse)
                add("\(side).indicator_cols", t.indicatorCols, to: &sparse)
                add("\(side).numerical_cols", t.numericalCols, to: &dense)
            }
        }
        return (sparse.map { (key: $0.0, name: $0.1) }, dense.map { (key: $0.0, name: $0.1) })
    }

    /// Fails unless the spec can describe a `kind` model (`wnd` specs also serve DLRM, DeepFM, DCN).
    public func check(kind: ModelKind) throws {
        guard kind == model || (model == .wnd && [.dlrm, .deepfm, .dcn].contains(kind)) else {
            throw TrainingError("\(source) describes a \(model.rawValue) model; --model \(kind.rawValue) needs a \(kind == .twotower ? "twotower" : "wnd") spec")
        }
    }

    /// Every column a `kind` model reads, each once: sparse, dense, then labels.
    public func columns(for kind: ModelKind) -> [String] {
        let (sparse, dense) = roles(for: kind)
        var seen = Set<String>()
        return (sparse.map(\.name) + dense.map(\.name) + labels).filter { seen.insert($0).inserted }
    }

    /// Fails naming the spec key and listing the table's columns when `available` lacks a column
    /// the model reads.
    public func checkColumns(kind: ModelKind, available: [String], tableName: String) throws {
        let (sparse, dense) = roles(for: kind)
        let names = Set(available)
        for (key, name) in sparse + dense + labels.map({ (key: "labels", name: $0) }) where !names.contains(name) {
            throw TrainingError("\(source): \(key): no column \"\(name)\" in \(tableName) (its columns: \(available.joined(separator: ", ")))")
        }
    }

    /// Resolves the spec for a `kind` model against `tables` (the training table first, named
    /// `tableName` in messages; cardinalities are the largest id + 1 over all of them, raised to
    /// `sizes[column]` when given, e.g. from `features/sizes.json`).
    public func resolve(kind: ModelKind, tables: [FeatureTable], tableName: String, sizes: [String: Int] = [:], seed: UInt64 = 0) throws -> ResolvedTableModel {
        try check(kind: kind)
        guard let train = tables.first else { throw TrainingError("\(source): no table to resolve the spec against") }
        let (sparseRoles, denseRoles) = roles(for: kind)
        guard !sparseRoles.isEmpty else { throw TrainingError("\(source): a \(kind.rawValue) model needs embed_cols") }
        try checkColumns(kind: kind, available: train.names, tableName: tableName)
        var spec: BatchSpec
        do {
            spec = try BatchSpec.infer(sparse: sparseRoles.map(\.name), dense: denseRoles.map(\.name), labels: labels, tables: tables)
        } catch {
            throw TrainingError("\(source): \(tableName): \(error)")
        }
        for i in spec.sparse.indices { spec.sparse[i].cardinality = max(spec.sparse[i].cardinality, sizes[spec.sparse[i].name] ?? 0) }
        for name in denseRoles.map(\.name) + labels {
            let c = try train.column(name)
            guard c.numericValues != nil else { throw TrainingError("\(source): \(tableName): column \"\(name)\" has type \(c.type), expected a number") }
        }
        let index = Dictionary(uniqueKeysWithValues: spec.sparse.enumerated().map { ($1.name, $0) })
        let denseIndex = Dictionary(uniqueKeysWithValues: spec.dense.enumerated().map { ($1, $0) })
        let sizesList = spec.sparse.map(\.cardinality)
        let config: ModelConfig
        var keys: [String: String] = [:]
        switch kind {
        case .wnd:
            var c = WideAndDeepConfig(tableSizes: sizesList)
            c.denseFeatures = spec.dense.count
            var dims = Array(repeating: 0, count: sizesList.count)
            for (name, d) in zip(embedCols, embedOutDims) { dims[index[name]!] = d }
            c.embeddingDims = dims
            c.embeddingDim = embedOutDims.first ?? embedDim
            c.indicators = indicatorCols.map { index[$0]! }
            c.wideFeatures = (wideBaseCols + wideCrossCols).map { index[$0]! }
            c.deepMLP = hiddenUnits + [1]
            c.batchNorm = batchNorm
            c.dropout = dropout
            c.pooling = pooling
            c.seed = seed
            config = .wnd(c)
        case .twotower:
            func tower(_ t: Tower) -> TowerConfig {
                TowerConfig(sparseFeatures: t.embedCols.map { index[$0]! }, denseFeatures: t.numericalCols.map { denseIndex[$0]! },
                            indicators: t.indicatorCols.map { index[$0]! }, mlp: hiddenUnits)
            }
            var c = TwoTowerConfig(tableSizes: sizesList, user: tower(user!), item: tower(item!))
            c.embeddingDim = embedDim
            c.loss = loss
            if let temperature { c.temperature = temperature }
            // NOTE: the column after the spec's dense columns; `TwoTowerTrainingSource` appends it.
            if logQCorrection { c.logQColumn = spec.dense.count }
            if itemBias { c.itemBiasFeature = index[item!.id]! }
            c.seed = seed
            config = .twotower(c)
            keys = ["user": user!.id, "item": item!.id]
        case .dlrm:
            var c = DLRMConfig(tableSizes: sizesList)
            c.denseFeatures = spec.dense.count
            c.embeddingDim = embedDim
            c.bottomMLP = [512, 256, 64, embedDim]
            c.seed = seed
            config = .dlrm(c)
        case .deepfm:
            var c = DeepFMConfig(tableSizes: sizesList)
            c.denseFeatures = spec.dense.count
            c.embeddingDim = embedDim
            c.seed = seed
            config = .deepfm(c)
        case .dcn:
            var c = DCNConfig(tableSizes: sizesList)
            c.denseFeatures = spec.dense.count
            c.embeddingDim = embedDim
            c.seed = seed
            config = .dcn(c)
        }
        return ResolvedTableModel(batchSpec: spec, config: config, keyColumns: keys)
    }
}
