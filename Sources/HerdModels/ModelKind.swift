/// The ranking models Herd trains, by the names the CLI and the export manifest use.
public enum ModelKind: String, Sendable, Codable, CaseIterable {
    /// Deep Learning Recommendation Model: dense arch + sparse arch + interaction + over arch.
    case dlrm
    /// Wide & Deep: a linear model over sparse ids plus an MLP over embeddings and dense features.
    case wnd
    /// Two-tower retrieval: user and item towers whose unit-vector outputs are compared by dot product.
    case twotower
    /// DeepFM: a factorization machine and a deep MLP over shared field embeddings.
    case deepfm
    /// DCN-v2: a cross network over embeddings and dense features, then a deep MLP.
    case dcn
}
