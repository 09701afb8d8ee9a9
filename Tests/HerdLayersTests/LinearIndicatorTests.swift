import HerdLayers
import HerdTensor
import HerdTestSupport
import XCTest

/// `Linear.indicatorColumns`: the sparse path gives the plain layer's output and weight gradient,
/// and the plain input gradient outside the indicator block (0 inside it).
final class LinearIndicatorTests: XCTestCase {
    /// `[B, I]` with a dense block, indicator columns `r` holding a few 1s and 2s (bags), dense again.
    func input(rows: Int, inputs: Int, indicators r: Range<Int>, seed: UInt64) -> Tensor {
        let x = randomTensor([rows, inputs], seed: seed)
        var rng = SplitMix64(seed: seed + 100)
        for s in 0..<rows {
            for c in r { x[s, c] = 0 }
            for _ in 0..<3 { x[s, r.lowerBound + Int(rng.next() % UInt64(r.count))] += 1 }
        }
        return x
    }

    func testIndicatorPathMatchesThePlainLayer() {
        for (inputs, r) in [(12, 3..<9), (10, 0..<6), (8, 2..<8), (6, 0..<6)] {
            for act in [Activation.none, .relu] {
                var rng1 = SplitMix64(seed: 5), rng2 = SplitMix64(seed: 5)
                let plain = Linear(name: "l", inputs: inputs, outputs: 7, activation: act, rng: &rng1)
                let sparse = Linear(name: "l", inputs: inputs, outputs: 7, activation: act, rng: &rng2)
                sparse.indicatorColumns = r
                let x = input(rows: 9, inputs: inputs, indicators: r, seed: UInt64(inputs))
                let y1 = plain.forward(x).array, y2 = sparse.forward(x).array
                for (a, b) in zip(y1, y2) { XCTAssertEqual(a, b, accuracy: 1e-5, "\(inputs) \(r) \(act)") }
                let c = randomTensor([9, 7], seed: 3).array
                let dx1 = plain.backward(Tensor(shape: [9, 7], values: c), needInputGradient: true)!
                let dx2 = sparse.backward(Tensor(shape: [9, 7], values: c), needInputGradient: true)!
                for (a, b) in zip(plain.weight.grad.array, sparse.weight.grad.array) { XCTAssertEqual(a, b, accuracy: 1e-5) }
                XCTAssertEqual(plain.bias.grad.array, sparse.bias.grad.array)
                for s in 0..<9 {
                    for i in 0..<inputs {
                        XCTAssertEqual(dx2[s, i], r.contains(i) ? 0 : dx1[s, i], accuracy: 1e-5, "dx[\(s), \(i)]")
                    }
                }
                // Without the input gradient: the same weight gradient, accumulated.
                XCTAssertNil(sparse.backward(Tensor(shape: [9, 7], values: c), needInputGradient: false))
                for (a, b) in zip(plain.weight.grad.array, sparse.weight.grad.array) { XCTAssertEqual(2 * a, b, accuracy: 1e-4) }
            }
        }
    }

    func testReplicasKeepTheIndicatorColumns() {
        var rng = SplitMix64(seed: 1)
        let l = Linear(name: "l", inputs: 6, outputs: 2, activation: .none, rng: &rng)
        l.indicatorColumns = 1..<4
        XCTAssertEqual(Linear(sharing: l).indicatorColumns, 1..<4)
    }
}
