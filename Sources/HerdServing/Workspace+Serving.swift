import Foundation
import HerdTraining

// The serving part of the workspace layout (see the diagram in HerdTraining/Workspace.swift):
//
// W/
// └── serving/               (herd nearline)
//     ├── item.index             ANN index over embeddings/item.safetensors (ANNIndexFile: checksummed)
//     ├── features.store         the embedded feature store: user and item rows (when not on Redis)
//     └── nearline.json          the last nearline run: counts, index spec, store spec
extension Workspace {
    /// `serving/`: what `herd nearline` writes for online serving.
    public var serving: URL { root.appendingPathComponent("serving", isDirectory: true) }
    /// `serving/item.index`: the ANN index over the item embeddings.
    public var itemIndex: URL { serving.appendingPathComponent("item.index") }
    /// `serving/features.store`: the embedded feature store's file.
    public var featureStoreFile: URL { serving.appendingPathComponent("features.store") }
    /// `serving/nearline.json`: the summary of the last `herd nearline` run.
    public var nearlineSummary: URL { serving.appendingPathComponent("nearline.json") }
}
