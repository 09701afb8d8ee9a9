import ArgumentParser
import Foundation
import HerdData
import HerdModels
import HerdTensor
import HerdTraining

/// `herd bench …`: performance benchmarks (release builds; synthetic data, no I/O).
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: kernels, training and inference throughput (run a release build on a quiet machine).",
        subcommands: [BenchKernels.self, BenchTrain.self, BenchPreprocess.self, BenchRecSys.self, BenchANN.self, BenchRanking.self])
}

/// Synthetic Criteo-shaped batches: uniform ids per table, dense values like log(x+1), random labels.
func syntheticBatch(rows: Int, dense: Int, tableSizes: [Int], seed: UInt64) -> Batch {
    var rng = SplitMix64(seed: seed)
    let d = Tensor(shape: [rows, dense])
    for i in 0..<d.count { d[i] = rng.nextUniform() * 5 }
    var ids = [Int32](repeating: 0, count: rows * tableSizes.count)
    for (f, n) in tableSizes.enumerated() { for r in 0..<rows { ids[f * rows + r] = Int32(rng.next() % UInt64(n)) } }
    let labels = (0..<rows).map { _ in rng.nextUniform() < 0.25 ? Float(1) : 0 }
    return Batch(dense: d, sparse: KeyedJagged(oneHot: ids, features: tableSizes.count, batchSize: rows), labels: labels)
}

/// Measures this machine's FP32 GEMM roofline the way training uses it: every worker runs
/// single-threaded SGEMMs of an MLP-like shape at the same time. Returns FLOP/s for all workers.
func measureGemmRoofline(workers: Int = Parallel.threads, m: Int = 1024, n: Int = 512, k: Int = 512, seconds: Double = 1.0) -> Double {
    let mats = (0..<workers).map { _ in (Tensor(shape: [m, k]), Tensor(shape: [k, n]), Tensor(shape: [m, n])) }
    for (a, b, _) in mats { a.fill(0.5); b.fill(0.25) }
    var reps = 1
    while true {
        let t0 = DispatchTime.now().uptimeNanoseconds
        Parallel.forEach(workers) { w in
            let (a, b, c) = mats[w]
            for _ in 0..<reps { gemm(.none, .none, m: m, n: n, k: k, a: a.data, lda: k, b: b.data, ldb: n, c: c.data, ldc: n) }
        }
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        if dt >= seconds { return Double(workers * reps) * 2 * Double(m * n * k) / dt }
        reps = max(reps * 2, Int(Double(reps) * seconds / max(dt, 1e-6) * 1.1))
    }
}

