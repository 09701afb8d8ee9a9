import ArgumentParser
import Foundation
import HerdData
import HerdTraining

/// Options shared by commands that read a data file through an export's feature state.
struct ExportDataOptions: ParsableArguments {
    @Option(help: "Model export directory (OUT/model of herd train).") var model: String
    @Option(help: "Criteo-format data file (TSV/CSV, with or without labels).") var data: String
    @Option(help: "What to do with a malformed row: fail (default) or skip and count.") var onError: OnError = .fail
    @Option(help: "Directory for the binary columnar cache (default: beside the data file).") var cacheDir: String?
    @Option(help: "Rows per inference batch.") var batchSize = 8192

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
    }

    /// Loads the export and opens the data with its feature state.
    func open() throws -> (ModelExport, CriteoDataset) {
        let export = try ModelExport.load(from: URL(fileURLWithPath: model))
        let dataset = try CriteoDataset.open(path: data, state: export.featureState, cacheDirectory: cacheDir, onError: onError)
        return (export, dataset)
    }
}

/// `herd evaluate`: metrics of an exported model on a labelled file.
struct Evaluate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate an exported model on a labelled Criteo-format file: AUC, logloss, accuracy, precision, recall.")

    @OptionGroup var options: ExportDataOptions
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let (export, dataset) = try options.open()
        guard dataset.labelled else {
            throw ValidationError("\(options.data) has no label column; evaluate needs labels (use herd predict for unlabelled files)")
        }
        let t0 = Date()
        let (m, _) = Evaluation.run(DataParallel(model: export.model), dataset, batchSize: options.batchSize)
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
        abstract: "Write an exported model's click probability for every row of a Criteo-format file, one per line.")

    @OptionGroup var options: ExportDataOptions
    @Option(help: "Output file (written atomically).") var out: String
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let (export, dataset) = try options.open()
        let t0 = Date()
        let (p, _) = Evaluation.predict(DataParallel(model: export.model), dataset, batchSize: options.batchSize)
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
