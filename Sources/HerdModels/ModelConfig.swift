import Foundation
import HerdLayers
import HerdTensor

/// A ranking model's configuration, whichever the model: what an export's manifest records and
/// what rebuilds the model from it.
public enum ModelConfig: Sendable, Equatable {
    case dlrm(DLRMConfig)
    case wnd(WideAndDeepConfig)
    case twotower(TwoTowerConfig)
    case deepfm(DeepFMConfig)
    case dcn(DCNConfig)

    public var kind: ModelKind {
        switch self {
        case .dlrm: return .dlrm
        case .wnd: return .wnd
        case .twotower: return .twotower
        case .deepfm: return .deepfm
        case .dcn: return .dcn
        }
    }

    /// The same model with its dense GEMMs in `precision` (the weights do not depend on it).
    /// Throws for a model without a BF16 path (DeepFM, DCN) when `bf16` is asked; `source` names
    /// the export in the message.
    public func with(precision: Precision, source: String = "the model") throws -> ModelConfig {
        switch self {
        case .dlrm(var c): c.precision = precision; return .dlrm(c)
        case .wnd(var c): c.precision = precision; return .wnd(c)
        case .twotower(var c): c.precision = precision; return .twotower(c)
        case .deepfm, .dcn:
            guard precision == .fp32 else { throw LayerSpecError("\(source): \(kind.rawValue) has no BF16 path; serve it with precision fp32") }
            return self
        }
    }

    /// Builds a freshly initialised model.
    public func build() throws -> any RankingModel {
        switch self {
        case .dlrm(let c): return try DLRM(config: c)
        case .wnd(let c): return try WideAndDeep(config: c)
        case .twotower(let c): return try TwoTower(config: c)
        case .deepfm(let c): return try DeepFM(config: c)
        case .dcn(let c): return try DCN(config: c)
        }
    }

    /// The config as JSON (the kind is stored beside it, as the manifest's model type).
    public func jsonData() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        switch self {
        case .dlrm(let c): return try e.encode(c)
        case .wnd(let c): return try e.encode(c)
        case .twotower(let c): return try e.encode(c)
        case .deepfm(let c): return try e.encode(c)
        case .dcn(let c): return try e.encode(c)
        }
    }

    /// Decodes the JSON of a config of `kind`.
    public static func decode(kind: ModelKind, json: Data) throws -> ModelConfig {
        switch kind {
        case .dlrm: return .dlrm(try JSONDecoder().decode(DLRMConfig.self, from: json))
        case .wnd: return .wnd(try JSONDecoder().decode(WideAndDeepConfig.self, from: json))
        case .twotower: return .twotower(try JSONDecoder().decode(TwoTowerConfig.self, from: json))
        case .deepfm: return .deepfm(try JSONDecoder().decode(DeepFMConfig.self, from: json))
        case .dcn: return .dcn(try JSONDecoder().decode(DCNConfig.self, from: json))
        }
    }
}
