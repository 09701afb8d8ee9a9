import Dispatch
import Foundation
import HerdData
import HerdModels
import HerdTensor

/// Ranks the candidates of concurrent requests together: one model forward over the rows of
/// several requests, each request getting back exactly its own probabilities.
///
/// ```
/// request A (50 rows) ─┐                         ┌─ A's 50 probs
/// request B (50 rows) ─┼─ queue ─ one forward ───┼─ B's 50 probs
/// request C (50 rows) ─┘   [150, features]       └─ C's 50 probs
/// ```
///
/// At most `lanes` forwards run at once (one per core: each forward's GEMMs run on its calling
/// thread). A request that finds a lane free ranks at once on its own thread, together with
/// whatever is queued (no added wait when idle); otherwise it queues. A forward that finishes
/// hands its lane, with the requests queued meanwhile (up to `maxRows` rows, first come first
/// served), to the first of them, whose thread runs the next forward; the rest wait for it.
/// So every forward runs on the thread of a request it answers, and no thread pool sits between.
///
/// NOTE: why: a canK-50 request is a 50-row GEMM, a poor shape (the weights are streamed for few
/// rows), and every forward pays fixed costs (packing, BF16 rounding, allocation); under load the
/// queued requests make forwards of a few hundred rows instead.
///
/// A request still queued when its deadline passes leaves the queue and fails (its caller answers
/// from a fallback); one already taken into a forward gets its result. Requests whose batches
/// cannot share a forward (other widths) are ranked one by one in the same lane.
///
/// Thread safety: `probabilities` may be called from any number of threads at once.
public final class RankingBatcher: @unchecked Sendable {
    public let pool: ModelPool
    /// Most rows in one coalesced forward (a request larger than this ranks alone).
    public let maxRows: Int
    /// Forwards running at once.
    public let lanes: Int
    /// Rows per forward of a request ranked alone (`ModelPool.probabilities`' micro-batches).
    public let microBatch: Int

    private let lock = NSLock()
    private var queue: [Pending] = []
    private var running = 0
    private var stats = Stats()

    /// Forwards run and requests ranked so far (for tests and logs).
    public struct Stats: Sendable, Equatable {
        public var forwards = 0
        public var requests = 0
        public var rows = 0
        public var expired = 0
    }

    public init(pool: ModelPool, maxRows: Int = 512, lanes: Int = Parallel.threads, microBatch: Int = 256) {
        self.pool = pool
        self.maxRows = max(1, maxRows)
        self.lanes = max(1, lanes)
        self.microBatch = max(1, microBatch)
    }

    public var statistics: Stats { lock.withLock { stats } }

    /// Tests: called on the forward's thread before each forward with its request and row counts
    /// (set before the first call).
    var willRank: (@Sendable (_ requests: Int, _ rows: Int) -> Void)?

    /// Requests waiting for a forward (for tests and logs).
    public var queued: Int { lock.withLock { queue.count } }

    /// One request waiting for (or leading) a forward.
    private final class Pending: @unchecked Sendable {
        let batch: Batch
        let ready = DispatchSemaphore(value: 0)
        /// Guarded by the batcher's lock.
        var state: State = .queued
        init(_ batch: Batch) { self.batch = batch }
    }

    private enum State {
        case queued
        /// Taken into a forward another thread runs.
        case taken
        /// This request's thread runs the forward over these requests (itself first).
        case lead([Pending])
        case done([Float])
        case expired
    }

    /// Probabilities `[rows]` of `batch` (sigmoid of the model's logits), possibly computed in one
    /// forward with other requests' rows. Throws when `deadline` passes before its forward starts.
    public func probabilities(_ batch: Batch, deadline: ContinuousClock.Instant) throws -> [Float] {
        if batch.count == 0 { return [] }
        let me = Pending(batch)
        var group: [Pending]? = lock.withLock {
            guard running < lanes else {
                queue.append(me)
                return nil
            }
            running += 1
            return [me] + takeQueued(rows: batch.count)
        }
        if group == nil {
            if me.ready.wait(timeout: dispatchTime(deadline)) == .timedOut {
                let expired: Bool = lock.withLock {
                    guard case .queued = me.state else { return false }
                    queue.removeAll { $0 === me }
                    me.state = .expired
                    stats.expired += 1
                    return true
                }
                if expired { throw ServingError("ranking did not start within the deadline (\(queued) requests queued)") }
                // Taken meanwhile: its forward is running (or this thread must run it); wait for it.
                me.ready.wait()
            }
            switch lock.withLock({ me.state }) {
            case .done(let probs): return probs
            case .lead(let g): group = g
            default: preconditionFailure("RankingBatcher: woken in state \(lock.withLock { me.state })")
            }
        }
        // This thread runs forwards until its own group is done, then hands the lane on.
        let own = group!
        rank(own)
        let next: [Pending] = lock.withLock {
            let g = takeQueued(rows: 0)
            if g.isEmpty { running -= 1 } else { g[0].state = .lead(g) }
            return g
        }
        if let first = next.first { first.ready.signal() }
        guard case .done(let probs) = lock.withLock({ me.state }) else { preconditionFailure("RankingBatcher: own request not ranked") }
        return probs
    }

    /// Takes queued requests, first come first served, while the forward stays within `maxRows`
    /// (`rows` already in it; at least one request when `rows` is 0). Call under `lock`.
    private func takeQueued(rows: Int) -> [Pending] {
        var total = rows, n = 0
        while n < queue.count, total == 0 || total + queue[n].batch.count <= maxRows {
            total += queue[n].batch.count
            n += 1
        }
        let taken = Array(queue.prefix(n))
        queue.removeFirst(n)
        for p in taken { p.state = .taken }
        return taken
    }

    /// Runs the forward(s) of `group` and stores each request's probabilities; wakes every member
    /// but the first (the calling thread's own request, or the one that was handed the lane).
    private func rank(_ group: [Pending]) {
        var results: [[Float]]
        let batches = group.map(\.batch)
        willRank?(group.count, batches.reduce(0) { $0 + $1.count })
        if group.count == 1 {
            results = [pool.probabilities(group[0].batch, microBatch: microBatch)]
        } else if Batch.canConcatenate(batches) {
            let joined = Batch.concatenated(batches)
            var probs = [Float](repeating: 0, count: joined.count)
            // NOTE: one forward on this thread: the other lanes keep the other cores busy.
            pool.withReplica { m in
                let logits = pool.forward(m, joined)
                probs.withUnsafeMutableBufferPointer { Kernels.sigmoid(logits.data, into: $0.baseAddress!, count: joined.count) }
            }
            results = []
            var start = 0
            for b in batches {
                results.append(Array(probs[start..<(start + b.count)]))
                start += b.count
            }
        } else {
            results = batches.map { pool.probabilities($0, microBatch: microBatch) }
        }
        lock.withLock {
            stats.forwards += 1
            stats.requests += group.count
            stats.rows += batches.reduce(0) { $0 + $1.count }
            for (p, r) in zip(group, results) { p.state = .done(r) }
        }
        for p in group.dropFirst() { p.ready.signal() }
    }
}
