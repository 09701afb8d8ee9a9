import HerdData
import HerdLayers
import HerdModels
import HerdTensor
import HerdTestSupport
import XCTest

/// Whole models on every FP32 GEMM backend: the same logits and gradients within FP32 tolerance
/// (oneDNN's matmul primitives, with bias + ReLU fused into the forward, against OpenBLAS), and a
/// finite-difference check with layers wide enough (≥ `SGEMM.minOneDNNWidth`) to take the oneDNN path.
final class GemmBackendModelTests: XCTestCase {
    func batch(rows b: Int, tableSizes: [Int], dense: Int, seed: UInt64) -> Batch {
        var rng = SplitMix64(seed: seed)
        var ids: [Int32] = []
        for n in tableSizes { for _ in 0..<b { ids.append(Int32(rng.next() % UInt64(n))) } }
        return Batch(dense: randomTensor([b, dense], seed: seed), sparse: KeyedJagged(oneHot: ids, features: tableSizes.count, batchSize: b), labels: [])
    }

    /// Logits and every dense gradient of one forward/backward of `make()`'s model on `backend`.
    func run(_ backend: SGEMMBackend, _ make: () throws -> any RankingModel, _ b: Batch) throws -> (logits: [Float], grads: [[Float]])? {
        var out: (logits: [Float], grads: [[Float]])?
        let ran = try SGEMM.withBackend(backend) {
            let m = try make()
            m.setMode(.training(step: 1, shard: 0))
            let logits = m.forward(b).array
            m.zeroGrad()
            m.backward(Tensor(shape: [b.count, 1], values: randomTensor([b.count, 1], seed: 77).array))
            out = (logits, m.groups.flatMap { $0.parameters.map(\.grad.array) })
        }
        return ran ? out : nil
    }

    func assertClose(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = max(1, a.map(abs).max() ?? 0)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(worst, 2e-4 * scale, "\(what): max |Δ| \(worst)", file: file, line: line)
    }

    func compareBackends(_ make: () throws -> any RankingModel, _ b: Batch, file: StaticString = #filePath, line: UInt = #line) throws {
        guard let ref = try run(.openblas, make, b) else { return XCTFail("OpenBLAS is always available") }
        var compared = 0
        for backend in SGEMMBackend.allCases where backend != .openblas {
            guard let got = try run(backend, make, b) else { continue }
            compared += 1
            assertClose(got.logits, ref.logits, "\(backend) logits", file: file, line: line)
            XCTAssertEqual(got.grads.count, ref.grads.count, file: file, line: line)
            for (i, (g, r)) in zip(got.grads, ref.grads).enumerated() { assertClose(g, r, "\(backend) gradient \(i)", file: file, line: line) }
        }
        if compared == 0 { print("GemmBackendModelTests: oneDNN not installed; only OpenBLAS ran") }
    }

    func testWideAndDeepIsTheSameOnEveryBackend() throws {
        var cfg = WideAndDeepConfig(tableSizes: [50, 40, 60, 30])
        cfg.denseFeatures = 13
        cfg.embeddingDim = 16
        cfg.deepMLP = [96, 48, 24, 1]
        try compareBackends({ try WideAndDeep(config: cfg) }, batch(rows: 150, tableSizes: cfg.tableSizes, dense: 13, seed: 3))
    }

    func testDLRMIsTheSameOnEveryBackend() throws {
        var cfg = DLRMConfig(tableSizes: [50, 40, 60, 30])
        cfg.denseFeatures = 13
        cfg.embeddingDim = 16
        cfg.bottomMLP = [64, 32, 16]
        cfg.topMLP = [64, 32, 1]
        try compareBackends({ try DLRM(config: cfg) }, batch(rows: 130, tableSizes: cfg.tableSizes, dense: 13, seed: 4))
    }

    /// Backward against finite differences with every GEMM on oneDNN's matmul primitives.
    func testMatmulBackendMLPBackwardMatchesFiniteDifferences() throws {
        let ran = SGEMM.withBackend(.matmul) {
            var rng = SplitMix64(seed: 5)
            let mlp = MLP(name: "m", sizes: [12, 10, 9, 1], lastActivation: .none, rng: &rng)
            let x = randomTensor([11, 12], seed: 6)
            let c = randomTensor([11, 1], seed: 8).array
            _ = mlp.forward(x)
            for p in mlp.parameters { p.zeroGrad() }
            let dx = mlp.backward(Tensor(shape: [11, 1], values: c), needInputGradient: true)!.array
            var tensors: [(name: String, value: Tensor, analytic: [Float])] = mlp.parameters.map { ($0.name, $0.value, $0.grad.array) }
            tensors.append(("x", x, dx))
            var gc = GradientCheck()
            gc.maxElementsPerTensor = 30
            let m = gc.check(tensors) { probeLoss(mlp.forward(x), c) }
            XCTAssertEqual(m.map(\.description), [])
        }
        if !ran { print("oneDNN not installed: matmul finite-difference check skipped") }
    }

    /// A weight updated in place between forwards (an optimizer step) is what the next forward uses.
    func testForwardSeesWeightsUpdatedInPlace() {
        for backend in SGEMMBackend.allCases {
            _ = SGEMM.withBackend(backend) {
                var rng = SplitMix64(seed: 9)
                let l = Linear(name: "l", inputs: 20, outputs: 16, activation: .relu, rng: &rng)
                let x = randomTensor([32, 20], seed: 10)
                for step in 0..<3 {
                    let y = l.forward(x)
                    for r in 0..<32 {
                        for o in 0..<16 {
                            var s = l.bias.value[o]
                            for i in 0..<20 { s += x[r, i] * l.weight.value[o, i] }
                            XCTAssertEqual(y[r, o], max(s, 0), accuracy: 1e-4, "\(backend) step \(step) [\(r), \(o)]")
                        }
                    }
                    for i in 0..<l.weight.value.count { l.weight.value[i] *= -0.9 }
                    for i in 0..<16 { l.bias.value[i] += 0.05 }
                }
            }
        }
    }
}
