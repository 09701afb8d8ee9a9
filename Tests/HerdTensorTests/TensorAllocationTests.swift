import HerdTensor
import XCTest

final class TensorAllocationTests: XCTestCase {
    /// Large tensors take the huge-page path: 2 MiB-aligned, zero-filled, every element usable;
    /// small ones stay 64-byte aligned.
    func testLargeTensorsAreHugePageAlignedAndZeroed() {
        let n = Tensor.hugePageMinBytes / 4 + 3
        let t = Tensor(shape: [n])
        XCTAssertEqual(Int(bitPattern: UnsafeRawPointer(t.data)) % (1 << 21), 0)
        XCTAssertTrue((0..<n).allSatisfy { t[$0] == 0 })
        t.data[n - 1] = 5
        XCTAssertEqual(t[n - 1], 5)
        let small = Tensor(shape: [100])
        XCTAssertEqual(Int(bitPattern: UnsafeRawPointer(small.data)) % 64, 0)
        XCTAssertTrue((0..<100).allSatisfy { small[$0] == 0 })
    }
}
