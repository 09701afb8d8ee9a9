import ArgumentParser
import Foundation
import HerdData
import HerdFeatures
import HerdModels
import HerdTensor
import HerdTraining

extension Predict {
    /// Embeds every row of W/features/user.herdtable and item.herdtable with the export's towers
    /// and writes W/embeddings/{user,item}.safetensors (format in `Workspace`).
    func writeEmbeddings(_ export: ModelExport, modelURL: URL, workspace ws: Workspace) throws {
        guard let tt = export.model as? TwoTower, let spec = export.featureState.batchSpec else {
            throw ValidationError("\(modelURL.path) is not a two-tower feature-table export")
        }
        let t0 = Date()
        try FileManager.default.createDirectory(at: ws.embeddings, withIntermediateDirectories: true)
        var summary: [String: Any] = ["model": export.config.kind.rawValue, "export": modelURL.path, "dim": tt.retrievalDimension]
        if let name = options.name { summary["name"] = name }
        let version = Int(modelURL.lastPathComponent)
        for side in TowerSide.allCases {
            let tableURL = ws.table(side.rawValue)
            try ws.require(tableURL, writtenBy: "herd preprocess … --workspace \(ws.root.path)")
            guard let key = export.keyColumns[side.rawValue] else {
                throw ValidationError("\(modelURL.path): the export records no \(side.rawValue) key column (train it again with a two-tower spec naming \(side.rawValue).id)")
            }
            let (sparse, dense) = tt.inputs(of: side)
            let towerSpec = spec.subset(sparse: sparse, dense: dense)
            let known = try embedRows(tt, side: side, tableURL: tableURL, key: key, towerSpec: towerSpec)
            // Entities whose id is not in the training index (`herd preprocess recsys2021` writes
            // them to W/features/<side>_unseen.herdtable keyed by `<key>_key`): embedded from their
            // other features with the id out of vocabulary, keyed by their row key (never an id of
            // the index, which ends below it).
            let unseenURL = ws.table("\(side.rawValue)_unseen"), rowKey = key + "_key"
            var unseen: (ids: [Int64], embeddings: Tensor)?
            if FileManager.default.fileExists(atPath: unseenURL.path), try TableFile.columnNames(path: unseenURL.path).contains(rowKey) {
                let u = try embedRows(tt, side: side, tableURL: unseenURL, key: rowKey, towerSpec: towerSpec)
                if let clash = Set(known.ids).intersection(u.ids).first {
                    throw ValidationError("\(unseenURL.path): row key \(clash) is also an id of \(tableURL.path)")
                }
                unseen = u
            }
            let e = tt.retrievalDimension, m = unseen?.ids.count ?? 0, n = known.ids.count + m
            let embeddings = Tensor(shape: [n, e])
            embeddings.data.update(from: known.embeddings.data, count: known.ids.count * e)
            if let unseen { (embeddings.data + known.ids.count * e).update(from: unseen.embeddings.data, count: m * e) }
            let ids = known.ids + (unseen?.ids ?? [])
            var metadata = ["key_column": key, "model": options.name ?? modelURL.lastPathComponent, "model_type": "twotower", "side": side.rawValue,
                            "herd_version": Herd.configuration.version, "unseen": String(m)]
            if unseen != nil { metadata["row_key_column"] = rowKey }
            if let version { metadata["version"] = String(version) }
            let file = ws.embeddingTable(side.rawValue)
            try SafeTensors.write([SafeTensorsItem("ids", int64: ids), SafeTensorsItem("embeddings", embeddings)], metadata: metadata, to: file)
            summary["\(side.rawValue)s"] = n
            summary["\(side.rawValue)s_unseen"] = m
            summary["\(side.rawValue)_embeddings"] = file.path
            if !json {
                print("wrote \(n) \(side.rawValue) embeddings [\(n), \(e)] keyed by \(key) to \(file.path)"
                      + (m > 0 ? " (\(m) unseen in training, keyed by \(rowKey): their id is out of vocabulary, the tower embeds their other features)" : ""))
            }
        }
        summary["seconds"] = Date().timeIntervalSince(t0)
        if json { print(jsonLine(summary)) }
    }

    /// Embeds every row of `tableURL` with one tower of `tt`; ids from the int64 column `key`.
    private func embedRows(_ tt: TwoTower, side: TowerSide, tableURL: URL, key: String, towerSpec: BatchSpec) throws -> (ids: [Int64], embeddings: Tensor) {
        let available = try TableFile.columnNames(path: tableURL.path)
        let missing = ([key] + towerSpec.columns).filter { !available.contains($0) }
        guard missing.isEmpty else {
            throw ValidationError("\(tableURL.path): no column\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", ")) for the \(side.rawValue) tower (its columns: \(available.joined(separator: ", ")))")
        }
        let table = try TableFile.read(path: tableURL.path, columns: Array(Set([key] + towerSpec.columns)))
        let keyColumn = try table.column(key)
        guard let ids = keyColumn.int64Values, keyColumn.type == .int64 else {
            throw ValidationError("\(tableURL.path): key column \(key) has type \(keyColumn.type); the embeddings file keys rows by int64 ids (encode it, e.g. categorify)")
        }
        if let r = (0..<table.rowCount).first(where: { keyColumn.isNull($0) }) {
            throw ValidationError("\(tableURL.path): key column \(key) is null in row \(r)")
        }
        let batch = try table.batch(towerSpec)
        let e = tt.retrievalDimension, n = batch.count
        let embeddings = Tensor(shape: [n, e])
        let step = options.batchSize
        let chunks = (n + step - 1) / step
        let source = InMemoryBatchSource(batch)
        // NOTE: each chunk embeds through its own tower view (shared weights, own buffers).
        let out = UncheckedSendableTensor(embeddings)
        Parallel.forEach(chunks) { c in
            let range = (c * step)..<min(n, (c + 1) * step)
            let z = tt.embed(side, source.batch(range: range))
            (out.tensor.data + range.lowerBound * e).update(from: z.data, count: range.count * e)
        }
        return (ids, embeddings)
    }
}

/// A tensor written by disjoint row ranges from several workers.

private struct UncheckedSendableTensor: @unchecked Sendable {
    let tensor: Tensor
    init(_ tensor: Tensor) { self.tensor = tensor }
}
