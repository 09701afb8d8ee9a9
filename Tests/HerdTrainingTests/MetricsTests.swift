import HerdTraining
import XCTest

final class MetricsTests: XCTestCase {
    func testHandComputedCaseWithTies() {
        // Scores with a tie between a positive and a negative at 0.5.
        let p: [Float] = [0.1, 0.5, 0.5, 0.8, 0.3]
        let y: [Float] = [0, 1, 0, 1, 1]
        // Pairs (pos, neg): positives {0.5, 0.8, 0.3}, negatives {0.1, 0.5}.
        // 0.5 vs 0.1 → 1, vs 0.5 → ½; 0.8 → 1, 1; 0.3 vs 0.1 → 1, vs 0.5 → 0. Sum 4.5 of 6.
        let m = BinaryMetrics(probabilities: p, labels: y)
        XCTAssertEqual(m.auc, 4.5 / 6, accuracy: 1e-12)
        // threshold 0.5: predicted positive {0.5, 0.5, 0.8} → TP 2, FP 1; FN 1 (0.3), TN 1.
        XCTAssertEqual(m.accuracy, 3.0 / 5)
        XCTAssertEqual(m.precision, 2.0 / 3)
        XCTAssertEqual(m.recall, 2.0 / 3)
        let ll = -(log(0.9) + log(0.5) + log(0.5) + log(0.8) + log(0.3)) / 5
        XCTAssertEqual(m.logloss, ll, accuracy: 1e-6)
        XCTAssertEqual(m.positiveRate, 0.6)
    }

    func testSingleClassAUCIsNaN() {
        XCTAssertTrue(BinaryMetrics(probabilities: [0.2, 0.3], labels: [1, 1]).auc.isNaN)
    }

    func testPerfectAndReversedRanking() {
        XCTAssertEqual(BinaryMetrics.auc(probabilities: [0.1, 0.2, 0.9], labels: [0, 0, 1]), 1)
        XCTAssertEqual(BinaryMetrics.auc(probabilities: [0.9, 0.2, 0.1], labels: [0, 0, 1]), 0)
    }
}
