import Foundation
import HerdTensor

/// A training checkpoint loaded and verified by `CheckpointStore`.
public struct Checkpoint: @unchecked Sendable {
    /// The training step it was saved at.
    public let step: Int
    /// Its directory.
    public let url: URL
    /// Every F32 tensor (parameters and optimizer slots), by name.
    public let tensors: [String: Tensor]
    /// The tensors file, for entries of other dtypes (e.g. I64 step counters).
    public let file: SafeTensorsFile
    /// The trainer state the caller saved, byte for byte.
    public let state: Data
    /// Its manifest.
    public let manifest: CheckpointManifest
}

/// The `checkpoint.json` of a checkpoint directory.
public struct CheckpointManifest: Codable, Equatable, Sendable {
    /// The layout version this build writes and reads.
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    public var step: Int
    /// ISO 8601 UTC time of the save.
    public var createdAt: String
    /// `tensors.safetensors` and `state.json`, with sizes and checksums.
    public var files: [String: FileDigest]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case step
        case createdAt = "created_at"
        case files
    }
}

/// Rotating training checkpoints in one directory:
///
/// ```
/// checkpoints/
///   ckpt-0000001000/  tensors.safetensors, state.json, checkpoint.json (sizes + SHA-256)
///   ckpt-0000002000/
/// ```
///
/// Each checkpoint is written atomically (see `AtomicFile.writeDirectory`); after a save only the
/// newest `keepLast` are kept. `latest()` returns the newest checkpoint that verifies, warning about
/// and skipping damaged ones, so a crash or a bad disk costs at most the checkpoints it touched.
///
/// NOTE: one writer per directory is assumed (one training run); readers may run concurrently
/// with it because every checkpoint is complete once visible.
public final class CheckpointStore: Sendable {
    public static let tensorsName = "tensors.safetensors"
    public static let stateName = "state.json"
    public static let manifestName = "checkpoint.json"
    static let prefix = "ckpt-"

    public let directory: URL
    /// How many checkpoints `save` keeps (≥ 1).
    public let keepLast: Int
    /// Receives warnings about skipped checkpoints (default: standard error).
    public let warn: @Sendable (String) -> Void

    public init(directory: URL, keepLast: Int = 3, warn: @escaping @Sendable (String) -> Void = CheckpointStore.printWarning) {
        precondition(keepLast >= 1, "keepLast must be at least 1, got \(keepLast)")
        self.directory = directory
        self.keepLast = keepLast
        self.warn = warn
    }

    /// Writes a warning line to standard error.
    public static func printWarning(_ message: String) {
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
    }

    /// The directory of the checkpoint for `step`: `ckpt-<step, 10 digits>`.
    ///
    /// NOTE: zero-padded so that a directory listing sorts by step; steps are still parsed as
    /// numbers, so steps beyond 10 digits work too.
    public func url(step: Int) -> URL {
        let digits = String(step)
        return directory.appendingPathComponent(Self.prefix + String(repeating: "0", count: max(0, 10 - digits.count)) + digits)
    }

    /// Saves F32 tensors (parameters and optimizer slots) and the trainer's `state` (JSON text,
    /// stored verbatim) as the checkpoint for `step`, then prunes old checkpoints.
    @discardableResult
    public func save(step: Int, tensors: [(String, Tensor)], state: Data) throws -> URL {
        try save(step: step, items: tensors.map { SafeTensorsItem($0.0, $0.1) }, state: state)
    }

