import HerdCLI

await Herd.main()
