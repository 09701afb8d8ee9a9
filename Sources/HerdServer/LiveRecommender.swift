import Foundation
import HerdServing
import HerdTraining

/// The recommender a server answers with now, swapped as a whole by `POST /admin/reload`.
///
/// Requests read `current` once and keep that instance for their whole call, so a reload never
/// fails a request in flight: old requests finish on the old recommender, new ones start on the
/// new one. A reload that fails (a corrupt index or model) keeps the previous recommender.
public final class LiveRecommender: @unchecked Sendable {
    private let lock = NSLock()
    private var recommender: Recommender
    private var ids: RawIDs?
    /// Serializes reloads (two at once would load everything twice).
    private let reloadLock = NSLock()
    private let load: @Sendable () throws -> (Recommender, RawIDs?)

    /// Starts with `load()`'s recommender; `reload()` calls `load` again.
    public init(load: @escaping @Sendable () throws -> (Recommender, RawIDs?)) throws {
        self.load = load
        (recommender, ids) = try load()
    }

    /// A fixed recommender (reload keeps it).
    public init(_ recommender: Recommender, rawIDs: RawIDs? = nil) {
        self.recommender = recommender
        ids = rawIDs
        load = { (recommender, rawIDs) }
    }

    /// The recommender to answer the next request with.
    public var current: Recommender { lock.withLock { recommender } }

    /// Raw ↔ encoded ids of the workspace (nil when its ids were not categorified).
    public var rawIDs: RawIDs? { lock.withLock { ids } }

    /// Loads everything again from disk (index, ranking model's latest version, store, raw ids)
    /// and swaps it in; throws (keeping the previous one) when the load fails.
    @discardableResult
    public func reload() throws -> Recommender {
        try reloadLock.withLock {
            let (fresh, freshIDs) = try load()
            lock.withLock {
                recommender = fresh
                ids = freshIDs
            }
            return fresh
        }
    }
}
