import Foundation
import HerdData
import HerdFeatures
import HerdTensor
import HerdTraining

/// The exported models of a workspace, by name and version (TF Serving's model base paths:
/// `W/models/<name>/<version>`), loaded on first use and kept.
///
/// Models outside the workspace (`herd serve --models NAME=DIR`) are named in `directories`:
/// DIR is an export (holds `manifest.json`, served as version 1), a `herd train --out` directory
/// (its `model/` export, version 1), or a base path of version directories `DIR/<version>` as in
/// the workspace. Either kind of export serves: feature-table exports read encoded columns,
/// Criteo-file exports raw Criteo rows (`PredictRequest`).
///
/// A request without a version gets the highest version that loads. A version that fails to load
/// (corrupt, partial, wrong checksum) is remembered with its error and skipped, so the previous
/// version keeps serving; a new version directory is seen on the next request, without a restart.
public final class ModelRegistry: @unchecked Sendable {
    public struct Loaded: Sendable {
        public let name: String
        public let version: Int
        public let export: ModelExport
        public let pool: ModelPool
    }

    /// One version's state, as TF Serving's `model_version_status`.
    public struct VersionStatus: Sendable, Equatable {
        public let version: Int
        /// `AVAILABLE`, `NOT_LOADED` (present, not asked for yet) or `END` (refused at load).
        public let state: String
        public let error: String?
    }

    public let workspace: Workspace
    /// Models served from outside the workspace: name → directory (see the type's summary).
    public let directories: [String: URL]
    private let lock = NSLock()
    private var loaded: [String: [Int: Loaded]] = [:]
    private var refused: [String: [Int: String]] = [:]
    private let log: @Sendable (String) -> Void

    public init(workspace: Workspace, directories: [String: URL] = [:], log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.workspace = workspace
        self.directories = directories
        self.log = log
    }

    /// The complete versions of `name`, ascending.
    public func versions(of name: String) -> [Int] {
        guard let dir = directories[name] else { return workspace.versions(of: name) }
        let fm = FileManager.default
        if fm.fileExists(atPath: dir.appendingPathComponent("manifest.json").path) { return [1] }
        if fm.fileExists(atPath: dir.appendingPathComponent("model/manifest.json").path) { return [1] }
        guard let entries = try? fm.contentsOfDirectory(atPath: dir.path) else { return [] }
        return entries.compactMap { entry -> Int? in
            guard let v = Int(entry), v > 0, String(v) == entry,
                  fm.fileExists(atPath: dir.appendingPathComponent(entry).appendingPathComponent("manifest.json").path) else { return nil }
            return v
        }.sorted()
    }

    /// The export directory of `name` at `version`.
    public func directory(of name: String, version: Int) -> URL {
        guard let dir = directories[name] else { return workspace.model(name, version: version) }
        let fm = FileManager.default
        if fm.fileExists(atPath: dir.appendingPathComponent("manifest.json").path) { return dir }
        if fm.fileExists(atPath: dir.appendingPathComponent("model/manifest.json").path) { return dir.appendingPathComponent("model", isDirectory: true) }
        return dir.appendingPathComponent(String(version), isDirectory: true)
    }

    /// Forgets the versions refused at load, so the next request tries them again (after a
    /// repaired export was copied over a corrupt one); `POST /admin/reload` calls it.
    /// Returns how many were forgotten.
    @discardableResult
    public func forgetRefused() -> Int {
        lock.withLock {
            let n = refused.values.reduce(0) { $0 + $1.count }
            refused.removeAll()
            return n
        }
    }

    /// The model `name` at `version` (nil = the highest version that loads).
    public func model(_ name: String, version: Int? = nil) throws -> Loaded {
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else { throw RecommenderError.invalidArgument("bad model name '\(name)'") }
        let versions = versions(of: name)
        guard !versions.isEmpty else {
            throw ModelRegistryError.notFound("no model '\(name)' under \(directories[name]?.path ?? workspace.models.path)"
                + (directories.isEmpty ? "" : " (also served: \(directories.keys.sorted().joined(separator: ", ")))"))
        }
        if let version {
            guard versions.contains(version) else { throw ModelRegistryError.notFound("model '\(name)' has no version \(version) (has \(versions.map(String.init).joined(separator: ", ")))") }
            return try load(name, version)
        }
        var lastError: Error?
        for v in versions.reversed() {
            do { return try load(name, v) } catch { lastError = error }
        }
        throw lastError ?? ModelRegistryError.notFound("no loadable version of '\(name)'")
    }

    private func load(_ name: String, _ version: Int) throws -> Loaded {
        if let hit = lock.withLock({ loaded[name]?[version] }) { return hit }
        if let why = lock.withLock({ refused[name]?[version] }) { throw ModelRegistryError.unavailable(why) }
        let url = directory(of: name, version: version)
        do {
            let export = try ModelExport.load(from: url)
            let entry = Loaded(name: name, version: version, export: export, pool: ModelPool(model: export.model))
            lock.withLock { loaded[name, default: [:]][version] = entry }
            log("loaded model \(name) version \(version) (\(export.config.kind.rawValue)) from \(url.path)")
            return entry
        } catch {
            let why = "version \(version) of '\(name)' refused at load: \(error)"
            lock.withLock { refused[name, default: [:]][version] = why }
            log(why)
            throw ModelRegistryError.unavailable(why)
        }
    }

    /// Every version directory of `name` and its state.
    public func status(_ name: String) -> [VersionStatus] {
        versions(of: name).map { v in
            lock.withLock {
                if loaded[name]?[v] != nil { return VersionStatus(version: v, state: "AVAILABLE", error: nil) }
                if let why = refused[name]?[v] { return VersionStatus(version: v, state: "END", error: why) }
                return VersionStatus(version: v, state: "NOT_LOADED", error: nil)
            }
        }
    }
}

public enum ModelRegistryError: Error, CustomStringConvertible, Sendable {
    case notFound(String)
    case unavailable(String)
    public var description: String {
        switch self {
        case .notFound(let m), .unavailable(let m): return m
        }
    }
}
