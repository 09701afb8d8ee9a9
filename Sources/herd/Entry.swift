import HerdCLI

// NOTE: `@main` (not a top-level `await Herd.main()`) makes the compiler pick ArgumentParser's
// async entry point, which async subcommands need.
@main
extension Herd {}
