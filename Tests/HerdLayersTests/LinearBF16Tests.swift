import HerdLayers
import HerdTensor
import HerdTestSupport
import XCTest

/// `precision: .bf16` layers: BF16 GEMM operands, FP32 master weights and gradients.
final class LinearBF16Tests: XCTestCase {
    /// Finite differences are taken on an FP32 twin (same weights): perturbations of 1e-3 would be
    /// rounded away by a BF16 forward. BF16 rounding errors are relative to the sum of |terms| of
    /// each dot product, not to its (possibly cancelled) value, and ReLU masks can flip near zero,
    /// so gradients are compared per tensor in relative L2 norm rather than per element.
    func relativeErrors(_ tensors: [(name: String, value: Tensor, analytic: [Float])], epsilon: Float = 5e-3,
                        loss: () -> Double) -> [String: Double] {
        var out: [String: Double] = [:]
        for (name, value, analytic) in tensors {
            var diff = 0.0, norm = 0.0
            for i in 0..<value.count {
                let saved = value[i]
                value[i] = saved + epsilon
                let lp = loss()
                value[i] = saved - epsilon
                let lm = loss()
                value[i] = saved
                let numeric = (lp - lm) / Double(2 * epsilon)
                diff += (Double(analytic[i]) - numeric) * (Double(analytic[i]) - numeric)
                norm += numeric * numeric
            }
            out[name] = (diff / max(norm, 1e-30)).squareRoot()
        }
        return out
    }

    /// Keeps every ReLU away from its kink in both twins: weights scaled down, biases ±1 by output,
    /// so each unit is either always active or always dead (BF16 cannot flip a mask, finite
    /// differences cannot cross one) and backward is compared on the same piecewise-linear piece.
    func awayFromKinks(_ layers: [Linear]) {
        for l in layers {
            for i in 0..<l.weight.value.count { l.weight.value[i] *= 0.25 }
            for o in 0..<l.outputs { l.bias.value[o] = o % 2 == 0 ? 1 : -1 }
        }
    }

    func assertBelow(_ errors: [String: Double], _ limit: Double, _ message: String = "", line: UInt = #line) {
        for (name, e) in errors.sorted(by: { $0.key < $1.key }) {
            XCTAssertLessThan(e, limit, "\(message) \(name): relative L2 error \(e)", line: line)
        }
    }

    func testForwardMatchesLoopOnBF16RoundedOperands() {
        var rng = SplitMix64(seed: 7)
        let l = Linear(name: "l", inputs: 37, outputs: 9, activation: .relu, precision: .bf16, rng: &rng)
        let x = randomTensor([11, 37], seed: 1)
        let y = l.forward(x)
        var worst: Float = 0
        for b in 0..<11 {
            for o in 0..<9 {
                var s = 0.0
                for i in 0..<37 { s += Double(BF16.rounded(x[b, i])) * Double(BF16.rounded(l.weight.value[o, i])) }
                worst = max(worst, abs(y[b, o] - max(Float(s) + l.bias.value[o], 0)))
            }
        }
        XCTAssertLessThan(worst, 1e-5)
        // The master weight is untouched FP32 (not rounded in place).
        XCTAssertTrue((0..<l.weight.value.count).contains { BF16.rounded(l.weight.value[$0]) != l.weight.value[$0] })
    }

    func testBackwardMatchesFP32FiniteDifferences() {
        for act in [Activation.none, .relu] {
            var r1 = SplitMix64(seed: 3), r2 = SplitMix64(seed: 3)
            let l = Linear(name: "l", inputs: 24, outputs: 12, activation: act, precision: .bf16, rng: &r1)
            let twin = Linear(name: "l", inputs: 24, outputs: 12, activation: act, precision: .fp32, rng: &r2)
            XCTAssertEqual(l.weight.value.array, twin.weight.value.array)
            awayFromKinks([l, twin])
            let x = randomTensor([16, 24], seed: 2)
            let c = randomTensor([16, 12], seed: 9).array
            _ = l.forward(x)
            let dx = l.backward(Tensor(shape: [16, 12], values: c), needInputGradient: true)!.array
            let errors = relativeErrors(
                [("weight", twin.weight.value, l.weight.grad.array), ("bias", twin.bias.value, l.bias.grad.array), ("x", x, dx)]
            ) { probeLoss(twin.forward(x), c) }
            print("BF16 Linear \(act) gradient errors:", errors)
            assertBelow(errors, 1e-2, "\(act)")
            // The BF16 gradients are close to, but not the same as, FP32 ones.
            _ = twin.forward(x)
            let dx32 = twin.backward(Tensor(shape: [16, 12], values: c), needInputGradient: true)!.array
            let diff = maxAbsDifference(dx, dx32), size = dx32.map { abs($0) }.max()!
            XCTAssertGreaterThan(diff, 0)
            XCTAssertLessThan(diff, 2e-2 * size)
        }
    }

    func testMLPBackwardMatchesFP32FiniteDifferences() {
        var r1 = SplitMix64(seed: 11), r2 = SplitMix64(seed: 11)
        let m = MLP(name: "m", sizes: [13, 32, 16, 2], lastActivation: .none, precision: .bf16, rng: &r1)
        let twin = MLP(name: "m", sizes: [13, 32, 16, 2], lastActivation: .none, rng: &r2)
        XCTAssertEqual(m.precision, .bf16)
        XCTAssertEqual(MLP(sharing: m).precision, .bf16)
        awayFromKinks(m.layers + twin.layers)
        let x = randomTensor([8, 13], seed: 4)
        let c = randomTensor([8, 2], seed: 5).array
        _ = m.forward(x)
        let dx = m.backward(Tensor(shape: [8, 2], values: c), needInputGradient: true)!.array
        var tensors = zip(m.parameters, twin.parameters).map { (name: $0.0.name, value: $0.1.value, analytic: $0.0.grad.array) }
        tensors.append((name: "x", value: x, analytic: dx))
        let errors = relativeErrors(tensors) { probeLoss(twin.forward(x), c) }
        print("BF16 MLP gradient errors:", errors)
        assertBelow(errors, 1e-2)
    }
}
