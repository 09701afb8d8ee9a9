import CBLAS
import CHerdKernels
import Dispatch
import Foundation

/// Who owns the threads: Herd does. OpenBLAS is pinned to one thread, and Herd splits work across
/// `Parallel.threads` workers itself (data-parallel shards of a batch, row blocks of a GEMM,
/// chunks of a file).
///
/// NOTE: OpenBLAS's own pool spins while idle and steals the other core from element-wise work, and
/// nesting its threads inside ours oversubscribes; one owner avoids both. oneDNN (the FP32 GEMM
/// backends, see `SGEMM`) likewise runs every call on the calling thread (an OpenMP team of
/// one per Herd worker), so a data-parallel step runs one GEMM per core on its own shard of rows:
/// unlike one 2-thread GEMM per layer, that also keeps the element-wise work between GEMMs
/// parallel and leaves no idle OpenMP pool spinning between calls.
public enum Parallel {
    /// Worker count: `HERD_THREADS` if set, else the number of active processors.
    public static let threads: Int = {
        openblas_set_num_threads(1)
        if let s = ProcessInfo.processInfo.environment["HERD_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Runs `body(i)` for `i in 0..<count`, on up to `threads` workers; returns when all are done.
    @inlinable
    public static func forEach(_ count: Int, _ body: (Int) -> Void) {
        if count <= 1 || threads == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let box = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: count) { i in box.value(i) }
        }
    }

    /// Splits `0..<n` into `parts` contiguous ranges of nearly equal size (the first ones larger).
    @inlinable
    public static func ranges(_ n: Int, parts: Int) -> [Range<Int>] {
        let p = max(1, min(parts, n))
        var out: [Range<Int>] = []
        out.reserveCapacity(p)
        var start = 0
        for i in 0..<p {
            let len = n / p + (i < n % p ? 1 : 0)
            out.append(start..<(start + len))
            start += len
        }
        return out
    }

    /// Runs `body(range)` over `0..<n` split into one contiguous range per worker.
    @inlinable
    public static func forRanges(_ n: Int, minPerWorker: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = max(1, min(threads, n / max(minPerWorker, 1)))
        let rs = ranges(n, parts: parts)
        forEach(rs.count) { body(rs[$0]) }
    }
}

/// Wraps a value the compiler cannot prove `Sendable` (raw pointers, non-escaping closures) for
/// hand-off to worker threads that touch disjoint memory.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public var value: T
    @inlinable public init(_ value: T) { self.value = value }
}

/// Process-wide tuning for a training or serving process (called by the `herd` executable, not
/// by the library on its own).
public enum ProcessTuning {
    /// Keeps large per-step allocations in the heap (glibc would otherwise mmap and fault them in
    /// every step).
    public static func keepAllocationsInHeap() { herd_keep_allocations_in_heap() }
}
