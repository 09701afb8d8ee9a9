import Foundation
@testable import HerdServer
import XCTest

/// `herd serve`'s request threads (`BlockingPool`) as a task executor: tasks that prefer it run on
/// its threads, blocking work runs in place there, nothing is lost under concurrency; and a server
/// whose HTTP tasks run on them answers as one on dispatch's queue and drains on SIGTERM.
final class RequestThreadsTests: XCTestCase {
    func testTasksPreferringThePoolRunOnItsThreadsAndBlockingWorkRunsInPlace() async throws {
        let pool = BlockingPool(threads: 3, name: "test-pool")
        let other = BlockingPool(threads: 1, name: "test-other")
        XCTAssertFalse(pool.isCurrent, "the test's thread is not the pool's")
        // From outside: `run` hops to a pool thread.
        let outside = try await pool.run { pool.isCurrent && !other.isCurrent }
        XCTAssertTrue(outside)
        let onOther = try await other.run { pool.isCurrent }
        XCTAssertFalse(onOther, "another pool's thread is not this pool's")

        let (onPool, inPlace, children) = try await withTaskExecutorPreference(pool) { () async throws -> (Bool, Bool, [Bool]) in
            let onPool = pool.isCurrent
            let caller = pthread_self()
            let inPlace = try await pool.run { pthread_equal(pthread_self(), caller) != 0 }
            let children = await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 { group.addTask { await Task.yield(); return pool.isCurrent } }
                return await group.reduce(into: []) { $0.append($1) }
            }
            return (onPool, inPlace, children)
        }
        XCTAssertTrue(onPool, "a task preferring the pool runs on its threads")
        XCTAssertTrue(inPlace, "run on a pool thread runs on the calling thread")
        XCTAssertEqual(children, Array(repeating: true, count: 8), "child tasks inherit the preference")
    }

    /// Many tasks on few threads, each suspending and blocking, mixed with plain submitted jobs: every
    /// one finishes with its own result.
    func testNoWorkIsLostUnderConcurrency() async throws {
        let pool = BlockingPool(threads: 3, name: "test-load")
        let n = 400
        let submitted = NSLock()
        nonisolated(unsafe) var plain = 0
        let plainDone = DispatchSemaphore(value: 0)
        for _ in 0..<n {
            pool.submit {
                submitted.withLock { plain += 1 }
                plainDone.signal()
            }
        }
        let results = try await withTaskExecutorPreference(pool) {
            try await withThrowingTaskGroup(of: (Int, Int, Bool).self) { group in
                for i in 0..<n {
                    group.addTask {
                        await Task.yield()
                        let r = try await pool.run { () -> Int in
                            if i % 7 == 0 { usleep(200) }  // a blocking wait, as a store round trip
                            return i * i
                        }
                        return (i, r, pool.isCurrent)
                    }
                }
                var out: [(Int, Int, Bool)] = []
                for try await r in group { out.append(r) }
                return out
            }
        }
        XCTAssertEqual(results.count, n)
        XCTAssertEqual(Set(results.map(\.0)), Set(0..<n))
        for (i, r, onPool) in results {
            XCTAssertEqual(r, i * i)
            XCTAssertTrue(onPool)
        }
        for _ in 0..<n { XCTAssertEqual(plainDone.wait(timeout: .now() + 10), .success) }
        XCTAssertEqual(submitted.withLock { plain }, n)
    }

    /// A connection task that goes on to its next request without waiting (`beginRequest` in the same
    /// job as the previous request) is queued again where that request arrived: after the jobs
    /// queued before the previous answer ended, ahead of the jobs queued after it. A plain FIFO
    /// with in-place runs would serve it before both; a plain requeue at the back, after both.
    func testARequestFoundAtOnceWaitsItsTurnFromWhenItArrived() async throws {
        let pool = BlockingPool(threads: 1, name: "test-turns")
        let order = OrderLog()
        await withTaskExecutorPreference(pool) {
            await pool.beginRequest()  // the job's first request: runs at once
            order.append("A")
            pool.submit { order.append("queued during A") }
            usleep(2000)
            pool.endRequest()
            usleep(2000)
            pool.submit { order.append("queued after A's answer") }
            await pool.beginRequest()  // the next request, found without waiting: queued again
            order.append("B")
            pool.endRequest()
            await pool.beginRequest()  // after B's answer: behind the job queued before it
            order.append("C")
            pool.endRequest()
            await pool.beginRequest()  // nothing queued now: runs at once
            order.append("D")
        }
        XCTAssertEqual(order.entries, ["A", "queued during A", "B", "queued after A's answer", "C", "D"])
        XCTAssertEqual(pool.statistics.requeued, 2)
        XCTAssertEqual(pool.statistics.closures.jobs, 4, "two submitted, and each requeued request's turn")
        XCTAssertGreaterThanOrEqual(pool.statistics.tasks.jobs, 2, "the task's start and its requeue")

        // Off the pool's threads: nothing to do.
        await pool.beginRequest()
        pool.endRequest()
        XCTAssertEqual(pool.statistics.requeued, 2)
    }

    /// Many connection-like tasks on two threads, each serving several requests back to back
    /// (`beginRequest`, blocking work in place, `endRequest`) while plain jobs are submitted:
    /// every request and job runs exactly once, on the pool, and some requests were requeued.
    func testRequeuedRequestsAreNeverLost() async throws {
        let pool = BlockingPool(threads: 2, name: "test-requeue")
        let tasks = 64, requestsPerTask = 6
        let plainCount = OrderLog()
        let served = try await withTaskExecutorPreference(pool) {
            try await withThrowingTaskGroup(of: [Int].self) { group in
                for t in 0..<tasks {
                    group.addTask {
                        var mine: [Int] = []
                        for r in 0..<requestsPerTask {
                            await pool.beginRequest()
                            let v = try await pool.run { () -> Int in
                                if (t + r) % 5 == 0 { usleep(100) }
                                return t * 100 + r
                            }
                            XCTAssertTrue(pool.isCurrent)
                            pool.submit { plainCount.append("x") }
                            pool.endRequest()
                            mine.append(v)
                        }
                        return mine
                    }
                }
                var all: [Int] = []
                for try await m in group { all += m }
                return all
            }
        }
        XCTAssertEqual(served.sorted(), (0..<tasks).flatMap { t in (0..<requestsPerTask).map { t * 100 + $0 } })
        for _ in 0..<200 where plainCount.entries.count < tasks * requestsPerTask { usleep(10_000) }
        XCTAssertEqual(plainCount.entries.count, tasks * requestsPerTask)
        XCTAssertGreaterThan(pool.statistics.requeued, 0, "requests served back to back with jobs queued are requeued")
    }

    /// `herd serve` with request threads (its HTTP tasks on them) answers exactly as with dispatch's
    /// queue, under concurrent keep-alive load without errors, and exits cleanly on SIGTERM.
    func testServeOnRequestThreadsAnswersAsOnDispatchAndDrains() throws {
        let ws = try ServeFixture.workspace()
        let (users, _) = try ServeFixture.users(ws)
        let dispatch = try ServeProcess(["--workspace", ws.root.path, "--request-threads", "0"])
        defer { dispatch.stop() }
        let pooled = try ServeProcess(["--workspace", ws.root.path, "--request-threads", "3", "--enable-http-on-request-threads"])
        defer { pooled.stop() }
        // The pipeline on request threads, the HTTP tasks on the cooperative pool (the hand-off path).
        let handedOff = try ServeProcess(["--workspace", ws.root.path, "--request-threads", "2"])
        defer { handedOff.stop() }
        for u in users.prefix(12) {
            let a = try http("GET", "\(dispatch.base)/recommender/recommend/\(u)?k=8&canK=50").object()
            for s in [pooled, handedOff] {
                let b = try http("GET", "\(s.base)/recommender/recommend/\(u)?k=8&canK=50").object()
                XCTAssertEqual(b["source"] as? String, "ranked", "\(b)")
                XCTAssertEqual(b["ids"] as? [Int], a["ids"] as? [Int], "user \(u)")
                XCTAssertEqual(b["probs"] as? [Double], a["probs"] as? [Double], "user \(u)")
            }
        }
        XCTAssertEqual(try http("GET", "\(pooled.base)/readyz").status, 200)
        XCTAssertEqual(try http("GET", "\(pooled.base)/recommender/recommend/1?k=0").status, 400)

        let ids = try idsFile(users.prefix(50).map(String.init), scratch: "request-threads-ids")
        let requests = try assertCleanLoadTest(base: pooled.base, ids: ids, concurrency: 12)["requests"] as? Int ?? 0
        let metrics = try http("GET", "\(pooled.base)/metrics").text
        let answered = metrics.split(separator: "\n").first { $0.hasPrefix("herd_http_requests_total{route=\"/recommender/recommend\",status=\"200\"}") }
        XCTAssertGreaterThanOrEqual(Int(answered?.split(separator: " ").last ?? "") ?? -1, requests + 12, metrics)
        // The request threads' queue: with the HTTP tasks on them every recommend request's task ran
        // there (task jobs); on the hand-off path only the pipelines did (closures), and without
        // request threads there is no queue.
        func poolJobs(_ text: String, _ kind: String) -> Int {
            let line = text.split(separator: "\n").first { $0.hasPrefix("herd_request_pool_wait_seconds_count{kind=\"\(kind)\"}") }
            return Int(line?.split(separator: " ").last ?? "") ?? -1
        }
        XCTAssertGreaterThanOrEqual(poolJobs(metrics, "task"), 12, metrics)
        let handedOffMetrics = try http("GET", "\(handedOff.base)/metrics").text
        XCTAssertEqual(poolJobs(handedOffMetrics, "task"), 0, handedOffMetrics)
        XCTAssertGreaterThanOrEqual(poolJobs(handedOffMetrics, "closure"), 12, handedOffMetrics)
        XCTAssertFalse(try http("GET", "\(dispatch.base)/metrics").text.contains("herd_request_pool"))

        // SIGTERM while requests are in flight: a clean exit within the drain.
        let inFlight = try HerdBinary.start(["loadtest", "--url", "\(pooled.base)/recommender/recommend/{id}?k=10&canK=50",
                                             "--ids", ids.path, "--concurrency", "8", "--duration", "3", "--warmup", "0"])
        defer { if inFlight.isRunning { kill(inFlight.pid, SIGKILL) } }
        usleep(500_000)
        pooled.stop()
        XCTAssertFalse(pooled.process.isRunning)
        _ = inFlight.wait(timeout: 20)
    }
}

/// Entries appended from any thread, in order.
private final class OrderLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ s: String) { lock.withLock { list.append(s) } }
    var entries: [String] { lock.withLock { list } }
}
