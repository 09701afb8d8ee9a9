import Foundation

/// The directory the recsys workflow's commands share (`--workspace W`, default
/// `./herd-workspace`), so that each step finds the previous step's outputs without path lists.
///
/// ```
/// W/
/// ├── data/                  raw rows: train.txt, test.txt, schema.json, oracle.json   (herd generate …)
/// ├── features/              (herd preprocess recsys2021 | movielens)
/// │   ├── pipeline.fitted.json   fitted indices / statistics, re-applied to test rows and at serving time
/// │   ├── pipeline.fitted.json.strings   its string values in binary (`FittedSidecar`; fast loading)
/// │   ├── train.herdtable        transformed training rows (binary columnar)
/// │   ├── test.herdtable         transformed test rows
/// │   ├── user.herdtable         one row per user: the key column + user features, encoded as in train
/// │   ├── item.herdtable         one row per item: the key column + item features, encoded as in train
/// │   └── sizes.json             {"column": cardinality, …} of the categorical columns
/// ├── models/<name>/<version>/   model exports (herd train); versions 1, 2, …; the highest is current
/// └── embeddings/            (herd predict on a two-tower export)
///     ├── user.safetensors       `ids` I64 [N] (key column values) + `embeddings` F32 [N, E] (unit rows)
///     └── item.safetensors       the same for items; `__metadata__` names the key column and the model
/// ```
///
/// NOTE: versions are integer directory names, as TF Serving's model base paths: a server watching
/// `models/<name>` picks up a new version when its directory appears (exports are written to a
/// temporary name and renamed, so a half-written version is never seen).
public struct Workspace: Sendable, Equatable {
    /// The default workspace, relative to the current directory.
    public static let defaultPath = "herd-workspace"

    public let root: URL

    public init(path: String = Workspace.defaultPath) {
        root = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
    }

    public var data: URL { root.appendingPathComponent("data", isDirectory: true) }
    public var features: URL { root.appendingPathComponent("features", isDirectory: true) }
    public var models: URL { root.appendingPathComponent("models", isDirectory: true) }
    public var embeddings: URL { root.appendingPathComponent("embeddings", isDirectory: true) }

    /// `features/<name>.herdtable`: `train`, `test`, `user`, `item`.
    public func table(_ name: String) -> URL { features.appendingPathComponent("\(name).herdtable") }
    public var fittedPipeline: URL { features.appendingPathComponent("pipeline.fitted.json") }
    public var sizes: URL { features.appendingPathComponent("sizes.json") }
    /// `embeddings/<side>.safetensors` (`user` or `item`).
    public func embeddingTable(_ side: String) -> URL { embeddings.appendingPathComponent("\(side).safetensors") }

    /// `models/<name>`: the base path holding the versions of one model.
    public func model(_ name: String) -> URL { models.appendingPathComponent(name, isDirectory: true) }

    /// `models/<name>/<version>`.
    public func model(_ name: String, version: Int) -> URL {
        model(name).appendingPathComponent(String(version), isDirectory: true)
    }

    /// The complete versions of `name`, ascending (directories named by a positive integer that hold
    /// a `manifest.json`; temporary and partial directories are ignored).
    public func versions(of name: String) -> [Int] {
        let base = model(name)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: base.path) else { return [] }
        return entries.compactMap { entry -> Int? in
            guard let v = Int(entry), v > 0, String(v) == entry else { return nil }
            let manifest = base.appendingPathComponent(entry).appendingPathComponent("manifest.json").path
            return FileManager.default.fileExists(atPath: manifest) ? v : nil
        }.sorted()
    }

    /// The current (highest) version of `name`, if any.
    public func latestVersion(of name: String) -> Int? { versions(of: name).last }

    /// The directory of the current version of `name`, or an error saying how to make one.
    public func latestModel(_ name: String) throws -> URL {
        guard let v = latestVersion(of: name) else {
            throw TrainingError("no exported model '\(name)' in \(model(name).path): run `herd train --workspace \(root.path) …` first")
        }
        return model(name, version: v)
    }

    /// Where the next export of `name` goes: one past the highest version directory present
    /// (complete or not, so a failed export's leftovers are never overwritten).
    public func nextModelVersion(of name: String) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: model(name).path)) ?? []
        return (entries.compactMap { Int($0) }.filter { $0 > 0 }.max() ?? 0) + 1
    }

    /// Creates the root and its four subfolders (idempotent).
    public func create() throws {
        for dir in [data, features, models, embeddings] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
    }

    /// Fails with a message naming the missing file and the command that writes it.
    public func require(_ url: URL, writtenBy command: String) throws {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TrainingError("\(url.path) is missing: run `\(command)` first (workspace \(root.path))")
        }
    }
}
