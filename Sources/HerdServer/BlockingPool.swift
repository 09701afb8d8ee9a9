import Foundation

/// A fixed set of threads that run blocking request work (the recommend pipeline) off the event
/// loops, first come first served; also a `TaskExecutor`, so whole request tasks can run on them.
///
/// NOTE: why not dispatch's global queue (`offload`): on Linux it runs about one worker per core
/// (2 here), and a worker blocked on a Redis round trip leaves its core idle (measured: the Redis
/// store cost ≈ 20 % of saturation throughput against the embedded store, most of it this idle
/// time, not CPU). With more threads than cores another request computes while one waits.
///
/// NOTE: why a task executor: `herd serve` runs the HTTP server's connection tasks on these threads
/// (`withTaskExecutorPreference`), so a request wakes one thread that parses it, runs the blocking
/// pipeline in place (`run` on a pool thread runs inline) and writes the answer — two thread
/// hand-offs per request (event loop → pool → event loop) instead of four (event loop → Swift's
/// cooperative pool → this pool → cooperative pool → event loop), each a futex wake and a sleep.
final class BlockingPool: TaskExecutor, @unchecked Sendable {
    let threads: Int
    private let condition = NSCondition()
    private var jobs: [Queued] = []
    private var head = 0
    private var stats = Stats()

    private enum Job {
        case closure(() -> Void)
        case task(UnownedJob)
    }

    private struct Queued {
        var job: Job
        /// `DispatchTime` uptime nanoseconds when it was queued.
        var since: UInt64
    }

    /// Upper bounds (seconds) of the queue-wait histogram's buckets (then +Inf).
    static let waitBounds: [Double] = [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25]

    /// Jobs run so far and how long they waited in the queue (queued → started), by kind.
    struct Stats: Sendable, Equatable {
        struct Waits: Sendable, Equatable {
            var jobs = 0
            var seconds = 0.0
            var max = 0.0
            /// Jobs per bucket of `waitBounds` (the last: over every bound).
            var buckets = [Int](repeating: 0, count: BlockingPool.waitBounds.count + 1)

            mutating func add(_ wait: Double) {
                jobs += 1
                seconds += wait
                max = Swift.max(max, wait)
                buckets[BlockingPool.waitBounds.firstIndex { wait <= $0 } ?? BlockingPool.waitBounds.count] += 1
            }
        }
        /// Task jobs (`TaskExecutor`: a task started or resumed on the threads).
        var tasks = Waits()
        /// Closures (`submit`, `run` from off the threads, a requeued request's turn).
        var closures = Waits()
        /// Most jobs queued at once.
        var maxQueued = 0
        /// Requests queued again by `beginRequest` (their task went on to them without waiting).
        var requeued = 0
    }

    var statistics: Stats { condition.withLock { stats } }

    /// Starts `threads` ≥ 1 threads named `name-i`; they live as long as the process.
    init(threads: Int, name: String) {
        precondition(threads >= 1, "a pool needs a thread")
        self.threads = threads
        for i in 0..<threads {
            let t = Thread { [self] in
                let me = PoolThread(self)
                PoolThread.mark(me)
                loop(me)
            }
            t.name = "\(name)-\(i)"
            t.stackSize = 8 << 20
            t.start()
        }
    }

    /// Whether the calling thread is one of this pool's.
    var isCurrent: Bool { PoolThread.current?.pool === self }

