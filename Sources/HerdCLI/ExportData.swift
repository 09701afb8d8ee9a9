import ArgumentParser
import Foundation
import HerdData
import HerdFeatures
import HerdTraining

/// The rows an export evaluates or predicts on: a Criteo file through its feature state, or a
/// feature table through its batch spec (and its fitted pipeline, for raw rows).
struct ExportRows {
    let source: any BatchSource
    let rows: Int
    let skippedRows: Int
    let labelled: Bool

    /// Opens `path` for `export`. Criteo exports read Criteo TSV/CSV (`cacheDir`, `onError`).
    /// Table exports read a `.herdtable` (encoded as the training table, or raw columns that the
    /// export's fitted pipeline encodes) or a delimited file described by `schema`, encoded by the
    /// fitted pipeline.
    static func open(_ export: ModelExport, path: String, schema: String?, onError: OnError, cacheDir: String?) throws -> ExportRows {
        switch export.featureState {
        case .criteo(let state):
            let d = try CriteoDataset.open(path: path, state: state, cacheDirectory: cacheDir, onError: onError)
            return ExportRows(source: d, rows: d.rows, skippedRows: d.skippedRows, labelled: d.labelled)
        case .table(let pipeline, let spec):
            var table: FeatureTable
            var skipped = 0
            if path.hasSuffix(".herdtable") {
                let names = Set(try TableFile.columnNames(path: path))
                let encoded = spec.sparse.map(\.name) + spec.dense
                if encoded.allSatisfy(names.contains) {
                    // NOTE: only the columns the model reads are mapped in; a wide table's other columns are never touched.
                    var seen = Set<String>()
                    table = try TableFile.read(path: path, columns: (encoded + spec.labels.filter(names.contains)).filter { seen.insert($0).inserted })
                } else if let pipeline {
                    table = try pipeline.apply(try TableFile.read(path: path))
                } else {
                    throw ValidationError("\(path) lacks the model's columns \(encoded.filter { !names.contains($0) }.joined(separator: ", ")) and the export has no fitted pipeline to derive them (columns: \(names.sorted().joined(separator: ", ")))")
                }
            } else {
                guard let pipeline else {
                    throw ValidationError("\(path): this export was trained on a pre-encoded table and has no fitted pipeline for raw rows; give an encoded .herdtable")
                }
                guard let schema else {
                    throw ValidationError("\(path): raw rows need --schema FILE (the schema the training rows were read with, e.g. examples/recsys2021/schema.json), or give an encoded .herdtable")
                }
                let (raw, summary) = try CSVReader(schema: try CSVSchema.load(path: schema), onError: onError).read(path: path)
                skipped = summary.skippedRows
                table = try pipeline.apply(raw)
            }
            let missing = spec.missingColumns(in: table, labelled: false)
            guard missing.isEmpty else {
                throw ValidationError("\(path): no column\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", ")) for the model (columns: \(table.names.joined(separator: ", ")))")
            }
            let labelled = spec.labels.allSatisfy(table.contains)
            if !labelled, let partial = spec.labels.first(where: table.contains) {
                throw ValidationError("\(path) has label column \(partial) but not all of \(spec.labels.joined(separator: ", "))")
            }
            let batch = try table.batch(labelled ? spec : spec.unlabelled)
            return ExportRows(source: InMemoryBatchSource(batch), rows: batch.count, skippedRows: skipped, labelled: labelled && !spec.labels.isEmpty)
        }
    }
}
