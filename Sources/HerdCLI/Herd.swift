import ArgumentParser

/// The `herd` command: from raw click logs to a trained, exported, evaluated model.
@available(macOS 10.15, macCatalyst 13, iOS 13, tvOS 13, watchOS 6, *)
public struct Herd: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "herd",
        abstract: "Recommender-system toolkit: feature engineering, training, evaluation, export and serving.",
        version: "0.1.0",
        subcommands: [Generate.self, Preprocess.self, Train.self, Evaluate.self, Predict.self, LoadTest.self, Serve.self, NearlineCommand.self, RecommendCommand.self, Bench.self])

    public init() {}
}
