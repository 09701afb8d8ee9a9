import Foundation
import HerdData
import HerdFeatures

/// How raw rows become a model's inputs, as recorded in an export beside the weights: the same
/// ids at training, evaluation and serving time.
public enum FeatureTransform: Sendable, Equatable {
    /// Criteo click logs (`herd train --train FILE`): dense log transform and the fitted
    /// vocabularies or hash sizes of C1–C26.
    case criteo(FeatureState)
    /// Feature tables (`herd train --workspace W --spec …`): the fitted pipeline that encodes raw
    /// rows (nil when the training table came pre-encoded) and the `BatchSpec` naming the encoded
    /// columns that feed the model (sparse with cardinalities, dense, labels).
    case table(FittedPipeline?, BatchSpec)

    /// The Criteo feature state, if this is one.
    public var criteoState: FeatureState? {
        if case .criteo(let s) = self { return s } else { return nil }
    }

    /// The batch spec of a feature-table model, if this is one.
    public var batchSpec: BatchSpec? {
        if case .table(_, let spec) = self { return spec } else { return nil }
    }

    /// `criteo` or `table`, for messages and the manifest's `kind`.
    public var kind: String {
        switch self {
        case .criteo: return "criteo"
        case .table: return "table"
        }
    }
}

// MARK: - Manifest form

extension FeatureTransform {
    /// The export file holding a table model's fitted pipeline.
    public static let pipelineFileName = "pipeline.fitted.json"

    /// The manifest's `feature_state` and the extra files of the export.
    ///
    /// NOTE: a Criteo state is written exactly as before (no kind tag), so older builds still read
    /// newer Criteo exports; a table transform is `{"kind": "table", "batch_spec": {…},
    /// "pipeline": "pipeline.fitted.json" | null}` with the fitted pipeline as a checksummed file
    /// beside the weights (its string indices can hold millions of values: kept out of the
    /// manifest's JSON tree), and its sidecar `pipeline.fitted.json.strings` (`FittedSidecar`).
    /// `keyColumns` (two-tower: the user and item tables' key columns) are recorded beside a table
    /// transform as `"key_columns"`.
    func manifestForm(keyColumns: [String: String] = [:]) throws -> (featureState: Data, extraFiles: [String: Data]) {
        switch self {
        case .criteo(let state):
            return (try state.jsonData(), [:])
        case .table(let pipeline, let spec):
            var members: [String: JSONValue] = [
                "kind": .string("table"),
                "batch_spec": try JSONValue(encoding: spec),
                "pipeline": pipeline == nil ? .null : .string(Self.pipelineFileName),
            ]
            if !keyColumns.isEmpty { members["key_columns"] = .object(keyColumns.mapValues { .string($0) }) }
            let object = JSONValue.object(members)
            // NOTE: the sidecar (`FittedPipeline.files`) rides along, checksummed like the JSON, so
            // serving loads the string indices without parsing them; exports without one still load.
            let files = try pipeline.map { p -> [String: Data] in
                let (json, sidecar) = try p.files()
                return [Self.pipelineFileName: json, FittedPipeline.sidecarPath(Self.pipelineFileName): sidecar]
            }
            return (try object.jsonData(), files ?? [:])
        }
    }

    /// Decodes the manifest form of a loaded export; `source` names the export in errors.
    static func decode(_ loaded: LoadedModel, source: String) throws -> (FeatureTransform, keyColumns: [String: String]) {
        let json = loaded.manifest.featureState
        guard let kind = json["kind"] else {
            // NOTE: no kind tag: a Criteo feature state (every export written before table models).
            return (.criteo(try FeatureState.decode(loaded.featureState, source: "\(source)/manifest.json feature_state")), [:])
        }
        guard case .string("table") = kind else {
            throw TrainingError("\(source)/manifest.json: feature_state kind \(kind.brief) is not one this herd knows (criteo has no kind, or \"table\"); export the model again with this version of Herd")
        }
        let spec: BatchSpec
        do {
            guard let s = json["batch_spec"] else { throw TrainingError("missing") }
            spec = try s.decode(BatchSpec.self)
        } catch {
            throw TrainingError("\(source)/manifest.json: feature_state.batch_spec is missing or not a batch spec (\(error))")
        }
        var keys: [String: String] = [:]
        if let k = json["key_columns"] {
            guard case .object(let o) = k else { throw TrainingError("\(source)/manifest.json: feature_state.key_columns must be an object") }
            for (side, v) in o {
                guard case .string(let name) = v else { throw TrainingError("\(source)/manifest.json: feature_state.key_columns.\(side) must be a column name") }
                keys[side] = name
            }
        }
        switch json["pipeline"] {
        case nil, .null?:
            return (.table(nil, spec), keys)
        case .string(let name)?:
            guard let url = loaded.extraFiles[name] else {
                throw TrainingError("\(source)/manifest.json: feature_state.pipeline names \(name), which the manifest does not list; export the model again")
            }
            let json = try Data(contentsOf: url)
            guard let side = loaded.extraFiles[FittedPipeline.sidecarPath(name)] else {
                return (.table(try FittedPipeline.decode(json, source: url.path), spec), keys)
            }
            return (.table(try FittedPipeline.decode(json: json, sidecar: try Data(contentsOf: side), source: url.path, sidecarSource: side.path), spec), keys)
        case let other?:
            throw TrainingError("\(source)/manifest.json: feature_state.pipeline must be a file name or null, not \(other.brief)")
        }
    }
}
