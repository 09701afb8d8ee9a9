import HerdCLI
import HerdTensor

// NOTE: `@main` (not a top-level `await Herd.main()`) makes the compiler pick ArgumentParser's
// async entry point, which async subcommands need.
@main
enum Entry {
    static func main() async {
        ProcessTuning.keepAllocationsInHeap()
        await Herd.main()
    }
}
