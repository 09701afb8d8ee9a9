import Foundation
import HerdData
import HerdTensor

/// The `manifest.json` of a model export.
///
/// ```json
/// {"format_version": 1, "model_type": "dlrm", "created_at": "2025-01-01T00:00:00Z",
///  "config": {…}, "feature_state": {…},
///  "files": {"weights.safetensors": {"sha256": "…", "bytes": 1234}}}
/// ```
public struct ModelManifest: Codable, Equatable, Sendable {
    /// The layout version this build writes and reads.
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    /// Which model the weights belong to (e.g. `ModelKind.rawValue`).
    public var modelType: String
    /// ISO 8601 UTC time of the export.
    public var createdAt: String
    /// The model's hyperparameters, as the caller defines them.
    public var config: JSONValue
    /// Fitted preprocessing state (vocabularies, normalisation statistics, …), as the caller
    /// defines it.
    public var featureState: JSONValue
    /// Every other file in the directory, with its size and checksum.
    public var files: [String: FileDigest]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case modelType = "model_type"
        case createdAt = "created_at"
        case config
        case featureState = "feature_state"
        case files
    }
}

/// A model export loaded and verified by `ModelDirectory.load`.
public struct LoadedModel: @unchecked Sendable {
    /// The directory it came from.
    public let url: URL
    public let manifest: ModelManifest
    /// Every F32 tensor of the weights file, by name.
    public let tensors: [String: Tensor]
    /// The weights file, for entries of other dtypes and its `__metadata__`.
    public let weights: SafeTensorsFile
    /// Extra files (other than the weights), verified, by name.
    public let extraFiles: [String: URL]

    /// `manifest.config` as JSON text.
    public var config: Data { (try? manifest.config.jsonData()) ?? Data("null".utf8) }
    /// `manifest.featureState` as JSON text.
    public var featureState: Data { (try? manifest.featureState.jsonData()) ?? Data("null".utf8) }
    /// The weights file's `__metadata__`.
    public var metadata: [String: String] { weights.metadata }
}

/// A versioned model export directory:
///
/// ```
/// model/
///   manifest.json         format version, model type, config, feature state, file checksums
///   weights.safetensors   every tensor
///   …                     optional extra files (listed in the manifest too)
/// ```
///
/// `write` creates the directory atomically (it appears complete or not at all) and `load`
/// refuses anything that does not match its manifest.
public enum ModelDirectory {
    public static let manifestName = "manifest.json"
    public static let weightsName = "weights.safetensors"

    /// Exports a model. `config` and `featureState` must be JSON text (e.g. from `JSONEncoder`).
    /// `extraFiles` (name → contents) are written beside the weights and checksummed alike.
    /// An existing export at `url` is replaced; any other existing non-empty directory is not.
    @discardableResult
    public static func write(
        to url: URL, modelType: String, config: Data, featureState: Data,
        tensors: [(String, Tensor)], metadata: [String: String] = [:], extraFiles: [String: Data] = [:]
    ) throws -> ModelManifest {
        func parse(_ data: Data, _ what: String) throws -> JSONValue {
            do {
                return try JSONValue(json: data)
            } catch {
                throw ArtifactError(.invalidArgument, url, "cannot export to \(url.path): the \(what) is not valid JSON.")
            }
        }
        return try write(
            to: url, modelType: modelType, config: parse(config, "config"),
            featureState: parse(featureState, "feature state"), tensors: tensors.map { SafeTensorsItem($0.0, $0.1) },
            metadata: metadata, extraFiles: extraFiles)
    }

    /// Exports a model whose config and feature state are already JSON values (see
    /// `JSONValue(encoding:)` for `Codable` ones), with tensors of any supported dtype.
    @discardableResult
    public static func write(
        to url: URL, modelType: String, config: JSONValue, featureState: JSONValue,
        tensors: [SafeTensorsItem], metadata: [String: String] = [:], extraFiles: [String: Data] = [:]
    ) throws -> ModelManifest {
        for name in extraFiles.keys {
            guard isPlainFileName(name), name != manifestName, name != weightsName else {
                throw ArtifactError(
                    .invalidArgument, url,
                    "cannot export to \(url.path): \"\(name)\" is not allowed as an extra file name (it must be a plain name, not hidden, not \(manifestName) or \(weightsName)).")
            }
        }
        return try AtomicFile.writeDirectory(at: url, mayReplace: isModelDirectory) { dir in
            var files: [String: FileDigest] = [:]
            let weights = try FileWriter(creatingNew: dir.appendingPathComponent(weightsName))
            try SafeTensors.write(tensors, metadata: metadata, to: weights)
            files[weightsName] = try weights.finish()
            for (name, data) in extraFiles {
                let w = try FileWriter(creatingNew: dir.appendingPathComponent(name))
                try w.write(data)
                files[name] = try w.finish()
            }
            let manifest = ModelManifest(
                formatVersion: ModelManifest.currentFormatVersion, modelType: modelType,
                createdAt: timestamp(), config: config, featureState: featureState, files: files)
            // NOTE: the manifest is written last, so a directory with a manifest has everything the
            // manifest lists — this matters only if the atomic rename is bypassed (a copy tool).
            let m = try FileWriter(creatingNew: dir.appendingPathComponent(manifestName))
            try m.write(encodeManifest(manifest))
            _ = try m.finish()
            return manifest
        }
    }

