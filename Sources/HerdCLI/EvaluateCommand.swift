import ArgumentParser
import Foundation
import HerdData
import HerdTraining

/// Which export and which rows a command reads: `--model DIR --data FILE`, or a model of a
/// workspace (`--workspace W --name N`: the current version of W/models/N, the rows of
/// W/features/test.herdtable).
struct ExportDataOptions: ParsableArguments {
    @Option(help: "Model export directory (OUT/model of herd train, or W/models/NAME/VERSION).") var model: String?
    @Option(help: "Data file: Criteo TSV/CSV for Criteo exports; for feature-table exports a .herdtable (encoded like the training table) or raw rows with --schema. With or without labels. Default with --workspace: W/features/test.herdtable.") var data: String?
    @Option(help: "Workspace directory: with --name, the current version of W/models/NAME and W/features tables.") var workspace: String?
    @Option(help: "Model name in the workspace (W/models/NAME; its highest version is used).") var name: String?
    @Option(help: "Schema of raw rows for a feature-table export (the one they were read with at training time).") var schema: String?
    @Option(help: "What to do with a malformed row: fail (default) or skip and count.") var onError: OnError = .fail
    @Option(help: "Directory for the binary columnar cache of Criteo files (default: beside the data file).") var cacheDir: String?
    @Option(help: "Rows per inference batch.") var batchSize = 8192

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
        if workspace == nil {
            guard name == nil else { throw ValidationError("--name names a model in a workspace: give --workspace W too") }
            guard model != nil else { throw ValidationError("give --model DIR (an export), or --workspace W --name NAME") }
        } else {
            guard (model == nil) != (name == nil) else { throw ValidationError("with --workspace give --name NAME (or --model DIR), not both or neither") }
        }
    }

    var workspaceValue: Workspace? { workspace.map { Workspace(path: $0) } }

    /// The export directory: `--model`, or the current version of `--name` in the workspace.
    func modelURL() throws -> URL {
        if let model { return URL(fileURLWithPath: model) }
        return try workspaceValue!.latestModel(name!)
    }

    /// `--data`, or W/features/test.herdtable.
    func dataPath() throws -> String {
        if let data { return data }
        guard let ws = workspaceValue else { throw ValidationError("give --data FILE (or --workspace W to read W/features/test.herdtable)") }
        try ws.require(ws.table("test"), writtenBy: "herd preprocess … --workspace \(ws.root.path)")
        return ws.table("test").path
    }

    /// Loads the export and opens the data with its feature transform.
    func open() throws -> (ModelExport, ExportRows, String) {
        let export = try ModelExport.load(from: try modelURL())
        let path = try dataPath()
        return (export, try ExportRows.open(export, path: path, schema: schema, onError: onError, cacheDir: cacheDir), path)
    }
}

/// `herd evaluate`: a command group; without a subcommand it runs `model` (ranking metrics of an
/// export); `retrieval` scores the workspace's two-tower embeddings (recall@k, ndcg@k vs popularity).
struct Evaluate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate an exported model on labelled rows: AUC, logloss, accuracy, precision, recall.",
        discussion: """
            Without a subcommand, herd evaluate runs herd evaluate model:
              herd evaluate --model DIR --data FILE [--json]
              herd evaluate --workspace W --name NAME [--json]
            with --schema S, --on-error fail|skip, --cache-dir D, --batch-size N as there. --model is an export directory, --data a Criteo file (Criteo exports) or a .herdtable / raw \
            rows with --schema (feature-table exports); with --workspace W --name NAME the current \
            version of W/models/NAME is evaluated on W/features/test.herdtable. See herd evaluate model --help.
            """,
        subcommands: [EvaluateModel.self, EvaluateRetrieval.self],
        defaultSubcommand: EvaluateModel.self)
}

