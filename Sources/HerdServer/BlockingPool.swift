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
    private var jobs: [Job] = []
    private var head = 0

    private enum Job {
        case closure(() -> Void)
        case task(UnownedJob)
    }

    /// Starts `threads` ≥ 1 threads named `name-i`; they live as long as the process.
    init(threads: Int, name: String) {
        precondition(threads >= 1, "a pool needs a thread")
        self.threads = threads
        for i in 0..<threads {
            let t = Thread { [self] in
                PoolThread.mark(self)
                loop()
            }
            t.name = "\(name)-\(i)"
            t.stackSize = 8 << 20
            t.start()
        }
    }

    /// Whether the calling thread is one of this pool's.
    var isCurrent: Bool { PoolThread.current == Unmanaged.passUnretained(self).toOpaque() }

    private func loop() {
        while true {
            condition.lock()
            while head == jobs.count { condition.wait() }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            }
            condition.unlock()
            switch job {
            case .closure(let run): run()
            case .task(let task): task.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
    }

    private func push(_ job: Job) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    func submit(_ job: @escaping () -> Void) { push(.closure(job)) }

    /// `TaskExecutor`: runs a task's job on one of the threads.
    func enqueue(_ job: consuming ExecutorJob) { push(.task(UnownedJob(job))) }

    /// Runs `work` on one of the threads and returns its result; in place when called on one.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        if isCurrent { return try work() }
        return try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Result { try work() }) }
        }
    }
}

/// The pool a thread belongs to (a thread-specific value set once when the thread starts).
private enum PoolThread {
    static let key: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
        return key
    }()

    static func mark(_ pool: BlockingPool) {
        pthread_setspecific(key, Unmanaged.passUnretained(pool).toOpaque())
    }

    static var current: UnsafeMutableRawPointer? { pthread_getspecific(key) }
}
