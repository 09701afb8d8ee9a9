import ArgumentParser
import Foundation
import HerdData
import HerdTraining

/// `herd generate …`: synthetic data sets with a known answer.
public struct Generate: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate synthetic click and engagement logs from a planted model.",
        subcommands: [GenerateCriteo.self, GenerateRecSys2021.self])

    public init() {}
}

/// The options every generator takes: size, seed, split and where the files go (`--out DIR`, or
/// `--workspace W` → `W/data`, the default being `./herd-workspace/data`).
struct GenerateOptions: ParsableArguments {
    @Option(help: "Total rows (train + test).")
    var rows: Int = 100_000

    @Option(help: "Random seed; the same seed, rows and test fraction give the same bytes.")
    var seed: UInt64 = 1

    @Option(help: "Output directory (created if needed). Give this or --workspace, not both.")
    var out: String?

    @Option(help: "Workspace directory: the files go to WORKSPACE/data, where `herd preprocess` finds them (default ./\(Workspace.defaultPath) when --out is not given).")
    var workspace: String?

    @Option(help: "Fraction of rows written to test.txt (the last rows).")
    var testFraction: Double = 0.1

    func validate() throws {
        if out != nil && workspace != nil { throw ValidationError("give --out DIR or --workspace W, not both") }
    }

    /// The directory to write: `--out`, else the workspace's `data/` (the workspace is created).
    func directory() throws -> String {
        if let out { return out }
        let ws = Workspace(path: workspace ?? Workspace.defaultPath)
        try ws.create()
        return ws.data.path
    }
}

extension GenerateOptions {
    /// Times `write(directory)` and prints what was written, `details` lines, and the oracle's
    /// scores with the speed.
    func run<O: PlantedOracle>(files: [String], _ write: (String) throws -> O, details: (O) -> [String] = { _ in [] }) throws {
        let start = Date()
        let dir = try directory()
        let oracle = try write(dir)
        let seconds = Date().timeIntervalSince(start)
        let counts = ["train.txt": " (\(oracle.trainRows) rows)", "test.txt": " (\(oracle.testRows) rows)"]
        print("wrote " + files.map { "\(dir)/\($0)\(counts[$0] ?? "")" }.joined(separator: ", "))
        for line in details(oracle) { print(line) }
        print(String(format: "positive rate %.4f, oracle test AUC %.4f (%.4f without interactions), logloss %.4f (baseline %.4f); %.1f s, %.0f rows/s",
                     oracle.positiveRate, oracle.testAUC, oracle.testAUCWithoutInteractions, oracle.testLogloss, oracle.testLoglossBaseline,
                     seconds, Double(rows) / max(seconds, 1e-9)))
    }
}

/// `herd generate criteo --rows N --seed S (--out DIR | --workspace W) [--test-fraction F]`.
///
/// NOTE: a synchronous `ParsableCommand` (the work is synchronous): it runs whether the root is
/// entered through ArgumentParser's async or sync `main()`.
public struct GenerateCriteo: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "criteo",
        abstract: "Write Criteo-format train.txt/test.txt (Kaggle TSV) and oracle.json (the planted model's test AUC/logloss).")

    @OptionGroup var options: GenerateOptions

    public init() {}

    public func run() throws {
        let generator = try CriteoGenerator(rows: options.rows, seed: options.seed)
        try options.run(files: ["train.txt", "test.txt", "oracle.json"]) { try generator.write(to: $0, testFraction: options.testFraction) }
    }
}

/// `herd generate recsys2021 --rows N --seed S (--out DIR | --workspace W) [--test-fraction F]`.
///
/// NOTE: synchronous like `GenerateCriteo`.
public struct GenerateRecSys2021: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "recsys2021",
        abstract: "Write Twitter RecSys Challenge 2021-format train.txt/test.txt, schema.json and oracle.json (the planted model's test AUC/logloss for any engagement).",
        discussion: "With --workspace W (or neither --out nor --workspace) the files go to W/data, the input of `herd preprocess recsys2021 --workspace W`.")

    @OptionGroup var options: GenerateOptions
    @Option(help: "Users in the pool (engaging and engaged-with; default rows / 4). Fewer are seen: draws are Zipf-distributed.")
    var users: Int?
    @Option(help: "Tweets in the pool (default rows / 2). Fewer are seen: draws are Zipf-distributed.")
    var items: Int?

    public init() {}

    public func run() throws {
        let generator = try RecSys2021Generator(rows: options.rows, seed: options.seed, users: users, tweets: items)
        try options.run(files: ["train.txt", "test.txt", "schema.json", "oracle.json"], { try generator.write(to: $0, testFraction: options.testFraction) }) { oracle in
            let rates = RecSys2021Schema.engagementNames.map { "\($0) " + String(format: "%.4f", oracle.engagementPositiveRates[$0] ?? .nan) }
            return ["\(oracle.users) users (pool \(oracle.userPool)), \(oracle.items) tweets (pool \(oracle.itemPool)); engagement rates: \(rates.joined(separator: ", "))"]
        }
    }
}