struct BenchKernels: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "GEMM (all transpose cases, 1 and all workers), embedding-bag forward/backward, element-wise kernels.")

    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let quiet = MachineLoad.othersBusy(over: 0.5)
        var results: [String: Double] = [:]
        print(MachineLoad.verdict(quiet))
        print("FP32 GEMM backend: \(SGEMM.note)")
        for (ta, tb, name) in [(Transpose.none, Transpose.none, "nn"), (.none, .transposed, "nt"), (.transposed, .none, "tn")] {
            let m = 2048, n = 512, k = 512
            let a = Tensor(shape: [m * k]), b = Tensor(shape: [k * n]), c = Tensor(shape: [m * n])
            a.fill(0.1); b.fill(0.2)
            let lda = ta == .none ? k : m, ldb = tb == .none ? n : k
            let single = timeIt { gemm(ta, tb, m: m, n: n, k: k, a: a.data, lda: lda, b: b.data, ldb: ldb, c: c.data, ldc: n) }
            let par = timeIt { parallelGemm(ta, tb, m: m, n: n, k: k, a: a.data, lda: lda, b: b.data, ldb: ldb, c: c.data, ldc: n) }
            let flops = 2.0 * Double(m * n * k)
            results["gemm_\(name)_1thread_gflops"] = flops / single / 1e9
            results["gemm_\(name)_parallel_gflops"] = flops / par / 1e9
            print(String(format: "sgemm %@ %dx%dx%d: %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %d", name, m, n, k, flops / single / 1e9, flops / par / 1e9, Parallel.threads))
        }
        // FP32 backends side by side on MLP shapes (1 thread; x[M, K] · Wᵀ, W [N, K]).
        for (m, n, k) in [(1024, 1024, 429), (1024, 512, 1024), (1024, 512, 367)] {
            let x = Tensor(shape: [m, k]), w = Tensor(shape: [n, k]), y = Tensor(shape: [m, n])
            x.fill(0.1); w.fill(0.2)
            var line = String(format: "sgemm nt %dx%dx%d (1 thread):", m, n, k)
            for backend in SGEMMBackend.allCases {
                guard gemm(backend: backend, .none, .transposed, m: m, n: n, k: k, a: x.data, lda: k, b: w.data, ldb: k, c: y.data, ldc: n) else {
                    line += " \(backend.rawValue) unavailable"; continue
                }
                let t = timeIt { _ = gemm(backend: backend, .none, .transposed, m: m, n: n, k: k, a: x.data, lda: k, b: w.data, ldb: k, c: y.data, ldc: n) }
                results["sgemm_\(backend.rawValue)_\(m)x\(n)x\(k)_gflops"] = 2.0 * Double(m * n * k) / t / 1e9
                line += String(format: " %@ %.1f GFLOP/s", backend.rawValue, 2.0 * Double(m * n * k) / t / 1e9)
            }
            print(line)
        }
        benchBF16(into: &results)
        let roof = measureGemmRoofline()
        results["gemm_roofline_gflops"] = roof / 1e9
        print(String(format: "roofline (every worker in its own SGEMM): %.1f GFLOP/s", roof / 1e9))

        // Embedding bags: 26 tables × 100k rows × 16, batch 2048, one-hot.
        let tables = Array(repeating: 100_000, count: 26)
        let batch = syntheticBatch(rows: 2048, dense: 13, tableSizes: tables, seed: 1)
        let weights = tables.map { Tensor(shape: [$0, 16]) }
        let out = Tensor(shape: [2048, 26 * 16])
        let fwd = timeIt {
            batch.sparse.ids.withUnsafeBufferPointer { ids in
                batch.sparse.offsets.withUnsafeBufferPointer { off in
                    for f in 0..<26 {
                        Kernels.embeddingBagForward(table: weights[f].data, rows: 100_000, dimension: 16, ids: ids.baseAddress!, offsets: off.baseAddress! + f * 2048, bags: 2048, pooling: .sum, out: out.data + f * 16, outStride: 26 * 16)
                    }
                }
            }
        }
        let bwd = timeIt {
            batch.sparse.ids.withUnsafeBufferPointer { ids in
                batch.sparse.offsets.withUnsafeBufferPointer { off in
                    for f in 0..<26 {
                        _ = Kernels.embeddingBagBackward(gradOut: out.data + f * 16, gradStride: 26 * 16, dimension: 16, ids: ids.baseAddress!, offsets: off.baseAddress! + f * 2048, bags: 2048, pooling: .sum)
                    }
                }
            }
        }
        let lookups = Double(2048 * 26)
        results["embedding_bag_forward_mlookups_per_s"] = lookups / fwd / 1e6
        results["embedding_bag_backward_mlookups_per_s"] = lookups / bwd / 1e6
        print(String(format: "embedding bag D=16, 26×2048 lookups: forward %.1f M lookups/s, backward %.1f M lookups/s (1 thread)", lookups / fwd / 1e6, lookups / bwd / 1e6))

        let y = Tensor(shape: [2048, 512]), bias = Tensor(shape: [512])
        let relu = timeIt { Kernels.addBiasReLU(y.data, rows: 2048, cols: 512, ld: 512, bias: bias.data) }
        results["bias_relu_gbytes_per_s"] = Double(2048 * 512 * 8) / relu / 1e9
        print(String(format: "bias+ReLU [2048, 512]: %.1f GB/s", Double(2048 * 512 * 8) / relu / 1e9))
        if json { print(jsonLine(results.mapValues { $0 as Any }.merging(["others_busy": quiet ?? -1]) { a, _ in a })) }
    }
}

