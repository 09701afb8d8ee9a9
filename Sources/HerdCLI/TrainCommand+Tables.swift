import ArgumentParser
import Foundation
import HerdData
import HerdFeatures
import HerdModels
import HerdTraining

extension Train {
    /// Feature-table mode: resolve the spec against the training table, batch the tables, pick
    /// the workspace version (or `--out`) to export to.
    func prepareTables(_ s: Settings, log: Log, seed seedValue: UInt64) throws -> TrainingJob {
        guard let specName = spec else {
            throw ValidationError("feature tables need --spec FILE or a built-in spec (\(TableModelSpec.builtInNames.joined(separator: ", "))) naming the columns the model reads")
        }
        let ws = workspace.map { Workspace(path: $0) }
        if ws != nil && out != nil { throw ValidationError("give --workspace W (exports to W/models/NAME/<version>) or --out DIR, not both") }
        if ws == nil && name != nil { throw ValidationError("--name names a model in a workspace: give --workspace W too") }
        let trainPath: String
        if let train { trainPath = train } else if let ws {
            try ws.require(ws.table("train"), writtenBy: "herd preprocess … --workspace \(ws.root.path)")
            trainPath = ws.table("train").path
        } else {
            throw ValidationError("give --workspace W or --train X.herdtable")
        }
        guard trainPath.hasSuffix(".herdtable") else {
            throw ValidationError("--train \(trainPath): feature-table training reads a .herdtable (herd preprocess writes them); Criteo files train without --spec/--workspace")
        }
        var validPath = valid
        if validPath == nil, let ws, FileManager.default.fileExists(atPath: ws.table("test").path) { validPath = ws.table("test").path }
        if let validPath, !validPath.hasSuffix(".herdtable") { throw ValidationError("--valid \(validPath): expected a .herdtable like the training table") }

        let tableSpec: TableModelSpec
        if let builtIn = try TableModelSpec.builtIn(specName, kind: model) {
            tableSpec = builtIn
        } else {
            guard FileManager.default.fileExists(atPath: specName) else {
                throw ValidationError("--spec \(specName): no such file, and not a built-in spec (\(TableModelSpec.builtInNames.joined(separator: ", ")))")
            }
            tableSpec = try TableModelSpec.load(path: specName)
        }
        try tableSpec.check(kind: model)

        // Only the columns the model reads are read.
        var columns = tableSpec.columns(for: model)
        let sampling = try negativeSampling(tableSpec, s)
        if sampling != nil, let key = tableSpec.item?.id, !columns.contains(key) { columns.append(key) }
        let trainName = (trainPath as NSString).lastPathComponent
        try tableSpec.checkColumns(kind: model, available: try TableFile.columnNames(path: trainPath), tableName: trainPath)
        let trainTable = try TableFile.read(path: trainPath, columns: columns)
        guard trainTable.rowCount > 0 else { throw ValidationError("\(trainPath) has no rows") }
        var validTable: FeatureTable?
        if let validPath {
            try tableSpec.checkColumns(kind: model, available: try TableFile.columnNames(path: validPath), tableName: validPath)
            validTable = try TableFile.read(path: validPath, columns: columns)
        }
        var sizes: [String: Int] = [:]
        let sizesURL = ws?.sizes ?? URL(fileURLWithPath: trainPath).deletingLastPathComponent().appendingPathComponent("sizes.json")
        if let data = FileManager.default.contents(atPath: sizesURL.path) {
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ValidationError("\(sizesURL.path): expected a JSON object {\"column\": cardinality, …}")
            }
            for (k, v) in object { if let n = v as? Int { sizes[k] = n } }
        }
        let resolved = try tableSpec.resolve(kind: model, tables: [trainTable] + (validTable.map { [$0] } ?? []), tableName: trainName, sizes: sizes, seed: seedValue)
        let modelConfig = try tableModelConfig(resolved, s, seed: seedValue, spec: tableSpec)

        let pipelineURL = URL(fileURLWithPath: trainPath).deletingLastPathComponent().appendingPathComponent("pipeline.fitted.json")
        let pipeline = FileManager.default.fileExists(atPath: pipelineURL.path) ? try FittedPipeline.load(path: pipelineURL.path) : nil

