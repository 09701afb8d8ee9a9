import Foundation
import HerdLayers
import HerdTensor
import HerdTestSupport
@testable import HerdTraining
import XCTest

/// Each optimizer against a plain scalar re-implementation of its formula, on dense parameters and
/// on the touched rows of a table (untouched rows must not move).
final class OptimizerTests: XCTestCase {
    func param(_ v: [Float], _ g: [Float]) -> Parameter {
        let p = Parameter(name: "p", value: Tensor(shape: [v.count], values: v))
        p.grad.copy(from: Tensor(shape: [g.count], values: g))
        return p
    }

    func testSGD() throws {
        let o = try makeOptimizer(spec: "sgd")
        let p = param([1, 2], [0.5, -1])
        o.beginStep(); o.update(p, lr: 0.1)
        XCTAssertEqual(p.value.array, [0.95, 2.1])
    }

    func testAdagradTwoSteps() throws {
        let o = try makeOptimizer(spec: "adagrad:eps=0")
        let p = param([1], [2])
        o.beginStep(); o.update(p, lr: 0.1)  // G=4, w = 1 - 0.1*2/2 = 0.9
        o.beginStep(); o.update(p, lr: 0.1)  // G=8, w = 0.9 - 0.1*2/√8
        XCTAssertEqual(Double(p.value[0]), 0.9 - 0.2 / 8.0.squareRoot(), accuracy: 1e-6)
    }

    func testAdamMatchesScalarFormula() throws {
        let o = try makeOptimizer(spec: "adam:beta1=0.9,beta2=0.999,eps=1e-8")
        let p = param([0.5], [0])
        var w = 0.5, m = 0.0, v = 0.0
        for (t, g) in [0.3, -0.2, 0.7].enumerated() {
            p.grad[0] = Float(g)
            o.beginStep(); o.update(p, lr: 0.01)
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            let mh = m / (1 - pow(0.9, Double(t + 1))), vh = v / (1 - pow(0.999, Double(t + 1)))
            w -= 0.01 * mh / (vh.squareRoot() + 1e-8)
        }
        XCTAssertEqual(Double(p.value[0]), w, accuracy: 1e-6)
    }

    func testFTRLMatchesScalarFormula() throws {
        let o = try makeOptimizer(spec: "ftrl:l1=0.01,l2=0.1,beta=1")
        let p = param([0], [0])
        var w = 0.0, z = 0.0, n = 0.0
        let alpha = 0.5
        for g in [0.4, -0.1, 0.3] {
            p.grad[0] = Float(g)
            o.beginStep(); o.update(p, lr: Float(alpha))
            let sigma = ((n + g * g).squareRoot() - n.squareRoot()) / alpha
            z += g - sigma * w
            n += g * g
            w = abs(z) <= 0.01 ? 0 : -(z - (z < 0 ? -1 : 1) * 0.01) / ((1 + n.squareRoot()) / alpha + 0.1)
        }
        XCTAssertEqual(Double(p.value[0]), w, accuracy: 1e-6)
        XCTAssertNotEqual(w, 0)
    }

    func testSparseUpdatesTouchOnlyGradientRows() throws {
        for spec in ["sgd", "adagrad", "rowwise_adagrad", "adam", "lazy_adam", "ftrl"] {
            let o = try makeOptimizer(spec: spec)
            let table = DenseEmbeddingTable(name: "t", weight: Tensor(shape: [4, 2], values: [1, 1, 2, 2, 3, 3, 4, 4]))
            let g = SparseRowGradient(ids: [1, 3], rows: Tensor(shape: [2, 2], values: [0.5, -0.5, 1, 1]), dimension: 2)
            o.beginStep(); o.update(table: table, gradient: g, lr: 0.1)
            XCTAssertEqual(Array(table.weight.array[0..<2]), [1, 1], spec)
            XCTAssertEqual(Array(table.weight.array[4..<6]), [3, 3], spec)
            XCTAssertNotEqual(Array(table.weight.array[2..<4]), [2, 2], spec)
            XCTAssertNotEqual(Array(table.weight.array[6..<8]), [4, 4], spec)
        }
    }

    func testRowwiseAdagradUsesOneAccumulatorPerRow() throws {
        let o = try makeOptimizer(spec: "rowwise_adagrad:eps=0")
        let table = DenseEmbeddingTable(name: "t", weight: Tensor(shape: [1, 2], values: [0, 0]))
        let g = SparseRowGradient(ids: [0], rows: Tensor(shape: [1, 2], values: [3, 1]), dimension: 2)
        o.beginStep(); o.update(table: table, gradient: g, lr: 1)
        let acc = (9.0 + 1.0) / 2  // mean of g² over the row
        XCTAssertEqual(Double(table.weight[0]), -3 / acc.squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(Double(table.weight[1]), -1 / acc.squareRoot(), accuracy: 1e-6)
    }

    func testSpecErrorsNameTheProblem() {
        XCTAssertThrowsError(try makeOptimizer(spec: "adamw")) { XCTAssertTrue("\($0)".contains("unknown optimizer 'adamw'")) }
        XCTAssertThrowsError(try makeOptimizer(spec: "adam:momentum=1")) { XCTAssertTrue("\($0)".contains("no option 'momentum'")) }
        XCTAssertThrowsError(try makeOptimizer(spec: "adam:beta1")) { XCTAssertTrue("\($0)".contains("key=value")) }
    }

    func testScheduleWarmupAndDecay() {
        let s = LearningRateSchedule(base: 1, warmupSteps: 4, decayStartStep: 10, decaySteps: 10)
        XCTAssertEqual(s.rate(at: 0), 0.25)
        XCTAssertEqual(s.rate(at: 3), 1)
        XCTAssertEqual(s.rate(at: 9), 1)
        XCTAssertEqual(s.rate(at: 15), 0.25, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 25), 0)
    }

    func testOptimizerStateRoundTrip() throws {
        let a = try makeOptimizer(spec: "adam")
        let p = param([1, 2], [0.1, 0.2])
        a.beginStep(); a.update(p, lr: 0.1)
        let saved = Dictionary(uniqueKeysWithValues: a.state.map { ($0.0, $0.1.clone()) })
        let b = try makeOptimizer(spec: "adam")
        try b.load(state: saved)
        let p2 = param(p.value.array, [0.3, -0.1])
        p.grad.copy(from: p2.grad)
        a.beginStep(); a.update(p, lr: 0.1)
        b.beginStep(); b.update(p2, lr: 0.1)
        XCTAssertEqual(p.value.array, p2.value.array)
    }
}
