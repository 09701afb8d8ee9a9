import ArgumentParser
import Foundation
import HerdData
import HerdFeatures
import HerdTensor

/// `herd preprocess [table] --pipeline FILE --input FILE [--schema FILE] --out DIR [--csv]`
/// `herd preprocess [table] --apply FITTED.json --input FILE [--schema FILE] --out DIR [--csv]`
///
/// Reads a delimited file into a `FeatureTable`, fits the pipeline on it (or applies a fitted
/// one) and writes `DIR/table.herdtable` (binary columnar), `DIR/table.csv` with `--csv`, and —
/// when fitting — `DIR/pipeline.fitted.json` (with its sidecar `pipeline.fitted.json.strings`,
/// which makes loading it fast), to be passed to `--apply` for the test split and at serving time.
struct PreprocessTable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table",
        abstract: "Fit a feature pipeline (JSON) on a CSV/TSV file, or apply a fitted one, and write the transformed table.")

    @Option(help: "Pipeline file: {\"steps\": [{\"op\": \"categorify\", …}, …]}.") var pipeline: String?
    @Option(name: .customLong("apply"), help: "A fitted pipeline (pipeline.fitted.json of an earlier run) to apply instead of fitting.")
    var fitted: String?
    @Option(help: "Input file: CSV/TSV (any single-byte separator), or a .herdtable written by an earlier run.") var input: String
    @Option(help: "Schema file: column names, types, list separators (JSON). Without it the header names the columns and types are inferred.")
    var schema: String?
    @Option(help: "Field separator when there is no schema or it sets none: a character, 'tab', or '\\x01'.") var separator: String = ","
    @Flag(help: "The file has no header line (columns are named _c0, _c1, … without a schema).") var noHeader = false
    @Option(help: "Quote character for quoted fields (e.g. '\"'); by default every byte is data.") var quote: String?
    @Option(help: "What to do with a malformed row: fail (default) or skip and count.") var onError: OnError = .fail
    @Option(help: "Longest list a list field may hold (longer rows are malformed).") var maxListLength: Int?
    @Option(help: "Output directory (created if needed).") var out: String
    @Flag(help: "Also write DIR/table.csv.") var csv = false
    @Option(help: "Print the first N rows of the transformed table.") var show = 0
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func validate() throws {
        guard (pipeline == nil) != (fitted == nil) else { throw ValidationError("give exactly one of --pipeline and --apply") }
        _ = try separatorByte()
        if let quote, quote.utf8.count != 1 { throw ValidationError("--quote must be one byte, got '\(quote)'") }
    }

    func separatorByte() throws -> UInt8 {
        switch separator {
        case "tab", "\\t", "\t": return 9
        case "\\x01", "\\u0001", "\u{01}": return 1
        default:
            guard separator.utf8.count == 1 else { throw ValidationError("--separator must be one byte, 'tab' or '\\x01', got '\(separator)'") }
            return separator.utf8.first!
        }
    }

    func run() throws {
        let t0 = Date()
        let loadedPipeline = try pipeline.map { try Pipeline.load(path: $0) }
        let loadedFitted = try fitted.map { try FittedPipeline.load(path: $0) }
        let table: FeatureTable
        let summary: CSVReadSummary
        var absent: Set<String> = []  // dropped unread: not parsed (projection pushdown)
        if input.hasSuffix(".herdtable") {
            table = try TableFile.read(path: input)
            summary = CSVReadSummary(rows: table.rowCount, skippedRows: 0, lines: table.rowCount, skippedSamples: [])
        } else {
            let schema = try self.schema.map { try CSVSchema.load(path: $0) }
            var reader = CSVReader(separator: try separatorByte(), header: !noHeader, schema: schema, onError: onError, maxListLength: maxListLength,
                                   quote: quote?.utf8.first)
            if let names = schema?.columns.map(\.name) {
                absent = loadedPipeline?.unreadColumns(names) ?? loadedFitted?.unreadColumns(names) ?? []
                reader.skipColumns = absent
            }
            (table, summary) = try reader.read(path: input)
        }
        let t1 = Date()
        let output: FeatureTable
        let fittedPipeline: FittedPipeline
        if let loadedFitted {
            fittedPipeline = loadedFitted
            output = try fittedPipeline.apply(consume table, absent: absent)  // NOTE: raw columns freed as replaced
        } else {
            (output, fittedPipeline) = try loadedPipeline!.fit(consume table, absent: absent)
        }
        let t2 = Date()
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let tablePath = (out as NSString).appendingPathComponent("table.herdtable")
        let fittedPath = fitted == nil ? (out as NSString).appendingPathComponent("pipeline.fitted.json") : nil
        // NOTE: the table (one writing thread, see TableFile.write) and the fitted pipeline (JSON
        // and sidecar) are written at the same time, one per core.
        var errors: [Error?] = [nil, nil]
        errors.withUnsafeMutableBufferPointer { e in
            let results = UncheckedSendable(e)
            Parallel.forEach(fittedPath == nil ? 1 : 2) { i in
                do {
                    if i == 0 {
                        try TableFile.write(output, to: tablePath, durable: false)  // NOTE: a rerun recreates it
                    } else {
                        try fittedPipeline.save(path: fittedPath!)
                    }
                } catch {
                    results.value[i] = error
                }
            }
        }
        if let e = errors.compactMap({ $0 }).first { throw e }
        var written = [tablePath]
        if csv {
            let csvPath = (out as NSString).appendingPathComponent("table.csv")
            try CSVWriter.write(output, to: csvPath, quote: quote?.utf8.first)
            written.append(csvPath)
        }
        if let fittedPath { written += [fittedPath, FittedPipeline.sidecarPath(fittedPath)] }
        let t3 = Date()
        let rowsPerSecond = Double(summary.rows) / max(t3.timeIntervalSince(t0), 1e-9)
        let sizes = fittedPipeline.stringIndices.map { ($0.columns.joined(separator: "+"), $0.size) }
        if json {
            var d: [String: Any] = [
                "rows": summary.rows, "skipped_rows": summary.skippedRows, "columns": output.columnCount,
                "read_s": t1.timeIntervalSince(t0), "transform_s": t2.timeIntervalSince(t1), "write_s": t3.timeIntervalSince(t2),
                "rows_per_s": rowsPerSecond, "outputs": written,
            ]
            d["index_sizes"] = Dictionary(sizes, uniquingKeysWith: { a, _ in a })
            let data = try JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for s in summary.skippedSamples { print("skipped \(s)") }
            if show > 0 { print(output.show(show)) }
            print(String(format: "%d rows (%d skipped), %d columns; read %.2f s, %@ %.2f s, write %.2f s; %.0f rows/s",
                         summary.rows, summary.skippedRows, output.columnCount, t1.timeIntervalSince(t0), fitted == nil ? "fit+transform" : "apply",
                         t2.timeIntervalSince(t1), t3.timeIntervalSince(t2), rowsPerSecond))
            for (name, size) in sizes { print("index \(name): \(size) ids (0 = unknown)") }
            print("wrote " + written.joined(separator: ", "))
        }
    }
}
