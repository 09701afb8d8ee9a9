import ArgumentParser

/// `herd preprocess …`: raw rows → feature tables.
///
/// `table` (the default, so `herd preprocess --pipeline …` keeps working) runs any pipeline file
/// on one file; `recsys2021` runs the built-in Friesian RecSys 2021 preprocessing on a workspace;
/// `movielens` writes the same workspace files (`W/features/…`) from MovieLens-100k.
struct Preprocess: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preprocess",
        abstract: "Turn raw rows into feature tables: a pipeline file on one file (table, the default), or a built-in workflow on a workspace.",
        subcommands: [PreprocessTable.self, PreprocessRecSys2021.self, PreprocessMovieLens.self],
        defaultSubcommand: PreprocessTable.self)
}
