import Foundation
import HerdFeatures

/// A bounded in-process cache of decoded feature rows of one kind, keyed by id: at most
/// `capacity` rows, each kept at most `ttl` after it was fetched, CLOCK (second-chance) eviction.
///
/// Rows are tagged with the schema they were decoded against: a lookup under another schema
/// empties the cache (`reset`). Misses (ids without a row) are not cached, so a row written by
/// another process shows up on the next get.
///
/// Thread safety: every method may be called from any thread (one lock; a request takes it once
/// to look up its ids and once to insert what it fetched).
public final class FeatureRowCache: @unchecked Sendable {
    public let capacity: Int
    public let ttl: Duration

    /// Counters since the cache was made.
    public struct Stats: Sendable, Equatable {
        public var hits = 0
        /// Ids not in the cache (or expired there) when looked up.
        public var misses = 0
        /// Rows dropped to make room.
        public var evictions = 0
        /// Rows found older than `ttl` (counted in `misses` too).
        public var expired = 0
        /// Rows dropped because they were rewritten through this process, or the schema changed.
        public var invalidations = 0
        /// Rows held now.
        public var entries = 0
    }

    private struct Slot {
        var id: Int64
        var row: [Value]
        var fetched: ContinuousClock.Instant
        var referenced: Bool
    }

    private let lock = NSLock()
    private var slots: [Slot] = []
    private var index: [Int64: Int] = [:]
    private var hand = 0
    private var fingerprint: UInt32?
    private var stats = Stats()

    /// `capacity` ≥ 1 rows, `ttl` > 0.
    public init(capacity: Int, ttl: Duration) {
        precondition(capacity >= 1 && ttl > .zero, "a cache holds at least one row for a positive time")
        self.capacity = capacity
        self.ttl = ttl
        slots.reserveCapacity(min(capacity, 1 << 16))
    }

    public var statistics: Stats {
        lock.withLock {
            var s = stats
            s.entries = index.count
            return s
        }
    }

    /// The cached rows of `ids` under the schema `fingerprint` (nil where not cached or expired).
    func lookup(_ ids: [Int64], fingerprint: UInt32, now: ContinuousClock.Instant = .now) -> [[Value]?] {
        lock.withLock {
            if self.fingerprint != fingerprint { resetLocked(fingerprint) }
            var out = [[Value]?](repeating: nil, count: ids.count)
            var hits = 0
            for (i, id) in ids.enumerated() {
                guard let s = index[id] else { continue }
                if now - slots[s].fetched > ttl {
                    stats.expired += 1
                    removeLocked(slot: s)
                    continue
                }
                slots[s].referenced = true
                out[i] = slots[s].row
                hits += 1
            }
            stats.hits += hits
            stats.misses += ids.count - hits
            return out
        }
    }

    /// Caches the rows fetched at `now` (nil rows, misses, are skipped) under `fingerprint`.
    func insert(_ ids: [Int64], _ rows: [[Value]?], fingerprint: UInt32, now: ContinuousClock.Instant) {
        lock.withLock {
            if self.fingerprint != fingerprint { resetLocked(fingerprint) }
            for (id, row) in zip(ids, rows) {
                guard let row else { continue }
                if let s = index[id] {
                    slots[s].row = row
                    slots[s].fetched = now
                    continue
                }
                if slots.count < capacity {
                    index[id] = slots.count
                    slots.append(Slot(id: id, row: row, fetched: now, referenced: false))
                    continue
                }
                // CLOCK: the first slot not referenced since the hand last passed is replaced.
                while slots[hand].referenced {
                    slots[hand].referenced = false
                    hand = (hand + 1) % slots.count
                }
                if index[slots[hand].id] == hand {
                    index[slots[hand].id] = nil
                    stats.evictions += 1
                }
                slots[hand] = Slot(id: id, row: row, fetched: now, referenced: false)
                index[id] = hand
                hand = (hand + 1) % slots.count
            }
        }
    }

    /// Drops the rows of `ids` (they were just rewritten).
    public func invalidate(_ ids: [Int64]) {
        lock.withLock {
            for id in ids {
                if let s = index[id] {
                    stats.invalidations += 1
                    removeLocked(slot: s)
                }
            }
        }
    }

    /// Drops every row.
    public func removeAll() { lock.withLock { resetLocked(fingerprint) } }

    private func resetLocked(_ fingerprint: UInt32?) {
        stats.invalidations += index.count
        slots.removeAll(keepingCapacity: true)
        index.removeAll(keepingCapacity: true)
        hand = 0
        self.fingerprint = fingerprint
    }

    /// Frees a slot: it stays in the ring (the hand reuses it first: not referenced, no id).
    private func removeLocked(slot s: Int) {
        index[slots[s].id] = nil
        slots[s].referenced = false
        slots[s].row = []
    }
}

