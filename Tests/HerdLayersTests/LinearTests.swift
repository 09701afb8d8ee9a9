import HerdLayers
import HerdTensor
import HerdTestSupport
import XCTest

final class LinearTests: XCTestCase {
    func testForwardMatchesPlainLoop() {
        var rng = SplitMix64(seed: 7)
        let l = Linear(name: "l", inputs: 5, outputs: 3, activation: .relu, rng: &rng)
        let x = randomTensor([4, 5], seed: 1)
        let y = l.forward(x)
        for b in 0..<4 {
            for o in 0..<3 {
                var s = l.bias.value[o]
                for i in 0..<5 { s += x[b, i] * l.weight.value[o, i] }
                XCTAssertEqual(y[b, o], max(s, 0), accuracy: 1e-5)
            }
        }
    }

    func testBackwardMatchesFiniteDifferences() {
        for act in [Activation.none, .relu] {
            var rng = SplitMix64(seed: 3)
            let l = Linear(name: "l", inputs: 6, outputs: 4, activation: act, rng: &rng)
            let x = randomTensor([5, 6], seed: 2)
            let c = randomTensor([5, 4], seed: 9).array
            _ = l.forward(x)
            let dy = Tensor(shape: [5, 4], values: c)
            let dx = l.backward(dy, needInputGradient: true)!.array
            let mism = GradientCheck().check(
                [("weight", l.weight.value, l.weight.grad.array), ("bias", l.bias.value, l.bias.grad.array), ("x", x, dx)]
            ) { probeLoss(l.forward(x), c) }
            XCTAssertEqual(mism.map(\.description), [], "\(act)")
        }
    }

    func testMLPBackwardMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 11)
        let m = MLP(name: "m", sizes: [4, 8, 6, 2], lastActivation: .none, rng: &rng)
        let x = randomTensor([3, 4], seed: 4)
        let c = randomTensor([3, 2], seed: 5).array
        _ = m.forward(x)
        let dx = m.backward(Tensor(shape: [3, 2], values: c), needInputGradient: true)!.array
        var tensors = m.parameters.map { (name: $0.name, value: $0.value, analytic: $0.grad.array) }
        tensors.append((name: "x", value: x, analytic: dx))
        XCTAssertEqual(GradientCheck().check(tensors) { probeLoss(m.forward(x), c) }.map(\.description), [])
        XCTAssertEqual(m.macsPerSample, 4 * 8 + 8 * 6 + 6 * 2)
    }

    func testReplicaSharesWeightsButNotGradients() {
        var rng = SplitMix64(seed: 1)
        let l = Linear(name: "l", inputs: 2, outputs: 2, activation: .none, rng: &rng)
        let r = Linear(sharing: l)
        XCTAssertTrue(r.weight.value === l.weight.value)
        XCTAssertFalse(r.weight.grad === l.weight.grad)
    }
}

final class GradientCheckSelfTests: XCTestCase {
    /// The checker must be able to fail: a gradient off by a factor of two is reported.
    func testWrongGradientIsReported() {
        let x = Tensor(shape: [3], values: [0.5, -1, 2])
        let wrong = x.array.map { 2 * 2 * $0 }  // d/dx Σx² = 2x; report 4x
        let m = GradientCheck().check([("x", x, wrong)]) { x.array.reduce(0.0) { $0 + Double($1 * $1) } }
        XCTAssertEqual(m.count, 3)
    }
}
