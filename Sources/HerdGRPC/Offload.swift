import Dispatch
import GRPCCore
import HerdServing

/// Runs blocking work (index searches, store round trips, GEMMs, calls to other services) on a
/// dispatch thread and awaits it, so the cooperative pool keeps serving other calls.
func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

/// Runs async work from a blocking (dispatch) thread and waits for it: how the gRPC client
/// backends serve the recommender's synchronous pipeline.
///
/// NOTE: never call it on a Swift concurrency thread (it would block one of the pool's few
/// threads); the recommender runs on dispatch threads (`offload`).
func blocking<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    let box = BlockingBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await work()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

private final class BlockingBox<T>: @unchecked Sendable {
    // NOTE: written once before the semaphore signals, read after the wait: ordered by it.
    var result: Result<T, any Error>?
}

/// The gRPC status of a failure in the serving layer.
func rpcError(_ error: any Error) -> RPCError {
    switch error {
    case let e as RPCError: return e
    case let e as RecommenderError:
        switch e {
        case .invalidArgument(let m): return RPCError(code: .invalidArgument, message: m)
        case .unavailable(let m): return RPCError(code: .unavailable, message: m)
        }
    case let e as MessageError: return RPCError(code: .invalidArgument, message: e.description)
    default: return RPCError(code: .unavailable, message: "\(error)")
    }
}

/// Call options whose timeout is the time left until `deadline` (at least 1 ms).
func callOptions(_ deadline: ContinuousClock.Instant) -> CallOptions {
    var options = CallOptions.defaults
    options.timeout = max(.milliseconds(1), deadline - ContinuousClock.now)
    return options
}
