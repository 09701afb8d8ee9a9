import ArgumentParser
import Foundation
import HerdData

/// `herd generate …`: synthetic data sets with a known answer.
public struct Generate: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate synthetic click and engagement logs from a planted model.",
        subcommands: [GenerateCriteo.self, GenerateRecSys2021.self])

    public init() {}
}

/// `herd generate criteo --rows N --seed S --out DIR [--test-fraction F]`.
///
/// NOTE: a synchronous `ParsableCommand` (the work is synchronous): it runs whether the root is
/// entered through ArgumentParser's async or sync `main()`.
public struct GenerateCriteo: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "criteo",
        abstract: "Write Criteo-format train.txt/test.txt (Kaggle TSV) and oracle.json (the planted model's test AUC/logloss).")

    @Option(help: "Total rows (train + test).")
    var rows: Int = 100_000

    @Option(help: "Random seed; the same seed, rows and test fraction give the same bytes.")
    var seed: UInt64 = 1

    @Option(help: "Output directory (created if needed).")
    var out: String

    @Option(help: "Fraction of rows written to test.txt (the last rows).")
    var testFraction: Double = 0.1

    public init() {}

    public func run() throws {
        let start = Date()
        let generator = try CriteoGenerator(rows: rows, seed: seed)
        let oracle = try generator.write(to: out, testFraction: testFraction)
        let seconds = Date().timeIntervalSince(start)
        print("wrote \(out)/train.txt (\(oracle.trainRows) rows), \(out)/test.txt (\(oracle.testRows) rows), \(out)/oracle.json")
        print(String(format: "positive rate %.4f, oracle test AUC %.4f (%.4f without interactions), logloss %.4f (baseline %.4f); %.1f s, %.0f rows/s",
                     oracle.positiveRate, oracle.testAUC, oracle.testAUCWithoutInteractions, oracle.testLogloss, oracle.testLoglossBaseline,
                     seconds, Double(rows) / max(seconds, 1e-9)))
    }
}

/// `herd generate recsys2021 --rows N --seed S --out DIR [--test-fraction F]`.
///
/// NOTE: synchronous like `GenerateCriteo`.
public struct GenerateRecSys2021: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "recsys2021",
        abstract: "Write Twitter RecSys Challenge 2021-format train.txt/test.txt, schema.json and oracle.json (the planted model's test AUC/logloss for any engagement).")

    @Option(help: "Total rows (train + test).")
    var rows: Int = 100_000

    @Option(help: "Random seed; the same seed, rows and test fraction give the same bytes.")
    var seed: UInt64 = 1

    @Option(help: "Output directory (created if needed).")
    var out: String

    @Option(help: "Fraction of rows written to test.txt (the last rows).")
    var testFraction: Double = 0.1

    public init() {}

    public func run() throws {
        let start = Date()
        let generator = try RecSys2021Generator(rows: rows, seed: seed)
        let oracle = try generator.write(to: out, testFraction: testFraction)
        let seconds = Date().timeIntervalSince(start)
        print("wrote \(out)/train.txt (\(oracle.trainRows) rows), \(out)/test.txt (\(oracle.testRows) rows), \(out)/schema.json, \(out)/oracle.json")
        let rates = RecSys2021Schema.engagementNames.map { "\($0) " + String(format: "%.4f", oracle.engagementPositiveRates[$0] ?? .nan) }
        print("\(oracle.users) users (pool \(oracle.userPool)), \(oracle.items) tweets (pool \(oracle.itemPool)); engagement rates: \(rates.joined(separator: ", "))")
        print(String(format: "positive rate %.4f, oracle test AUC %.4f (%.4f without interactions), logloss %.4f (baseline %.4f); %.1f s, %.0f rows/s",
                     oracle.positiveRate, oracle.testAUC, oracle.testAUCWithoutInteractions, oracle.testLogloss, oracle.testLoglossBaseline,
                     seconds, Double(rows) / max(seconds, 1e-9)))
    }
}