        let trainData: any BatchSource
        if let sampling, case .twotower(let tt) = modelConfig {
            let itemURL = ws?.table("item") ?? URL(fileURLWithPath: trainPath).deletingLastPathComponent().appendingPathComponent("item.herdtable")
            guard FileManager.default.fileExists(atPath: itemURL.path) else {
                throw ValidationError("\(itemURL.path): no item table to draw two-tower negatives from (herd preprocess writes it beside train.herdtable)")
            }
            let items = try TableFile.read(path: itemURL.path)
            let source = try TwoTowerTrainingSource(train: trainTable, items: items, itemTableName: itemURL.path, spec: resolved.batchSpec, model: tt,
                                                    itemKey: tableSpec.item!.id, sampling: sampling, seed: seedValue)
            log.line("two-tower rows: \(source.kept.count) from the table (label-0 rows \(sampling.tableNegatives == .keep ? "kept" : "dropped")), "
                     + "\(sampling.perPositive) \(sampling.distribution.rawValue) negatives per positive from \(items.rowCount) items, drawn anew each epoch"
                     + (tt.logQColumn != nil ? "; in-batch logits corrected by log q(item)" : ""))
            trainData = source
        } else {
            trainData = InMemoryBatchSource(try trainTable.batch(resolved.batchSpec))
        }
        let validData = try validTable.map { InMemoryBatchSource(try $0.batch(resolved.batchSpec)) }
        log.line("train \(trainData.rows) rows from \(trainPath)" + (validData.map { ", valid \($0.rows) rows from \(validPath!)" } ?? "")
                 + "; \(resolved.batchSpec.sparse.count) sparse columns (\(resolved.batchSpec.sparse.map(\.cardinality).reduce(0, +)) ids in all), \(resolved.batchSpec.dense.count) dense"
                 + (pipeline == nil ? "; no fitted pipeline beside the table (the export takes encoded tables only)" : ""))

        let checkpoints: URL, exportURL: URL
        var summary: [String: Any] = ["spec": tableSpec.source]
        if let ws {
            let modelName = name ?? model.rawValue
            guard !modelName.isEmpty, !modelName.contains("/"), modelName != ".", modelName != "..", Int(modelName) == nil else {
                throw ValidationError("--name \(modelName): a model name is one path component, not a number")
            }
            try ws.create()
            let version = ws.nextModelVersion(of: modelName)
            checkpoints = ws.model(modelName).appendingPathComponent("checkpoints")
            exportURL = ws.model(modelName, version: version)
            summary["name"] = modelName
            summary["version"] = version
        } else {
            guard let out else { throw ValidationError("--out DIR is required without --workspace (the export goes to DIR/model)") }
            let outURL = try outputDirectory(out)
            checkpoints = outURL.appendingPathComponent("checkpoints")
            exportURL = outURL.appendingPathComponent("model")
        }
        return TrainingJob(
            modelConfig: modelConfig, train: trainData, valid: validData, rows: trainData.rows, skippedRows: 0,
            checkpoints: checkpoints, exportURL: exportURL, transform: .table(pipeline, resolved.batchSpec),
            keyColumns: resolved.keyColumns, checkpointHint: checkpoints.path, summary: summary)
    }

    /// Two-tower negatives: the spec's, with `--negatives N` overriding the count; also on (0 per
    /// positive, label-0 rows dropped) for in-batch softmax with the logQ correction, whose batches
    /// need the log q column. Nil for other models and plain two-tower training on the table's labels.
    func negativeSampling(_ spec: TableModelSpec, _ s: Settings) throws -> NegativeSampling? {
        let count = try negatives ?? s.int("negatives")
        guard model == .twotower else {
            if count != nil { throw ValidationError("--negatives applies to --model twotower only") }
            return nil
        }
        if let count, count < 0 { throw ValidationError("--negatives must be >= 0, got \(count)") }
        var n = spec.negatives
        if let count { n = n ?? NegativeSampling(perPositive: count); n!.perPositive = count }
        if n == nil && spec.logQCorrection { n = NegativeSampling(perPositive: 0) }
        return n
    }

    /// The resolved config with the command-line model flags applied (MLP widths, embedding size,
    /// precision, …) where they apply.
    func tableModelConfig(_ resolved: ResolvedTableModel, _ s: Settings, seed: UInt64, spec: TableModelSpec) throws -> ModelConfig {
        let prec = try precision ?? s.enumValue("precision") ?? .fp32
        let sizes = resolved.batchSpec.sparse.map(\.cardinality), dense = resolved.batchSpec.dense.count
        switch resolved.config {
        case .wnd(var c):
            c.deepMLP = try widths(deepMlp ?? s.string("deep-mlp")) ?? c.deepMLP
            c.precision = prec
            return .wnd(c)
        case .twotower(var c):
            c.precision = prec
            return .twotower(c)
        case .dlrm, .deepfm, .dcn:
            switch try makeModelConfig(s, tableSizes: sizes, seed: seed, defaultDim: spec.embedDim) {
            case .dlrm(var c): c.denseFeatures = dense; return .dlrm(c)
            case .deepfm(var c): c.denseFeatures = dense; return .deepfm(c)
            case .dcn(var c): c.denseFeatures = dense; return .dcn(c)
            case let other: return other
            }
        }
    }
}