/// A feature store with a near cache of one kind's rows (items, by default) in front of another
/// (`redis://…?item_cache=N&item_cache_ttl_ms=T`): production recommenders keep hot item rows in
/// process because every request fetches canK of them and items change rarely.
///
/// Reads: cached rows are served from memory; the rest (and every other kind) go to the inner
/// store in one `get(_:deadline:)` (one Redis round trip). Writes through this store (`herd
/// nearline` in process, admin add-item) drop the written ids from the cache; writes by other
/// processes are seen after at most `ttl`. A schema change seen in the inner store's answer
/// empties the cache.
///
/// NOTE: BigDL Friesian's feature service keeps no such cache (every `getItemFeatures` is a Redis
/// MGET; only the column names are kept in process: scala/friesian/…/serving/feature/FeatureServer.java,
/// `getFeaturesFromRedis`). Here the ranking model runs in the same process as the store client,
/// so a cached row also skips its decode.
public final class CachedFeatureStore: FeatureStore, @unchecked Sendable {
    public let inner: any FeatureStore
    public let kind: EntityKind
    public let cache: FeatureRowCache

    public init(_ inner: any FeatureStore, kind: EntityKind = .item, capacity: Int, ttl: Duration) {
        self.inner = inner
        self.kind = kind
        cache = FeatureRowCache(capacity: capacity, ttl: ttl)
    }

    public var spec: String { inner.spec }
    public var health: StoreHealth { inner.health }
    public var answersWithinDeadline: Bool { inner.answersWithinDeadline }

    public func schema(kind: EntityKind) throws -> FeatureSchema? { try inner.schema(kind: kind) }

    public func put(_ table: FeatureTable, kind: EntityKind, keyColumn: String, ids: [Int64]?, progress: ((Int, Int) -> Void)?) throws {
        // NOTE: dropped before and after the write; a get that read a row before the write and
        // inserts it after the second drop keeps the old row until `ttl` (the bound on staleness).
        let keys = kind == self.kind ? try storeKeys(table, keyColumn: keyColumn, ids: ids) : []
        cache.invalidate(keys)
        defer { cache.invalidate(keys) }
        try inner.put(table, kind: kind, keyColumn: keyColumn, ids: ids, progress: progress)
    }

    public func get(kind: EntityKind, ids: [Int64]) throws -> FeatureRows {
        try get([FeatureQuery(kind, ids)], deadline: nil)[0]
    }

    public func get(_ queries: [FeatureQuery], deadline: ContinuousClock.Instant?) throws -> [FeatureRows] {
        let cached = queries.contains { $0.kind == kind }
        // NOTE: the Redis store keeps the schema after its first read: no round trip here.
        guard cached, let schema = try inner.schema(kind: kind) else {
            return try inner.get(queries, deadline: deadline)
        }
        let fingerprint = schema.fingerprintCached
        // Look up the cached kind's ids; ask the inner store for the rest in one call.
        var hits: [[[Value]?]?] = []
        var asked: [FeatureQuery] = []
        var missing: [[Int]] = []
        for q in queries {
            if q.kind == kind {
                let rows = cache.lookup(q.ids, fingerprint: fingerprint)
                let m = rows.indices.filter { rows[$0] == nil }
                hits.append(rows)
                missing.append(m)
                asked.append(FeatureQuery(q.kind, m.map { q.ids[$0] }))
            } else {
                hits.append(nil)
                missing.append([])
                asked.append(q)
            }
        }
        let fetchedAt = ContinuousClock.now
        let answers = try inner.get(asked, deadline: deadline)
        var out: [FeatureRows] = []
        out.reserveCapacity(queries.count)
        for (i, q) in queries.enumerated() {
            guard var rows = hits[i] else {
                out.append(answers[i])
                continue
            }
            let a = answers[i]
            if a.schema != schema {
                // NOTE: the rows changed schema under us (another nearline run): cached rows are of the
                // old one. Start over with the new schema (one more round trip, once per change).
                cache.removeAll()
                let fresh = try inner.get([q], deadline: deadline)[0]
                cache.insert(q.ids, fresh.rows, fingerprint: fresh.schema.fingerprintCached, now: fetchedAt)
                out.append(fresh)
                continue
            }
            let fetched = a.rows
            for (j, r) in missing[i].enumerated() { rows[r] = fetched[j] }
            cache.insert(a.ids, fetched, fingerprint: fingerprint, now: fetchedAt)
            out.append(FeatureRows(schema: schema, ids: q.ids, rows: rows))
        }
        return out
    }
}

extension FeatureSchema {
    /// `fingerprint`, memoised per schema value (it encodes the schema as JSON).
    var fingerprintCached: UInt32 { FingerprintMemo.shared.fingerprint(self) }
}

/// Fingerprints of the few schemas a process sees.
private final class FingerprintMemo: @unchecked Sendable {
    static let shared = FingerprintMemo()
    private let lock = NSLock()
    private var known: [(FeatureSchema, UInt32)] = []

    func fingerprint(_ s: FeatureSchema) -> UInt32 {
        if let f = lock.withLock({ known.first { $0.0 == s }?.1 }) { return f }
        let f = s.fingerprint
        lock.withLock {
            known.append((s, f))
            if known.count > 16 { known.removeFirst() }
        }
        return f
    }
}
