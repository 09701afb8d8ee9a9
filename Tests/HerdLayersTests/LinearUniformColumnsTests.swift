import HerdLayers
import HerdTensor
import HerdTestSupport
import XCTest

/// `Linear.hoistsUniformColumns` (frozen inference): columns equal in every row are multiplied
/// once per batch. Checked against a plain double-precision loop and against the plain frozen layer.
final class LinearUniformColumnsTests: XCTestCase {
    let inputs = 40, outputs = 37
    let indicators = 12..<30

    /// `[B, I]`: random dense columns, one-hot groups of 6 in the indicator block (a "user" group
    /// the same in every row, two varying), and `uniform` columns overwritten with row 0's values.
    func input(rows: Int, uniform: [Int], userGroup: Bool, seed: UInt64) -> Tensor {
        let x = randomTensor([rows, inputs], seed: seed)
        var rng = SplitMix64(seed: seed + 7)
        let userID = Int(rng.next() % 6)
        for s in 0..<rows {
            for c in indicators { x[s, c] = 0 }
            for g in 0..<3 {
                let id = g == 0 && userGroup ? userID : Int(rng.next() % 6)
                x[s, indicators.lowerBound + 6 * g + id] = 1
            }
            for c in uniform { x[s, c] = x[0, c] }
        }
        return x
    }

    func layer(_ act: Activation, indicators: Bool, hoist: Bool, emitsBF16: Bool = false) -> Linear {
        var rng = SplitMix64(seed: 21)
        let l = Linear(name: "l", inputs: inputs, outputs: outputs, activation: act, rng: &rng)
        if indicators { l.indicatorColumns = self.indicators }
        l.hoistsUniformColumns = hoist
        l.emitsBF16Output = emitsBF16
        l.freezeForInference()
        return l
    }

    func testHoistedForwardMatchesThePlainLoopAndThePlainLayer() {
        let cases: [(rows: Int, uniform: [Int], userGroup: Bool)] = [
            (9, [], false),                  // nothing uniform (indicators still take the sparse path)
            (9, [0, 1, 2, 5, 33], true),     // dense columns on both sides of the block + a one-hot group
            (64, Array(0..<12), true),       // a whole embedding block
            (5, Array(0..<40), false),       // every column (all rows equal)
            (1, [], false),                  // one row: the plain path
        ]
        for act in [Activation.none, .relu] {
            for withIndicators in [false, true] {
                let hoisted = layer(act, indicators: withIndicators, hoist: true)
                let plain = layer(act, indicators: withIndicators, hoist: false)
                let replica = Linear(sharing: hoisted)
                for (k, c) in cases.enumerated() {
                    let x = input(rows: c.rows, uniform: c.uniform, userGroup: c.userGroup, seed: UInt64(k + 1))
                    let what = "\(act), indicators \(withIndicators), case \(k)"
                    let expected = linearReference(plain, x)
                    let y = hoisted.forward(x).array
                    XCTAssertLessThanOrEqual(maxAbsDifference(y, expected), 1e-5, what)
                    XCTAssertLessThanOrEqual(maxAbsDifference(y, plain.forward(x).array), 1e-5, what)
                    XCTAssertEqual(replica.forward(x).array, y, "\(what): replica")
                    let hoistedColumns = hoisted.lastHoistedColumns
                    if c.rows == 1 {
                        XCTAssertEqual(hoistedColumns, 0, what)
                        XCTAssertEqual(hoisted.lastForwardMACs, withIndicators ? plain.lastForwardMACs : c.rows * inputs * outputs, what)
                    } else {
                        // At least the columns made uniform (more may be equal by chance: a one-hot
                        // column no row sets is 0 in every row).
                        XCTAssertGreaterThanOrEqual(hoistedColumns, c.uniform.count + (c.userGroup ? 6 : 0), what)
                        if hoistedColumns > 0 || withIndicators { XCTAssertLessThan(hoisted.lastForwardMACs, c.rows * inputs * outputs, what) }
                    }
                    XCTAssertEqual(plain.lastHoistedColumns, 0)
                }
            }
        }
    }