    /// Loads and verifies an export: the manifest must exist and have a known format version, and
    /// every file it lists must exist with the recorded size and SHA-256; the weights must be a
    /// valid safetensors file. Each refusal is an `ArtifactError` saying what to do. Files the
    /// manifest does not list are ignored.
    public static func load(from url: URL) throws -> LoadedModel {
        let remedy = "Export the model again, or copy the whole directory again from a good source."
        let manifest = try readManifest(
            ModelManifest.self, at: url, manifestName: manifestName,
            supportedVersion: ModelManifest.currentFormatVersion,
            what: "a Herd model export", remedy: remedy)
        guard manifest.files[weightsName] != nil else {
            throw ArtifactError(
                .invalidManifest, url.appendingPathComponent(manifestName),
                "\(url.appendingPathComponent(manifestName).path) lists no \(weightsName). \(remedy)")
        }
        var mapped: MappedFile?
        var extra: [String: URL] = [:]
        for (name, digest) in manifest.files.sorted(by: { $0.key < $1.key }) {
            guard isPlainFileName(name) else {
                throw ArtifactError(
                    .invalidManifest, url.appendingPathComponent(manifestName),
                    "\(url.appendingPathComponent(manifestName).path) lists an invalid file name \"\(name)\". \(remedy)")
            }
            let file = try digest.verify(name, in: url, remedy: remedy)
            if name == weightsName { mapped = file } else { extra[name] = file.url }
        }
        let weights: SafeTensorsFile
        do {
            weights = try SafeTensorsFile(file: mapped!)
        } catch {
            throw ArtifactError(.invalidFile(weightsName), mapped!.url, "\(error). Its checksum matches the manifest, so it was exported this way: export the model again with this version of Herd.")
        }
        let tensors: [String: Tensor]
        do {
            tensors = try weights.floatTensors()
        } catch {
            throw ArtifactError(.invalidFile(weightsName), mapped!.url, "\(error)")
        }
        return LoadedModel(url: url, manifest: manifest, tensors: tensors, weights: weights, extraFiles: extra)
    }

    /// True when `url` holds a manifest, i.e. is an export that `write` may replace.
    static func isModelDirectory(_ url: URL) -> Bool {
        FileManager.default.fileExists(atPath: url.appendingPathComponent(manifestName).path)
    }

    static func encodeManifest<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
        data.append(0x0A)
        return data
    }

    /// Reads `dir/manifestName` as `T` after checking its `format_version`.
    static func readManifest<T: Decodable>(
        _ type: T.Type, at dir: URL, manifestName: String, supportedVersion: Int, what: String, remedy: String
    ) throws -> T {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ArtifactError(.missingDirectory, dir, "there is no directory at \(dir.path); check the path.")
        }
        let manifestURL = dir.appendingPathComponent(manifestName)
        guard let data = FileManager.default.contents(atPath: manifestURL.path) else {
            throw ArtifactError(
                .missingManifest, manifestURL,
                "\(dir.path) has no \(manifestName), so it is not \(what) or it was written only partially. \(remedy)")
        }
        let version: Int
        do {
            version = try JSONDecoder().decode(FormatVersion.self, from: data).formatVersion
        } catch {
            throw ArtifactError(
                .invalidManifest, manifestURL,
                "\(manifestURL.path) is not valid JSON with an integer format_version (damaged?). \(remedy)")
        }
        guard version == supportedVersion else {
            let advice = version > supportedVersion
                ? "it was written by a newer Herd; upgrade Herd to load it"
                : "export it again with this version of Herd"
            throw ArtifactError(
                .unsupportedFormatVersion(version), manifestURL,
                "\(manifestURL.path) has format_version \(version), but this build of Herd reads only version \(supportedVersion): \(advice).")
        }
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw ArtifactError(
                .invalidManifest, manifestURL,
                "\(manifestURL.path) does not have the expected fields (\(error)). \(remedy)")
        }
    }

    /// A single path component that is neither hidden nor a path trick.
    static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix(".") && !name.contains("/") && !name.contains("\0")
    }

    /// Now, ISO 8601 UTC with seconds.
    static func timestamp() -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date())
    }
}

/// Just the `format_version` of a manifest, read before the rest so that a future layout gets a
/// version message instead of a confusing field error.
private struct FormatVersion: Decodable {
    let formatVersion: Int
    enum CodingKeys: String, CodingKey { case formatVersion = "format_version" }
}
