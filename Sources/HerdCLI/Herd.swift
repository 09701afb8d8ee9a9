import ArgumentParser

/// The `herd` command: from raw click logs to a trained, exported, evaluated model.
public struct Herd: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "herd",
        abstract: "Recommender-system toolkit: feature engineering, training, evaluation, export and serving.",
        version: "0.1.0",
        subcommands: [Generate.self, BenchPreprocess.self])

    public init() {}
}