    private func loop(_ me: PoolThread) {
        while true {
            condition.lock()
            while head == jobs.count { condition.wait() }
            let queued = jobs[head]
            head += 1
            let wait = Double(DispatchTime.now().uptimeNanoseconds &- queued.since) / 1e9
            if case .task = queued.job { stats.tasks.add(wait) } else { stats.closures.add(wait) }
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            }
            condition.unlock()
            me.requestsInJob = 0
            me.jobStarted = DispatchTime.now().uptimeNanoseconds
            me.resumesAtFront = false
            switch queued.job {
            case .closure(let run): run()
            case .task(let task): task.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
    }

    /// Queues `job`; `since` (uptime nanoseconds, ≤ now) places it among the jobs queued by then,
    /// ahead of every job queued later (default: now, the back of the queue); `front`: next.
    private func push(_ job: Job, since: UInt64? = nil, front: Bool = false) {
        let now = DispatchTime.now().uptimeNanoseconds
        condition.lock()
        if front {
            if head > 0 {
                head -= 1
                jobs[head] = Queued(job: job, since: now)
            } else {
                jobs.insert(Queued(job: job, since: now), at: 0)
            }
        } else if let since {
            var i = jobs.count
            while i > head, jobs[i - 1].since > since { i -= 1 }
            jobs.insert(Queued(job: job, since: since), at: i)
        } else {
            jobs.append(Queued(job: job, since: now))
        }
        stats.maxQueued = max(stats.maxQueued, jobs.count - head)
        condition.signal()
        condition.unlock()
    }

    func submit(_ job: @escaping () -> Void) { push(.closure(job)) }

    /// `TaskExecutor`: runs a task's job on one of the threads. A requeued request's task goes in at
    /// the front when its turn comes (`beginRequest`).
    func enqueue(_ job: consuming ExecutorJob) {
        if let me = PoolThread.current, me.pool === self, me.resumesAtFront {
            me.resumesAtFront = false
            push(.task(UnownedJob(job)), front: true)
        } else {
            push(.task(UnownedJob(job)))
        }
    }

    /// Called by a request's task as it starts, before it runs its pipeline in place. When the job
    /// running on this thread has already served a request (`endRequest`) and other jobs are
    /// queued, the task yields and is queued again where its request arrived: after the jobs queued
    /// before the previous answer ended, ahead of those queued since. Off these threads: nothing.
    ///
    /// NOTE: why: a connection task that finds its next request already read (the answer went out
    /// and the client's next request came back before the task suspended — common at saturation,
    /// when the thread loses its core right after handing the answer to the event loop) would serve
    /// it at once, ahead of every request queued meanwhile: the queue would no longer be first come
    /// first served, and its waits spread (measured, canK 200 FP32, 16 connections, saturated:
    /// ≈ 40 % of requests skipped the queue; p99 2–3× the hand-off path's). Requeued at the back
    /// instead, such a request would wait for the requests that came after it (the thread was off
    /// its core for ≈ 5 ms on average between the answer and the next request's start).
    func beginRequest() async {
        guard let me = PoolThread.current, me.pool === self else { return }
        me.requestsInJob += 1
        guard me.requestsInJob > 1 else { return }
        // NOTE: the request arrived after the previous answer ended (the client sent it on reading it).
        let arrival = max(me.lastEnd, me.jobStarted)
        let requeue: Bool = condition.withLock {
            guard jobs.count > head else { return false }
            stats.requeued += 1
            return true
        }
        guard requeue else { return }
        // NOTE: a job queued at the request's arrival resumes the task when its turn comes:
        // resuming enqueues the task on its preferred executor (this pool) from that thread, and
        // `enqueue` puts it at the front. (`Task.yield` would queue the task at the back: its
        // job only resumes the task from the global executor.) It runs as a new job, this request its first.
        await withUnsafeContinuation { (turn: UnsafeContinuation<Void, Never>) in
            push(.closure {
                PoolThread.current?.resumesAtFront = true
                turn.resume()
                PoolThread.current?.resumesAtFront = false
            }, since: arrival)
        }
        PoolThread.current?.requestsInJob = 1
    }

    /// Called by a request's task when its answer is ready (on these threads: marks when).
    func endRequest() {
        guard let me = PoolThread.current, me.pool === self else { return }
        me.lastEnd = DispatchTime.now().uptimeNanoseconds
    }

    /// Runs `work` on one of the threads and returns its result; in place when called on one.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        if isCurrent { return try work() }
        return try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Result { try work() }) }
        }
    }
}

/// One of a pool's threads: its pool and what its running job did (a thread-specific value set once
/// when the thread starts; touched only by that thread).
private final class PoolThread {
    unowned let pool: BlockingPool
    /// Requests the running job has started (`BlockingPool.beginRequest`); 0 at each job's start.
    var requestsInJob = 0
    /// When the running job started, and when its last request's answer was ready (`endRequest`),
    /// in uptime nanoseconds.
    var jobStarted: UInt64 = 0
    var lastEnd: UInt64 = 0
    /// Whether `enqueue` puts this thread's next task job at the front (a requeued request's turn
    /// came: `beginRequest`).
    var resumesAtFront = false

    init(_ pool: BlockingPool) { self.pool = pool }

    static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    /// Makes `thread` the calling thread's value (kept for the thread's life).
    static func mark(_ thread: PoolThread) {
        pthread_setspecific(key, Unmanaged.passRetained(thread).toOpaque())
    }

    static var current: PoolThread? { pthread_getspecific(key).map { Unmanaged<PoolThread>.fromOpaque($0).takeUnretainedValue() } }
}
