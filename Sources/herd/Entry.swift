#if canImport(Glibc)
@preconcurrency import Glibc  // NOTE: @preconcurrency for the C global `stdout`
#elseif canImport(Darwin)
@preconcurrency import Darwin
#endif
import HerdCLI
import HerdTensor

// NOTE: `@main` (not a top-level `await Herd.main()`) makes the compiler pick ArgumentParser's
// async entry point, which async subcommands need.
@main
enum Entry {
    static func main() async {
        // NOTE: stdout line-buffered even into a file or a pipe: `print` goes through C stdio while
        // progress bars write to the file descriptor directly, so with stdio's default full
        // buffering the lines of `herd train > log` came out of order (and a killed run's were lost).
        setvbuf(stdout, nil, _IOLBF, 0)
        ProcessTuning.keepAllocationsInHeap()
        await Herd.main()
    }
}
