import HerdTensor
import XCTest

final class KernelFiniteTests: XCTestCase {
    /// `allFinite` against a plain loop: every length 0…40, a bad value (NaN, ±inf) at every
    /// position, and huge finite values (whose sum would overflow) staying finite.
    func testAllFiniteMatchesAPlainLoop() {
        for n in 0...40 {
            var v = (0..<n).map { Float($0) * 0.37 - 3 }
            XCTAssertTrue(v.withUnsafeBufferPointer { Kernels.allFinite($0.baseAddress!, count: n) }, "n \(n)")
            var big = [Float](repeating: .greatestFiniteMagnitude, count: n)
            XCTAssertTrue(big.withUnsafeBufferPointer { Kernels.allFinite($0.baseAddress!, count: n) }, "max n \(n)")
            for bad in [Float.nan, .infinity, -.infinity] {
                for i in 0..<n {
                    let saved = v[i]
                    v[i] = bad
                    let plain = v.allSatisfy(\.isFinite)
                    XCTAssertFalse(plain)
                    XCTAssertEqual(v.withUnsafeBufferPointer { Kernels.allFinite($0.baseAddress!, count: n) }, plain, "n \(n) bad \(bad) at \(i)")
                    // Only `count` values are read.
                    XCTAssertTrue(v.withUnsafeBufferPointer { Kernels.allFinite($0.baseAddress!, count: i) }, "prefix \(i)")
                    v[i] = saved
                }
            }
        }
    }
}
