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
        let m = MLP(name: "m", sizes: [13, 32, 16, 2], lastActivation: .none, precision: .bf16, rng: &r1, bf16MinWidth: 0)
        XCTAssertEqual(m.layers.map(\.precision), [.bf16, .bf16, .bf16])
        XCTAssertEqual(m.layers.map(\.emitsBF16Output), [true, true, false])
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

    /// The fused epilogues (the output rounded in the bias + ReLU pass and handed to the next
    /// layer; dy rounded in the ReLU-backward pass) give bit-identical results to rounding each
    /// operand on its own.
    func testFusedRoundingMatchesPerLayerRounding() {
        var r1 = SplitMix64(seed: 21), r2 = SplitMix64(seed: 21)
        let fused = MLP(name: "m", sizes: [24, 40, 16, 3], lastActivation: .relu, precision: .bf16, rng: &r1, bf16MinWidth: 0)
        let plain = MLP(name: "m", sizes: [24, 40, 16, 3], lastActivation: .relu, precision: .bf16, rng: &r2, bf16MinWidth: 0)
        for l in plain.layers { l.emitsBF16Output = false }
        let x = randomTensor([9, 24], seed: 4), c = randomTensor([9, 3], seed: 5)
        for _ in 0..<2 {  // the second pass reuses every buffer
            let yf = fused.forward(x).array, yp = plain.forward(x).array
            XCTAssertEqual(yf, yp)
            let dxf = fused.backward(Tensor(shape: [9, 3], values: c.array), needInputGradient: true)!.array
            let dxp = plain.backward(Tensor(shape: [9, 3], values: c.array), needInputGradient: true)!.array
            XCTAssertEqual(dxf, dxp)
            for (a, b) in zip(fused.parameters, plain.parameters) { XCTAssertEqual(a.grad.array, b.grad.array, a.name) }
        }
        XCTAssertNotNil(fused.layers[0].lastOutputBF16)
        XCTAssertNil(plain.layers[0].lastOutputBF16)
    }

    /// A frozen MLP's layers feeding a BF16 layer write only the rounded output
    /// (`omitsFP32Output`): the logits equal those of the same frozen MLP writing both.
    func testFrozenLayersOmitTheFP32OutputTheNextLayerDoesNotRead() {
        var r1 = SplitMix64(seed: 8), r2 = SplitMix64(seed: 8)
        let lean = MLP(name: "m", sizes: [72, 96, 80, 64, 1], lastActivation: .none, precision: .bf16, rng: &r1)
        let full = MLP(name: "m", sizes: [72, 96, 80, 64, 1], lastActivation: .none, precision: .bf16, rng: &r2)
        lean.freezeForInference()
        full.freezeForInference()
        XCTAssertEqual(lean.layers.map(\.omitsFP32Output), [true, true, false, false])
        for l in full.layers { l.omitsFP32Output = false }
        let replica = MLP(sharing: lean)
        for rows in [1, 7, 50] {
            let x = randomTensor([rows, 72], seed: UInt64(rows))
            let y = full.forward(x).array
            XCTAssertEqual(lean.forward(x).array, y, "\(rows) rows")
            XCTAssertEqual(replica.forward(x).array, y, "\(rows) rows: replica")
        }
    }

    /// By default only layers at least 64 wide on both sides run in BF16; batch norm or dropout
    /// between layers turns the output hand-off off.
    func testNarrowLayersStayFP32() {
        var rng = SplitMix64(seed: 1)
        let dlrmBottom = MLP(name: "b", sizes: [13, 512, 256, 64, 16], lastActivation: .relu, precision: .bf16, rng: &rng)
        XCTAssertEqual(dlrmBottom.layers.map(\.precision), [.fp32, .bf16, .bf16, .fp32])
        XCTAssertEqual(dlrmBottom.layers.map(\.emitsBF16Output), [true, true, false, false])
        XCTAssertEqual(dlrmBottom.precision, .bf16)
        let normed = MLP(name: "n", sizes: [128, 128, 128, 1], lastActivation: .none, precision: .bf16, rng: &rng, batchNorm: true)
        XCTAssertEqual(normed.layers.map(\.precision), [.bf16, .bf16, .fp32])
        XCTAssertFalse(normed.layers.contains { $0.emitsBF16Output })
        let fp32 = MLP(name: "f", sizes: [128, 128, 1], lastActivation: .none, rng: &rng)
        XCTAssertEqual(fp32.layers.map(\.precision), [.fp32, .fp32])
        XCTAssertFalse(fp32.layers.contains { $0.emitsBF16Output })
    }
}
