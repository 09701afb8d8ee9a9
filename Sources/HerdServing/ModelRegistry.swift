import Foundation
import HerdData
import HerdFeatures
import HerdTensor
import HerdTraining

/// The exported models of a workspace, by name and version (TF Serving's model base paths:
/// `W/models/<name>/<version>`), loaded on first use and kept.
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
    private let lock = NSLock()
    private var loaded: [String: [Int: Loaded]] = [:]
    private var refused: [String: [Int: String]] = [:]
    private let log: @Sendable (String) -> Void

    public init(workspace: Workspace, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.workspace = workspace
        self.log = log
    }

    /// The model `name` at `version` (nil = the highest version that loads).
    public func model(_ name: String, version: Int? = nil) throws -> Loaded {
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else { throw RecommenderError.invalidArgument("bad model name '\(name)'") }
        let versions = workspace.versions(of: name)
        guard !versions.isEmpty else { throw ModelRegistryError.notFound("no model '\(name)' under \(workspace.models.path)") }
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
        let url = workspace.model(name, version: version)
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
        workspace.versions(of: name).map { v in
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
