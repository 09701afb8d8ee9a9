import HerdLayers
import HerdTensor
import HerdTestSupport
import XCTest

/// Frozen FP32 `Linear` layers multiply with their weight packed once (`PackedF32Weight`, bias and
/// ReLU fused): checked against a plain double-precision loop and the same layer unfrozen.
final class LinearPackedF32Tests: XCTestCase {
    func testFrozenForwardMatchesThePlainLoopAndTheUnfrozenLayer() throws {
        try XCTSkipUnless(PackedF32Weight.available, "no avx512f: frozen layers keep the plain GEMM")
        for (inputs, outputs) in [(40, 37), (64, 16), (130, 100), (7, 1)] {
            for act in [Activation.none, .relu] {
                for emitsBF16 in [false, true] {
                    var rng = SplitMix64(seed: 5)
                    let frozen = Linear(name: "l", inputs: inputs, outputs: outputs, activation: act, rng: &rng)
                    frozen.emitsBF16Output = emitsBF16
                    var rng2 = SplitMix64(seed: 5)
                    let plain = Linear(name: "l", inputs: inputs, outputs: outputs, activation: act, rng: &rng2)
                    plain.emitsBF16Output = emitsBF16
                    frozen.freezeForInference()
                    let replica = Linear(sharing: frozen)
                    for rows in [1, 5, 50, 203] {
                        let x = randomTensor([rows, inputs], seed: UInt64(rows))
                        let what = "[\(inputs) → \(outputs)] \(act) bf16 out \(emitsBF16) rows \(rows)"
                        let y = frozen.forward(x).array
                        XCTAssertLessThanOrEqual(maxAbsDifference(y, linearReference(frozen, x)), 1e-4, what)
                        XCTAssertLessThanOrEqual(maxAbsDifference(y, plain.forward(x).array), 1e-4, what)
                        XCTAssertEqual(replica.forward(x).array, y, "\(what): replica")
                        if emitsBF16 {
                            // The rounded output is this layer's own output rounded.
                            let ob = try XCTUnwrap(frozen.lastOutputBF16, what)
                            XCTAssertEqual(ob.count, rows * outputs, what)
                            XCTAssertEqual((0..<(rows * outputs)).map { ob[$0] }, y.map { BF16.rounded($0) }, what)
                        }
                    }
                }
            }
        }
    }
}