    /// Patterns alternating between batches (one plan each) give each batch its own result.
    func testAlternatingPatternsUseTheirOwnPlans() {
        let hoisted = layer(.relu, indicators: true, hoist: true)
        for round in 0..<3 {
            for (k, u) in [[0, 1], [3], Array(30..<40), [0, 1]].enumerated() {
                let x = input(rows: 16, uniform: u, userGroup: k % 2 == 0, seed: UInt64(10 * round + k))
                XCTAssertLessThanOrEqual(maxAbsDifference(hoisted.forward(x).array, linearReference(hoisted, x)), 1e-5, "round \(round), \(u)")
            }
        }
    }

    /// NaN in a column is never "uniform" (NaN ≠ NaN): it reaches the output as on the plain path.
    func testNaNColumnsAreNotHoisted() {
        let hoisted = layer(.none, indicators: true, hoist: true), plain = layer(.none, indicators: true, hoist: false)
        let x = input(rows: 4, uniform: [0, 1], userGroup: true, seed: 3)
        for s in 0..<4 { x[s, 1] = .nan }
        let y = hoisted.forward(x).array, z = plain.forward(x).array
        XCTAssertEqual(y.map(\.isNaN), z.map(\.isNaN))
        XCTAssertTrue(y.allSatisfy(\.isNaN))
    }

    /// Feeding a BF16 layer (`emitsBF16Output`): the hoisted path fills the rounded output too
    /// (its values are checked end to end by the BF16 W&D in `InferenceFreezeTests`).
    func testBF16OutputIsFilled() {
        let l = layer(.relu, indicators: true, hoist: true, emitsBF16: true)
        for (rows, uniform) in [(8, [0, 2, 4]), (13, Array(0..<12)), (4, Array(0..<40))] {
            let x = input(rows: rows, uniform: uniform, userGroup: true, seed: UInt64(rows))
            let y = l.forward(x).array
            XCTAssertLessThanOrEqual(maxAbsDifference(y, linearReference(l, x)), 1e-5, "\(rows) rows")
            XCTAssertGreaterThan(l.lastHoistedColumns, 0)
            // The rounded output is this layer's own output rounded (fused or not).
            let ob = l.lastOutputBF16
            XCTAssertEqual(ob?.count, rows * outputs)
            if let ob { XCTAssertEqual((0..<(rows * outputs)).map { ob[$0] }, y.map { BF16.rounded($0) }, "\(rows) rows") }
        }
    }

    /// Indicator columns holding counts (not only 0/1) are scaled by their value on every path.
    func testIndicatorCountsAreScaled() {
        let hoisted = layer(.relu, indicators: true, hoist: true)
        let x = input(rows: 11, uniform: [0, 1], userGroup: true, seed: 9)
        for s in 0..<11 { x[s, indicators.lowerBound + 6 + s % 6] = Float(s % 3) + 0.5 }
        XCTAssertLessThanOrEqual(maxAbsDifference(hoisted.forward(x).array, linearReference(hoisted, x)), 1e-5)
    }

    /// `omitsFP32Output` (set by `MLP.freezeForInference` when the next layer reads the rounded
    /// output): the same rounded output as a layer that also writes FP32, on every batch shape.
    func testOmittingTheFP32OutputKeepsTheRoundedOutput() throws {
        func make(omits: Bool) -> Linear {
            let l = layer(.relu, indicators: true, hoist: true, emitsBF16: true)
            l.omitsFP32Output = omits
            return l
        }
        let full = make(omits: false), lean = make(omits: true), replica = Linear(sharing: lean)
        XCTAssertTrue(replica.omitsFP32Output)
        for (rows, uniform) in [(8, [0, 2, 4]), (13, Array(0..<12)), (4, Array(0..<40)), (1, [])] {
            let x = input(rows: rows, uniform: uniform, userGroup: true, seed: UInt64(rows + 3))
            _ = full.forward(x)
            _ = lean.forward(x)
            _ = replica.forward(x)
            let a = try XCTUnwrap(full.lastOutputBF16), b = try XCTUnwrap(lean.lastOutputBF16), r = try XCTUnwrap(replica.lastOutputBF16)
            XCTAssertEqual(b.count, rows * outputs)
            XCTAssertEqual((0..<(rows * outputs)).map { b[$0] }, (0..<(rows * outputs)).map { a[$0] }, "\(rows) rows")
            XCTAssertEqual((0..<(rows * outputs)).map { r[$0] }, (0..<(rows * outputs)).map { a[$0] }, "\(rows) rows: replica")
        }
    }
}
