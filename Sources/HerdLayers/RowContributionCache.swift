import Foundation
import HerdTensor

/// A bounded, thread-safe cache of first-layer row contributions (`Linear+RowCache.swift`):
/// `key → r [O]` with `r = xg·Wgᵀ + Σ sparse terms` (FP32, before bias and activation), where the
/// key is exactly what produced `r` — the plan (which dense columns were gathered), the row's
/// gathered values and its (column, value) sparse terms, as 32-bit words.
///
/// ```
/// entry bytes ≈ 4·O (values) + 4·|key| + 96 (bookkeeping);  Σ entry bytes ≤ capacityBytes
/// ```
///
/// Eviction: CLOCK (a hit sets the entry's reference bit; the hand clears set bits and evicts the
/// first clear one). A lookup compares the full key, never only its hash.
///
/// NOTE: one cache shared by a layer's replicas (`Linear.init(sharing:)`), so that its memory is
/// spent once and every lane warms it. The lock is held only for the index lookups and the
/// insertions of a batch; an entry's values never change after insertion and a looked-up entry
/// is retained by the reader, so the epilogue reads it outside the lock even if it is evicted
/// meanwhile.
public final class RowContributionCache: @unchecked Sendable {
    /// One cached row: its key, its hash and `O` floats.
    final class Entry {
        let hash: UInt64
        let key: [UInt32]
        let values: UnsafeMutablePointer<Float>
        var referenced = false

        init(hash: UInt64, key: UnsafeBufferPointer<UInt32>, values: UnsafePointer<Float>, count: Int) {
            self.hash = hash
            self.key = Array(key)
            self.values = .allocate(capacity: count)
            self.values.update(from: values, count: count)
        }

        deinit { values.deallocate() }

        func matches(_ other: UnsafeBufferPointer<UInt32>) -> Bool {
            key.count == other.count && key.withUnsafeBytes { memcmp($0.baseAddress!, other.baseAddress!, $0.count) == 0 }
        }
    }

    /// Counters since creation.
    public struct Stats: Sendable, Equatable {
        public var hits = 0, misses = 0, insertions = 0, evictions = 0
        /// Hit rows whose entry an earlier row of the same batch also hit (rows a batch repeats
        /// exactly at the first layer, hence through the whole MLP).
        public var repeatedInBatch = 0
        /// Entries held and their bytes (as budgeted).
        public var entries = 0, bytes = 0
        public var hitRate: Double { hits + misses == 0 ? 0 : Double(hits) / Double(hits + misses) }
    }

    /// Output width `O` of the layer.
    public let outputs: Int
    /// The byte budget of the entries.
    public let capacityBytes: Int
    private let lock = NSLock()
    private var index: [UInt64: Int] = [:]
    private var entries: [Entry] = []
    private var hand = 0
    private var bytes = 0
    private var counters = Stats()
    /// The dense-uniform masks seen (a plan's id is its position).
    private var plans: [[Bool]] = []

    /// At most this many plans get an id (beyond: those batches are not cached).
    static let maxPlans = 64

    public init(outputs: Int, capacityBytes: Int) {
        precondition(outputs > 0 && capacityBytes > 0, "RowContributionCache needs outputs and a budget")
        self.outputs = outputs
        self.capacityBytes = capacityBytes
    }

    public var stats: Stats {
        lock.withLock {
            var s = counters
            s.entries = entries.count
            s.bytes = bytes
            return s
        }
    }

    /// Budgeted bytes of an entry with a key of `keyWords` words.
    func entryBytes(keyWords: Int) -> Int { 4 * outputs + 4 * keyWords + 96 }

    /// The id of the plan with this dense-uniform mask (nil: too many plans).
    func planID(_ denseUniform: [Bool]) -> UInt32? {
        lock.withLock {
            if let i = plans.firstIndex(of: denseUniform) { return UInt32(i) }
            guard plans.count < Self.maxPlans else { return nil }
            plans.append(denseUniform)
            return UInt32(plans.count - 1)
        }
    }

    /// Looks up each key (`keys` words `offsets[i] ..< offsets[i+1]`, hashes `hashes[i]`) and
    /// writes the entry or nil into `found[i]`; counts hits and misses.
    func lookup(count: Int, keys: UnsafeBufferPointer<UInt32>, offsets: UnsafeBufferPointer<Int>, hashes: UnsafeBufferPointer<UInt64>,
                into found: inout [Entry?]) {
        found.removeAll(keepingCapacity: true)
        lock.withLock {
            var hits = 0
            for i in 0..<count {
                let key = UnsafeBufferPointer(rebasing: keys[offsets[i]..<offsets[i + 1]])
                if let s = index[hashes[i]], entries[s].matches(key) {
                    entries[s].referenced = true
                    found.append(entries[s])
                    hits += 1
                } else {
                    found.append(nil)
                }
            }
            counters.hits += hits
            counters.misses += count - hits
        }
    }

    /// Inserts entries made outside the lock (`Entry(hash:key:values:count:)`), evicting as the
    /// budget requires; an entry whose key is already held (another lane's) is dropped.
    func insert(_ new: [Entry], repeatedInBatch: Int = 0) {
        guard !new.isEmpty || repeatedInBatch > 0 else { return }
        lock.withLock {
            counters.repeatedInBatch += repeatedInBatch
            for e in new {
                let need = entryBytes(keyWords: e.key.count)
                guard need <= capacityBytes else { continue }
                if let s = index[e.hash] {
                    if entries[s].key == e.key { continue }
                    // NOTE: a 64-bit hash collision: the newer row takes the index entry; the older
                    // one stays unreachable until the hand evicts it.
                }
                // CLOCK: evict until the new entry fits (a victim's slot is filled by the last entry).
                while bytes + need > capacityBytes, !entries.isEmpty {
                    if hand >= entries.count { hand = 0 }
                    let victim = entries[hand]
                    if victim.referenced {
                        victim.referenced = false
                        hand += 1
                        continue
                    }
                    if index[victim.hash] == hand { index[victim.hash] = nil }
                    bytes -= entryBytes(keyWords: victim.key.count)
                    counters.evictions += 1
                    let last = entries.count - 1
                    if hand != last {
                        entries[hand] = entries[last]
                        if index[entries[hand].hash] == last { index[entries[hand].hash] = hand }
                    }
                    entries.removeLast()
                }
                entries.append(e)
                index[e.hash] = entries.count - 1
                bytes += need
                counters.insertions += 1
            }
        }
    }

    /// The 64-bit hash of a key: `RowGroups`' mix over word pairs, seeded with the length.
    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt32>) -> UInt64 {
        var h = RowGroups.seed ^ UInt64(key.count)
        var i = 0
        let n = key.count
        while i + 1 < n {
            h = RowGroups.mix(h, UInt64(key[i]) | (UInt64(key[i + 1]) << 32))
            i += 2
        }
        if i < n { h = RowGroups.mix(h, UInt64(key[i])) }
        return h
    }
}
