import Foundation
import HerdServing
import XCTest

/// The hand-written answer JSON equals `JSONEncoder`'s, byte for byte.
final class RecommendResponseJSONTests: XCTestCase {
    func responses() -> [RecommendResponse] {
        var timings = StageTimings()
        timings.recall = 0.000_412_5
        timings.features = 0.0012
        timings.preprocess = 1e-7
        timings.ranking = 0.015
        timings.topK = 0
        timings.total = 2
        let ranked = Recommendation(userID: 7, ids: [5, -3, Int64.max, 0], probs: [0.999_999_9, 0.5, 1e-30, 0], source: .ranked,
                                    candidates: 4, timings: timings)
        let degraded = Recommendation(userID: 1, ids: [1], probs: [1], source: .popular, coldStart: true, degraded: true,
                                      reason: "recall failed: \"quoted\" \\ back/slash\ttab\nnewline \u{1} ctl é 中 🙂", candidates: 1)
        var odd = RecommendResponse(ranked)
        odd.timingsMs = nil
        odd.source = nil
        return [RecommendResponse(ranked), RecommendResponse(degraded), odd,
                RecommendResponse(error: .invalidArgument("k = 0: ask for 1…1000 items")),
                RecommendResponse(error: .unavailable("store \u{7f} down\r\n")),
                RecommendResponse(Recommendation(userID: 2, ids: [], probs: [], source: .ranked, candidates: 0))]
    }

    func testSameBytesAsJSONEncoder() throws {
        for r in responses() {
            let fast = try r.jsonData(), reference = try r.encoderData()
            XCTAssertEqual(String(decoding: fast, as: UTF8.self), String(decoding: reference, as: UTF8.self))
            XCTAssertEqual(try JSONDecoder().decode(RecommendResponse.self, from: fast), r, "round trip")
        }
    }

    func testFloatsLikeJSONEncoder() throws {
        var rng = SystemRandomNumberGenerator()
        var probs: [Float] = (0..<2000).map { _ in Float.random(in: 0...1, using: &rng) }
        probs += [1, 0, 0.1, 1e-8, 3e-45, 0.5, 123_456_789, 1e20]
        let r = RecommendResponse(Recommendation(userID: 1, ids: probs.indices.map(Int64.init), probs: probs, source: .ranked,
                                                 candidates: probs.count))
        XCTAssertEqual(String(decoding: try r.jsonData(), as: UTF8.self), String(decoding: try r.encoderData(), as: UTF8.self))
    }

    func testNonFiniteProbThrowsLikeJSONEncoder() {
        let r = RecommendResponse(Recommendation(userID: 1, ids: [1, 2], probs: [0.5, .nan], source: .ranked, candidates: 2))
        XCTAssertThrowsError(try r.encoderData())
        XCTAssertThrowsError(try r.jsonData())
    }
}
