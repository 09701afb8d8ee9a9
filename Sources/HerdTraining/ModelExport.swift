import Foundation
import HerdData
import HerdFeatures
import HerdModels
import HerdTensor

/// A trained ranking model with the feature transform that maps raw rows to its inputs: what
/// `herd train` exports and `herd evaluate`/`predict` (and serving) load.
///
/// On disk it is a `ModelDirectory`: `manifest.json` (format version, model type, config, feature
/// transform, checksums), `weights.safetensors` (tensor names as in `RankingModel.namedWeights`)
/// and, for a feature-table model with a fitted pipeline, `pipeline.fitted.json`.
public struct ModelExport: @unchecked Sendable {
    public let config: ModelConfig
    public let model: any RankingModel
    /// Criteo feature state or feature-table pipeline + batch spec (see `FeatureTransform`).
    public let featureState: FeatureTransform
    /// Two-tower models: the key column of the user and of the item table (`"user"`, `"item"`),
    /// whose values identify the rows of the embeddings `herd predict` writes.
    public let keyColumns: [String: String]

    public init(config: ModelConfig, model: any RankingModel, featureState: FeatureTransform, keyColumns: [String: String] = [:]) {
        self.config = config
        self.model = model
        self.featureState = featureState
        self.keyColumns = keyColumns
    }

    /// A Criteo-file model.
    public init(config: ModelConfig, model: any RankingModel, featureState: FeatureState) {
        self.init(config: config, model: model, featureState: .criteo(featureState))
    }

    /// Writes the export atomically to `url` (replacing an earlier export there).
    public func write(to url: URL, metadata: [String: String] = [:]) throws {
        try Self.checkConsistent(config, featureState, source: url.path)
        let (state, extra) = try featureState.manifestForm(keyColumns: keyColumns)
        try ModelDirectory.write(
            to: url, modelType: config.kind.rawValue, config: try config.jsonData(), featureState: state,
            tensors: model.namedWeights, metadata: metadata, extraFiles: extra)
    }

    /// Loads and verifies an export; errors say what is wrong and what to do.
    ///
    /// `precision` (serving): runs the dense GEMMs in that precision whatever the export was
    /// trained with (nil: as its config says). BF16 exists for DLRM, W&D and the two-tower; asking
    /// it of another model is an error.
    public static func load(from url: URL, precision: Precision? = nil) throws -> ModelExport {
        let loaded = try ModelDirectory.load(from: url)
        guard let kind = ModelKind(rawValue: loaded.manifest.modelType) else {
            throw TrainingError("\(url.path): model type '\(loaded.manifest.modelType)' is not one this herd knows (\(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var config: ModelConfig
        do { config = try ModelConfig.decode(kind: kind, json: loaded.config) } catch {
            throw TrainingError("\(url.path): the manifest's config does not describe a \(kind.rawValue) model: \(error)")
        }
        if let precision { config = try config.with(precision: precision, source: url.path) }
        let (transform, keys) = try FeatureTransform.decode(loaded, source: url.path)
        try checkConsistent(config, transform, source: url.path)
        let model = try config.build()
        do { try model.loadWeights(loaded.tensors) } catch {
            throw TrainingError("\(url.path): weights do not match the config: \(error)")
        }
        return ModelExport(config: config, model: model, featureState: transform, keyColumns: keys)
    }

    /// A table model's batch spec must give the config's sparse tables, in order, and its dense
    /// columns; a two-tower model needs a table.
    static func checkConsistent(_ config: ModelConfig, _ transform: FeatureTransform, source: String) throws {
        guard case .table(_, let spec) = transform else {
            if config.kind == .twotower { throw TrainingError("\(source): a two-tower model needs a feature-table transform, not Criteo features") }
            return
        }
        let sizes = spec.sparse.map(\.cardinality)
        let (tableSizes, dense): ([Int], Int?) = switch config {
        case .dlrm(let c): (c.tableSizes, c.denseFeatures)
        case .wnd(let c): (c.tableSizes, c.denseFeatures)
        case .deepfm(let c): (c.tableSizes, c.denseFeatures)
        case .dcn(let c): (c.tableSizes, c.denseFeatures)
        case .twotower(let c): (c.tableSizes, nil)
        }
        guard tableSizes == sizes else {
            throw TrainingError("\(source): the batch spec's sparse columns (\(spec.sparse.map { "\($0.name):\($0.cardinality)" }.joined(separator: ", "))) do not match the model's table sizes \(tableSizes)")
        }
        if let dense, dense != spec.dense.count {
            throw TrainingError("\(source): the batch spec has \(spec.dense.count) dense columns, the model reads \(dense)")
        }
    }
}
