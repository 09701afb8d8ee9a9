import ArgumentParser
import Foundation
import HerdData
import HerdTraining

/// Options shared by commands that read a data file through an export's feature state.
struct ExportDataOptions: ParsableArguments {
    @Option(help: "Model export directory (OUT/model of herd train, or W/models/<name>/<version>).") var model: String
    @Option(help: "Data file: Criteo TSV/CSV for Criteo exports; for feature-table exports a .herdtable (encoded like the training table) or raw rows with --schema. With or without labels.") var data: String
    @Option(help: "Schema of raw rows for a feature-table export (the one they were read with at training time).") var schema: String?
    @Option(help: "What to do with a malformed row: fail (default) or skip and count.") var onError: OnError = .fail
    @Option(help: "Directory for the binary columnar cache (default: beside the data file).") var cacheDir: String?
    @Option(help: "Rows per inference batch.") var batchSize = 8192

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
    }

    /// Loads the export and opens the data with its feature transform.
    func open() throws -> (ModelExport, ExportRows) {
        let export = try ModelExport.load(from: URL(fileURLWithPath: model))
        return (export, try ExportRows.open(export, path: data, schema: schema, onError: onError, cacheDir: cacheDir))
    }
}

/// `herd evaluate`: metrics of an exported model on a labelled file.
struct Evaluate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate an exported model on labelled rows (Criteo file or feature table): AUC, logloss, accuracy, precision, recall.")

    @OptionGroup var options: ExportDataOptions
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let (export, dataset) = try options.open()
        guard dataset.labelled else {
            throw ValidationError("\(options.data) has no label column; evaluate needs labels (use herd predict for unlabelled files)")
        }
        let t0 = Date()
        let (m, _) = Evaluation.run(DataParallel(model: export.model), dataset.source, batchSize: options.batchSize)
        let seconds = Date().timeIntervalSince(t0)
        if json {
            var d = metricsDictionary(m)
            d["rows"] = dataset.rows
            d["skipped_rows"] = dataset.skippedRows
            d["samples_per_s"] = Double(dataset.rows) / max(seconds, 1e-9)
            d["model"] = export.config.kind.rawValue
            print(jsonLine(d))
        } else {
            print(String(format: "%@ on %@: AUC %.4f  logloss %.4f  accuracy %.4f  precision %.4f  recall %.4f", export.config.kind.rawValue, options.data, m.auc, m.logloss, m.accuracy, m.precision, m.recall))
            print(String(format: "%d rows (%d skipped), %.0f samples/s", dataset.rows, dataset.skippedRows, Double(dataset.rows) / max(seconds, 1e-9)))
        }
    }
}

/// `herd predict`: click probabilities of an exported model, one per line.
struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an exported model's click probability for every row of a Criteo-format file or feature table, one per line.")

    @OptionGroup var options: ExportDataOptions
    @Option(help: "Output file (written atomically).") var out: String
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let (export, dataset) = try options.open()
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
