import XCTest
@testable import HerdData

final class OracleScoresTests: XCTestCase {
    /// Every field against a hand-computed split: 4 test rows (2 positive), 6 training rows (3 positive).
    func testScoresOfAHandComputedSplit() {
        let s = OracleScores(testProbabilities: [0.1, 0.4, 0.35, 0.8], mainEffectScores: [0.3, 0.2, 0.1, 0.4],
                             testLabels: [false, false, true, true], trainRows: 6, trainPositives: 3)
        XCTAssertEqual(s.testAUC, 0.75)                      // pairs (0.35>0.1), (0.8>0.1), (0.8>0.4) of 4
        XCTAssertEqual(s.testAUCWithoutInteractions, 0.5)    // (0.4>0.3), (0.4>0.2) of 4
        let ll = -(log(0.9) + log(0.6) + log(0.35) + log(0.8)) / 4
        XCTAssertEqual(s.testLogloss, ll, accuracy: 1e-12)
        XCTAssertEqual(s.testLoglossBaseline, log(2), accuracy: 1e-12)  // always 0.5
        XCTAssertEqual(s.trainRows, 6); XCTAssertEqual(s.testRows, 4)
        XCTAssertEqual(s.positiveRate, 0.5); XCTAssertEqual(s.trainPositiveRate, 0.5); XCTAssertEqual(s.testPositiveRate, 0.5)
    }

    /// `oracle.json` is one flat object: the scores' keys beside the data set's own, and it decodes back.
    func testOracleJSONIsFlatAndRoundTrips() throws {
        let scores = OracleScores(testProbabilities: [0.2, 0.7], mainEffectScores: [0.2, 0.7], testLabels: [false, true],
                                  trainRows: 2, trainPositives: 1)
        let oracle = CriteoOracle(scores: scores, seed: 9, cardinalities: [3, 4])
        let data = try JSONEncoder().encode(oracle)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(object["test_auc"] as? Double, 1)
        XCTAssertEqual(object["seed"] as? Int, 9)
        XCTAssertNil(object["scores"])
        XCTAssertEqual(try JSONDecoder().decode(CriteoOracle.self, from: data), oracle)
        XCTAssertEqual(oracle.testAUC, 1)  // PlantedOracle forwards the scores
        let r = RecSys2021Oracle(scores: scores, engagementPositiveRates: ["like": 0.5], engagementTestAUC: [:],
                                 seed: 1, users: 2, items: 3, userPool: 4, itemPool: 5)
        XCTAssertEqual(try JSONDecoder().decode(RecSys2021Oracle.self, from: JSONEncoder().encode(r)), r)
    }
}
