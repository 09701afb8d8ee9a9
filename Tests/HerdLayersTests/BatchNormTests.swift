import HerdLayers
import HerdTensor
import HerdTestSupport
import XCTest

final class BatchNormTests: XCTestCase {
    func testTrainingForwardMatchesPlainFormulaAndUpdatesRunningStats() {
        let bn = BatchNorm(name: "bn", features: 2, relu: false, epsilon: 0, momentum: 0.5)
        bn.gamma.value[1] = 2
        bn.beta.value[1] = 1
        bn.mode = .training(step: 0, shard: 0)
        let x = Tensor(shape: [4, 2], values: [1, 10, 2, 20, 3, 30, 6, 40])
        let y = bn.forward(x)
        // column 0: mean 3, var (4+1+0+9)/4 = 3.5
        let s0 = 1 / Float(3.5).squareRoot()
        XCTAssertEqual(y[0, 0], (1 - 3) * s0, accuracy: 1e-5)
        XCTAssertEqual(y[3, 0], (6 - 3) * s0, accuracy: 1e-5)
        // column 1: mean 25, var (225+25+25+225)/4 = 125, γ 2, β 1
        XCTAssertEqual(y[1, 1], 2 * (20 - 25) / Float(125).squareRoot() + 1, accuracy: 1e-5)
        XCTAssertEqual(bn.runningMean.array, [0.5 * 3, 0.5 * 25])
        XCTAssertEqual(bn.runningVar[0], 0.5 + 0.5 * 3.5 * 4 / 3, accuracy: 1e-5)
    }

    func testInferenceUsesRunningStatistics() {
        let bn = BatchNorm(name: "bn", features: 1, relu: true, epsilon: 0)
        bn.runningMean[0] = 2
        bn.runningVar[0] = 4
        let y = bn.forward(Tensor(shape: [2, 1], values: [6, 0]))
        XCTAssertEqual(y.array, [2, 0])  // (6−2)/2 = 2; (0−2)/2 = −1 → ReLU 0
    }

    func testBackwardMatchesFiniteDifferences() {
        for relu in [false, true] {
            let bn = BatchNorm(name: "bn", features: 3, relu: relu)
            for j in 0..<3 { bn.gamma.value[j] = 0.5 + Float(j) * 0.4; bn.beta.value[j] = Float(j) * 0.3 - 0.2 }
            bn.mode = .training(step: 0, shard: 0)
            let x = randomTensor([5, 3], seed: 3)
            let c = randomTensor([5, 3], seed: 4).array
            _ = bn.forward(x)
            let dx = bn.backward(Tensor(shape: [5, 3], values: c)).array
            let m = GradientCheck().check(
                [("gamma", bn.gamma.value, bn.gamma.grad.array), ("beta", bn.beta.value, bn.beta.grad.array), ("x", x, dx)]
            ) { probeLoss(bn.forward(x), c) }
            XCTAssertEqual(m.map(\.description), [], "relu \(relu)")
        }
    }

    func testDropoutIsDeterministicPerStepAndScalesKeptValues() {
        let d = Dropout(rate: 0.5, seed: 9)
        d.mode = .training(step: 3, shard: 0)
        let a = Tensor(shape: [1000], values: Array(repeating: 1, count: 1000))
        let b = a.clone()
        d.forward(a)
        d.forward(b)
        XCTAssertEqual(a.array, b.array, "same step and shard, same mask")
        XCTAssertTrue(a.array.allSatisfy { $0 == 0 || $0 == 2 })
        let kept = a.array.filter { $0 > 0 }.count
        XCTAssertTrue((400...600).contains(kept), "\(kept) kept of 1000")
        d.mode = .training(step: 4, shard: 0)
        let c = Tensor(shape: [1000], values: Array(repeating: 1, count: 1000))
        d.forward(c)
        XCTAssertNotEqual(a.array, c.array)
        d.mode = .inference
        let e = Tensor(shape: [3], values: [1, 2, 3])
        d.forward(e)
        XCTAssertEqual(e.array, [1, 2, 3])
    }

    func testMLPWithBatchNormAndDropoutBackwardMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 5)
        let m = MLP(name: "m", sizes: [4, 6, 5, 1], lastActivation: .none, rng: &rng, batchNorm: true, dropout: 0.3)
        m.setMode(.training(step: 7, shard: 1))
        let x = randomTensor([6, 4], seed: 6)
        let c = randomTensor([6, 1], seed: 7).array
        _ = m.forward(x)
        let dx = m.backward(Tensor(shape: [6, 1], values: c), needInputGradient: true)!.array
        var tensors = m.parameters.map { (name: $0.name, value: $0.value, analytic: $0.grad.array) }
        tensors.append((name: "x", value: x, analytic: dx))
        XCTAssertEqual(GradientCheck().check(tensors) { probeLoss(m.forward(x), c) }.map(\.description), [])
        XCTAssertEqual(m.buffers.map(\.0), ["m.0.norm.running_mean", "m.0.norm.running_var", "m.1.norm.running_mean", "m.1.norm.running_var"])
    }
}
