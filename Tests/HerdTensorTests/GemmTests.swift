import HerdTensor
import HerdTestSupport
import XCTest

final class GemmTests: XCTestCase {
    /// Plain triple loop: C = alpha op(A) op(B) + beta C.
    func reference(_ ta: Transpose, _ tb: Transpose, _ a: Tensor, _ b: Tensor, _ c: Tensor, m: Int, n: Int, k: Int, alpha: Float, beta: Float) -> [Float] {
        var out = c.array
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k {
                    let av = ta == .none ? a[i * k + p] : a[p * m + i]
                    let bv = tb == .none ? b[p * n + j] : b[j * k + p]
                    s += av * bv
                }
                out[i * n + j] = alpha * s + beta * out[i * n + j]
            }
        }
        return out
    }

    func testAllTransposeCasesMatchReferenceLoop() {
        for (ta, tb) in [(Transpose.none, Transpose.none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed)] {
            for (m, n, k) in [(1, 1, 1), (7, 5, 3), (130, 67, 33), (300, 20, 513)] {
                let a = randomTensor(ta == .none ? [m, k] : [k, m], seed: 1)
                let b = randomTensor(tb == .none ? [k, n] : [n, k], seed: 2)
                let c = randomTensor([m, n], seed: 3)
                let expected = reference(ta, tb, a, b, c, m: m, n: n, k: k, alpha: 0.7, beta: 0.3)
                parallelGemm(ta, tb, m: m, n: n, k: k, alpha: 0.7, a: a.data, lda: a.columns, b: b.data, ldb: b.columns, beta: 0.3, c: c.data, ldc: n)
                XCTAssertLessThan(maxAbsDifference(c.array, expected), 1e-3 * Float(k).squareRoot(), "\(ta) \(tb) \(m)x\(n)x\(k)")
            }
        }
    }

    func testZeroInnerDimensionScalesC() {
        let c = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        let a = Tensor(shape: [2, 0]), b = Tensor(shape: [0, 2])
        gemm(.none, .none, m: 2, n: 2, k: 0, a: a.data, lda: 1, b: b.data, ldb: 2, beta: 0.5, c: c.data, ldc: 2)
        XCTAssertEqual(c.array, [0.5, 1, 1.5, 2])
    }
}
