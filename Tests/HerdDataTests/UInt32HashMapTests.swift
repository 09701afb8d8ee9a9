@testable import HerdData
import HerdTensor
import XCTest

final class UInt32HashMapTests: XCTestCase {
    func testMatchesDictionaryThroughGrowthAndCollisions() {
        var rng = SplitMix64(seed: 3)
        var map = UInt32HashMap<Int>()
        var reference: [UInt32: Int] = [:]
        // Keys from a small range collide in slots; 0 and UInt32.max are ordinary keys.
        var keys: [UInt32] = [0, .max, 1 << 31]
        for _ in 0..<20_000 { keys.append(UInt32(truncatingIfNeeded: rng.next() % 5000) &* 65536) }
        for k in keys {
            map.update(k) { ($0 ?? 0) + 1 }
            reference[k, default: 0] += 1
        }
        XCTAssertEqual(map.count, reference.count)
        for (k, v) in reference { XCTAssertEqual(map.value(for: k), v) }
        XCTAssertNil(map.value(for: 12345))
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: map.entries.map { ($0.key, $0.value) }), reference)
    }
}
