import Foundation

/// A fixed set of threads that run blocking request work (the recommend pipeline) off the event
/// loops, first come first served.
///
/// NOTE: why not dispatch's global queue (`offload`): on Linux it runs about one worker per core
/// (2 here), and a worker blocked on a Redis round trip leaves its core idle (measured: the Redis
/// store cost ≈ 20 % of saturation throughput against the embedded store, most of it this idle
/// time, not CPU). With more threads than cores another request computes while one waits.
final class BlockingPool: @unchecked Sendable {
    let threads: Int
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var head = 0

    /// Starts `threads` ≥ 1 threads named `name-i`; they live as long as the process.
    init(threads: Int, name: String) {
        precondition(threads >= 1, "a pool needs a thread")
        self.threads = threads
        for i in 0..<threads {
            let t = Thread { [self] in loop() }
            t.name = "\(name)-\(i)"
            t.stackSize = 8 << 20
            t.start()
        }
    }

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
            job()
        }
    }

    func submit(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs `work` on one of the threads and returns its result.
    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Result { try work() }) }
        }
    }
}
