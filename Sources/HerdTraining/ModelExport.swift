import Foundation
import HerdData
import HerdModels
import HerdTensor

/// A trained ranking model with the feature state that maps raw rows to its inputs: what
/// `herd train` exports and `herd evaluate`/`predict` (and later serving) load.
///
/// On disk it is a `ModelDirectory`: `manifest.json` (format version, model type, config, feature
/// state, checksums) and `weights.safetensors` (tensor names as in `RankingModel.namedWeights`).
public struct ModelExport: @unchecked Sendable {
    public let config: ModelConfig
    public let model: any RankingModel
    public let featureState: FeatureState

    public init(config: ModelConfig, model: any RankingModel, featureState: FeatureState) {
        self.config = config
        self.model = model
        self.featureState = featureState
    }

    /// Writes the export atomically to `url` (replacing an earlier export there).
    public func write(to url: URL, metadata: [String: String] = [:]) throws {
        try ModelDirectory.write(
            to: url, modelType: config.kind.rawValue, config: try config.jsonData(), featureState: try featureState.jsonData(),
            tensors: model.namedWeights, metadata: metadata)
    }

    /// Loads and verifies an export; errors say what is wrong and what to do.
    public static func load(from url: URL) throws -> ModelExport {
        let loaded = try ModelDirectory.load(from: url)
        guard let kind = ModelKind(rawValue: loaded.manifest.modelType) else {
            throw TrainingError("\(url.path): model type '\(loaded.manifest.modelType)' is not one this herd knows (\(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let config: ModelConfig
        do { config = try ModelConfig.decode(kind: kind, json: loaded.config) } catch {
            throw TrainingError("\(url.path): the manifest's config does not describe a \(kind.rawValue) model: \(error)")
        }
        let state = try FeatureState.decode(loaded.featureState, source: "\(url.path)/manifest.json feature_state")
        let model = try config.build()
        do { try model.loadWeights(loaded.tensors) } catch {
            throw TrainingError("\(url.path): weights do not match the config: \(error)")
        }
        return ModelExport(config: config, model: model, featureState: state)
    }
}