/// BF16: rounding throughput, `gemmBF16` against `gemm` on MLP shapes (1 thread), and what
/// rounding a layer's weight costs next to that layer's forward GEMM (the case for re-rounding the
/// weight at every forward instead of caching it across steps).
func benchBF16(into results: inout [String: Double]) {
    print("bf16 backend: \(BF16GEMM.note)")
    let n = 1 << 20
    let src = Tensor(shape: [n]), dst = Tensor(shape: [n])
    for i in 0..<n { src[i] = Float(i) * 1e-3 }
    let packed = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
    defer { packed.deallocate() }
    let tPacked = timeIt { BF16.convert(src.data, count: n, into: packed) }
    let tFloat = timeIt { BF16.roundInFloat(src.data, count: n, into: dst.data) }
    results["bf16_convert_gfloats_per_s"] = Double(n) / tPacked / 1e9
    results["bf16_round_in_float_gfloats_per_s"] = Double(n) / tFloat / 1e9
    print(String(format: "bf16 rounding (1 thread): to packed %.2f G floats/s, in FP32 storage %.2f G floats/s", Double(n) / tPacked / 1e9, Double(n) / tFloat / 1e9))
    for (m, nn, k) in [(1024, 512, 512), (1024, 1024, 429)] {
        // Forward shape: x[M, K] · Wᵀ, W [N, K].
        let x = Tensor(shape: [m, k]), w = Tensor(shape: [nn, k]), y = Tensor(shape: [m, nn])
        x.fill(0.1); w.fill(0.2)
        let xb = BF16Buffer.ensure(nil, from: x.data, count: m * k), wb = BF16Buffer.ensure(nil, from: w.data, count: nn * k)
        let t32 = timeIt { gemm(.none, .transposed, m: m, n: nn, k: k, a: x.data, lda: k, b: w.data, ldb: k, c: y.data, ldc: nn) }
        let t16 = timeIt { gemmBF16(.none, .transposed, m: m, n: nn, k: k, a: xb, lda: k, b: wb, ldb: k, c: y.data, ldc: nn) }
        let tw = timeIt { wb.assign(from: w.data, count: nn * k) }
        let tx = timeIt { xb.assign(from: x.data, count: m * k) }
        let flops = 2.0 * Double(m * nn * k)
        results["gemm_bf16_\(m)x\(nn)x\(k)_gflops"] = flops / t16 / 1e9
        results["gemm_fp32_\(m)x\(nn)x\(k)_gflops"] = flops / t32 / 1e9
        print(String(format: "gemm %dx%dx%d (1 thread): fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s; rounding W[%d,%d] %.3f ms = %.1f%% of the bf16 GEMM, x[%d,%d] %.3f ms",
                     m, nn, k, flops / t32 / 1e9, flops / t16 / 1e9, nn, k, tw * 1e3, 100 * tw / t16, m, k, tx * 1e3))
    }
}

/// Median seconds of `body` over repeated runs (at least 5 runs and 0.3 s).
func timeIt(_ body: () -> Void) -> Double {
    body()
    var times: [Double] = []
    let start = DispatchTime.now().uptimeNanoseconds
    while times.count < 5 || Double(DispatchTime.now().uptimeNanoseconds - start) < 3e8 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        if times.count > 10_000 { break }
    }
    return times.sorted()[times.count / 2]
}

/// One JSON object on one line, keys sorted.
func jsonLine(_ dict: [String: Any]) -> String {
    let data = try! JSONSerialization.data(withJSONObject: dict, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
}
