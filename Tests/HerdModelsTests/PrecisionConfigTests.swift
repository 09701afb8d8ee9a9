import Foundation
import HerdModels
import HerdTensor
import XCTest

final class PrecisionConfigTests: XCTestCase {
    func testConfigsWithoutPrecisionDecodeAsFP32AndBF16RoundTrips() throws {
        // JSON as written by exports made before the precision setting existed.
        let oldDLRM = #"{"bottomMLP":[16,4],"denseFeatures":3,"embeddingDim":4,"embeddingSpec":"dense","interaction":"dot","seed":5,"tableSizes":[20,10],"topMLP":[16,1]}"#
        let oldWnd = #"{"crossBuckets":50,"crosses":[[0,1]],"deepMLP":[16,1],"denseFeatures":3,"embeddingDim":4,"embeddingSpec":"dense","seed":0,"tableSizes":[20,10]}"#
        guard case .dlrm(let d) = try ModelConfig.decode(kind: .dlrm, json: Data(oldDLRM.utf8)),
              case .wnd(let w) = try ModelConfig.decode(kind: .wnd, json: Data(oldWnd.utf8)) else { return XCTFail("wrong kinds") }
        XCTAssertEqual(d.precision, .fp32)
        XCTAssertEqual(d.seed, 5)
        XCTAssertEqual(d.topMLP, [16, 1])
        XCTAssertEqual(w.precision, .fp32)
        XCTAssertEqual(w.crosses, [[0, 1]])
        XCTAssertEqual([d.bf16MinWidth, w.bf16MinWidth], [64, 64])  // absent: the default

        var d2 = d, w2 = w
        d2.precision = .bf16
        w2.precision = .bf16
        d2.bf16MinWidth = 0
        for config in [ModelConfig.dlrm(d2), .wnd(w2)] {
            let json = try config.jsonData()
            XCTAssertTrue(String(decoding: json, as: UTF8.self).contains(#""precision" : "bf16""#))
            XCTAssertEqual(try ModelConfig.decode(kind: config.kind, json: json), config)
            XCTAssertEqual(try config.build().precision, .bf16)
        }
        // A required field is still required.
        XCTAssertThrowsError(try ModelConfig.decode(kind: .dlrm, json: Data(#"{"tableSizes":[2]}"#.utf8)))
        XCTAssertThrowsError(try ModelConfig.decode(kind: .dlrm, json: Data(oldDLRM.replacingOccurrences(of: #""seed":5"#, with: #""seed":5,"precision":"fp8""#).utf8)))
    }
}
