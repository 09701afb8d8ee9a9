import Foundation
@testable import HerdFeatures
import XCTest

final class TableFileTests: XCTestCase {
    /// Buffers larger than one write piece (4 MiB) are written by several workers at their
    /// offsets; the padding between buffers is never written and must read back as zeros.
    func testLargeBuffersWrittenInPiecesReadBackExactly() throws {
        let dir = try TemporaryDirectory()
        let n = 700_000  // 5.6 MB per int64/double buffer: two pieces each
        let ints = (0..<n).map { Int64($0 &* 2_654_435_761 % 1_000_003) }
        let t = try FeatureTable([
            ("a", Column(type: .int64, data: .int64(ints))),
            ("s", Column(strings: (0..<1000).flatMap { _ in ["x", nil, "yz"] } + Array(repeating: "w", count: n - 3000))),
            ("d", Column(type: .double, data: .double(ints.map { Double($0) / 7 }))),
            ("l", Column(int64Lists: (0..<n).map { $0 % 5 == 0 ? nil : Array(repeating: Int64($0), count: $0 % 3) })),
        ])
        let path = dir.file("big.herdtable")
        try TableFile.write(t, to: path)
        XCTAssertEqual(try TableFile.read(path: path), t)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        XCTAssertGreaterThan(size, 4 * n * 8)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp-\(getpid())"))
        // A failed write leaves nothing behind.
        XCTAssertThrowsError(try TableFile.write(t, to: dir.file("missing/dir/t.herdtable")))
    }
}