/// `herd evaluate model`: metrics of an exported model on labelled rows.
struct EvaluateModel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Evaluate an exported model on labelled rows (Criteo file or feature table): AUC, logloss, accuracy, precision, recall.")

    @OptionGroup var options: ExportDataOptions
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let (export, dataset, path) = try options.open()
        guard dataset.labelled else {
            throw ValidationError("\(path) has no label column; evaluate needs labels (use herd predict for unlabelled files)")
        }
        if export.config.kind == .twotower { FileHandle.standardError.write(Data("note: a two-tower model is evaluated here as a ranker of its rows (sigmoid of ⟨u, v⟩/τ)\n".utf8)) }
        let t0 = Date()
        let (m, _) = Evaluation.run(DataParallel(model: export.model), dataset.source, batchSize: options.batchSize)
        let seconds = Date().timeIntervalSince(t0)
        if json {
            var d = metricsDictionary(m)
            d["rows"] = dataset.rows
            d["skipped_rows"] = dataset.skippedRows
            d["samples_per_s"] = Double(dataset.rows) / max(seconds, 1e-9)
            d["model"] = export.config.kind.rawValue
            if let name = options.name { d["name"] = name }
            d["export"] = try options.modelURL().path
            print(jsonLine(d))
        } else {
            print(String(format: "%@ on %@: AUC %.4f  logloss %.4f  accuracy %.4f  precision %.4f  recall %.4f", export.config.kind.rawValue, path, m.auc, m.logloss, m.accuracy, m.precision, m.recall))
            print(String(format: "%d rows (%d skipped), %.0f samples/s", dataset.rows, dataset.skippedRows, Double(dataset.rows) / max(seconds, 1e-9)))
        }
    }
}

/// `herd predict`: click probabilities of a ranking export, one per line; for a two-tower export
/// in a workspace, the user and item embeddings.
struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an exported model's click probability for every row (Criteo file or feature table), one per line; or a two-tower model's user and item embeddings.",
        discussion: """
            Ranking models: herd predict --model DIR --data FILE --out FILE (or --workspace W --name NAME \
            [--data FILE] --out FILE, reading W/features/test.herdtable by default).
            Two-tower models: herd predict --workspace W --name NAME embeds every row of \
            W/features/user.herdtable and W/features/item.herdtable (the key column and the tower's \
            feature columns, encoded as in train.herdtable) and writes W/embeddings/user.safetensors and \
            item.safetensors: `ids` I64 [N] (key column values), `embeddings` F32 [N, E] (unit rows), \
            __metadata__ key_column, model, version.
            """)

    @OptionGroup var options: ExportDataOptions
    @Option(help: "Output file of probabilities (written atomically); ranking models.") var out: String?
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let url = try options.modelURL()
        let export = try ModelExport.load(from: url)
        if export.config.kind == .twotower {
            guard let ws = options.workspaceValue else {
                throw ValidationError("a two-tower export writes user and item embeddings into a workspace: give --workspace W (it reads W/features/user.herdtable and item.herdtable)")
            }
            try writeEmbeddings(export, modelURL: url, workspace: ws)
            return
        }
        guard let out else { throw ValidationError("--out FILE is required: where the probabilities go") }
        let path = try options.dataPath()
        let dataset = try ExportRows.open(export, path: path, schema: options.schema, onError: options.onError, cacheDir: options.cacheDir)
        let t0 = Date()
        let (p, _) = Evaluation.predict(DataParallel(model: export.model), dataset.source, batchSize: options.batchSize)
        let seconds = Date().timeIntervalSince(t0)
        var text = ""
        text.reserveCapacity(p.count * 10)
        for v in p { text += String(format: "%.7g\n", v) }  // NOTE: %g keeps tiny probabilities (a fixed 6 decimals rounds them to 0)
        try AtomicFile.write(Data(text.utf8), to: URL(fileURLWithPath: out))
        if json {
            print(jsonLine(["rows": dataset.rows, "skipped_rows": dataset.skippedRows, "out": out, "samples_per_s": Double(dataset.rows) / max(seconds, 1e-9)]))
        } else {
            print(String(format: "wrote %d probabilities to %@ (%d rows skipped), %.0f samples/s", p.count, out, dataset.skippedRows, Double(dataset.rows) / max(seconds, 1e-9)))
        }
    }
}
