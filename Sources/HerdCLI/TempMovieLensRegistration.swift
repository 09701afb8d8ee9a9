import ArgumentParser

/// TEMP (movielens branch only, dropped at merge): `herd preprocess` as a group holding
/// `movielens` next to today's command (the default), until the preprocess group lands.
struct PreprocessTempGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preprocess",
        abstract: "Fit a feature pipeline (JSON) on a CSV/TSV file, or apply a fitted one; or prepare MovieLens (movielens).",
        subcommands: [Preprocess.self, PreprocessMovieLens.self],
        defaultSubcommand: Preprocess.self)
}