    /// Saves tensors of any supported dtype (e.g. I64 step counters) and `state`, then prunes.
    /// Saving a step that already exists replaces it.
    @discardableResult
    public func save(step: Int, items: [SafeTensorsItem], state: Data) throws -> URL {
        precondition(step >= 0, "negative step \(step)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let target = url(step: step)
        try AtomicFile.writeDirectory(at: target, mayReplace: { _ in true }) { dir in
            var files: [String: FileDigest] = [:]
            let t = try FileWriter(creatingNew: dir.appendingPathComponent(Self.tensorsName))
            try SafeTensors.write(items, metadata: ["step": String(step)], to: t)
            files[Self.tensorsName] = try t.finish()
            let s = try FileWriter(creatingNew: dir.appendingPathComponent(Self.stateName))
            try s.write(state)
            files[Self.stateName] = try s.finish()
            let manifest = CheckpointManifest(
                formatVersion: CheckpointManifest.currentFormatVersion, step: step, createdAt: ModelDirectory.timestamp(), files: files)
            let m = try FileWriter(creatingNew: dir.appendingPathComponent(Self.manifestName))
            try m.write(ModelDirectory.encodeManifest(manifest))
            _ = try m.finish()
        }
        // NOTE: the checkpoint is safely written at this point; failing to prune old ones must not
        // make the save look failed (the trainer would stop or retry for nothing).
        do {
            try prune()
        } catch {
            warn("could not prune old checkpoints in \(directory.path): \(error)")
        }
        return target
    }

    /// Steps of the checkpoint directories present, ascending (whether valid or not; leftover
    /// `.tmp-*`/`.old-*` directories are not checkpoints).
    public func steps() throws -> [Int] {
        guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .compactMap(Self.step(ofName:)).sorted()
    }

    /// The newest checkpoint that verifies, or `nil` if there is none. Damaged or partial
    /// checkpoints are skipped with a warning.
    public func latest() throws -> Checkpoint? {
        for step in try steps().reversed() {
            do {
                return try load(step: step)
            } catch {
                warn("skipping checkpoint \(url(step: step).path): \(error)")
            }
        }
        return nil
    }

    /// Loads and verifies the checkpoint for `step`.
    public func load(step: Int) throws -> Checkpoint {
        let dir = url(step: step)
        let remedy = "This checkpoint is unusable; resume from an earlier one (or delete it)."
        let manifest = try ModelDirectory.readManifest(
            CheckpointManifest.self, at: dir, manifestName: Self.manifestName,
            supportedVersion: CheckpointManifest.currentFormatVersion,
            what: "a complete Herd checkpoint", remedy: remedy)
        let manifestURL = dir.appendingPathComponent(Self.manifestName)
        guard manifest.step == step else {
            throw ArtifactError(.invalidManifest, manifestURL, "\(manifestURL.path) records step \(manifest.step), not \(step). \(remedy)")
        }
        guard let tensorsDigest = manifest.files[Self.tensorsName], let stateDigest = manifest.files[Self.stateName] else {
            throw ArtifactError(
                .invalidManifest, manifestURL,
                "\(manifestURL.path) must list \(Self.tensorsName) and \(Self.stateName). \(remedy)")
        }
        let mapped = try tensorsDigest.verify(Self.tensorsName, in: dir, remedy: remedy)
        let stateFile = try stateDigest.verify(Self.stateName, in: dir, remedy: remedy)
        let file: SafeTensorsFile
        let tensors: [String: Tensor]
        do {
            file = try SafeTensorsFile(file: mapped)
            tensors = try file.floatTensors()
        } catch {
            throw ArtifactError(.invalidFile(Self.tensorsName), mapped.url, "\(error). \(remedy)")
        }
        return Checkpoint(
            step: step, url: dir, tensors: tensors, file: file, state: Data(stateFile.bytes), manifest: manifest)
    }

    /// Deletes all but the newest `keepLast` checkpoints, and leftovers of interrupted saves.
    ///
    /// NOTE: leftovers (`ckpt-*.tmp-*`, `ckpt-*.old-*`) are removed here rather than in `latest()`
    /// so that reading never modifies the directory; with one writer per directory, no other save
    /// can be in progress while this one prunes.
    public func prune() throws {
        let fm = FileManager.default
        let names = try fm.contentsOfDirectory(atPath: directory.path)
        for name in names where name.hasPrefix(Self.prefix) && (name.contains(".tmp-") || name.contains(".old-")) {
            try? fm.removeItem(at: directory.appendingPathComponent(name))
        }
        let all = try steps()
        for step in all.dropLast(keepLast) {
            try fm.removeItem(at: url(step: step))
        }
    }

    /// The step of a checkpoint directory name `ckpt-<digits>`, else `nil`.
    static func step(ofName name: String) -> Int? {
        guard name.hasPrefix(prefix) else { return nil }
        let digits = name.dropFirst(prefix.count)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }
}
