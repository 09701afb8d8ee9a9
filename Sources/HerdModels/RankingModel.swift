import HerdData
import HerdLayers
import HerdTensor

/// Parameters that share one optimizer: dense parameters plus embedding tables whose row
/// gradients come from `collections` (e.g. DLRM's "dense" and "sparse" groups, W&D's "wide").
public struct ParameterGroup: @unchecked Sendable {
    /// `dense` (MLPs), `sparse` (embedding tables) or `wide` (W&D's linear part).
    public let name: String
    public let parameters: [Parameter]
    public let collections: [EmbeddingBagCollection]

    public init(name: String, parameters: [Parameter] = [], collections: [EmbeddingBagCollection] = []) {
        self.name = name
        self.parameters = parameters
        self.collections = collections
    }
}

/// A click-through-rate model: a batch in, one logit per row out, trained by backpropagation.
///
/// `forward` keeps the activations that `backward` needs; one instance is used by one thread at a
/// time. `replica()` gives another instance over the *same* weights with its own gradients and
/// buffers, which is how data-parallel training and inference split a batch across cores.
public protocol RankingModel: AnyObject, Sendable {
    var kind: ModelKind { get }
    /// GEMM precision of the dense layers (see `Precision`).
    var precision: Precision { get }
    /// `batch` → logits `[B, 1]` (a buffer owned by the model, valid until the next forward).
    func forward(_ batch: Batch) -> Tensor
    /// Backward from `dLogits [B, 1]`: accumulates dense gradients, sets sparse row gradients.
    func backward(_ dLogits: Tensor)
    /// Parameter groups for optimizers, in a fixed order.
    var groups: [ParameterGroup] { get }
    /// Every weight by stable name, for export and checkpoints (embedding tables as `[N, D]`).
    var namedWeights: [(String, Tensor)] { get }
    /// Forward multiply–accumulates per sample in dense layers (GEMMs and interactions).
    var forwardMACsPerSample: Int { get }
    /// Another instance over the same weights (see above).
    func replica() -> any RankingModel
    /// Training (batch statistics, dropout masks seeded by step and shard) or inference for the
    /// following forward passes.
    func setMode(_ mode: ForwardMode)
}

extension RankingModel {
    /// FP32 unless a model says otherwise.
    public var precision: Precision { .fp32 }

    /// Sets every dense gradient to zero (sparse gradients are replaced by each backward).
    public func zeroGrad() {
        for g in groups { for p in g.parameters { p.zeroGrad() } }
    }

    /// Whether every dense parameter's gradient is finite (no NaN or ±infinity): the trainer's
    /// divergence check beside the loss. Embedding-row gradients are not scanned.
    public var denseGradientsAreFinite: Bool {
        groups.allSatisfy { $0.parameters.allSatisfy { Kernels.allFinite($0.grad.data, count: $0.grad.count) } }
    }

    /// Training FLOPs per sample: forward + backward ≈ 3 × forward, 2 FLOPs per MAC.
    public var trainingFLOPsPerSample: Int { 6 * forwardMACsPerSample }

    /// Copies weights by name from `tensors` (an export or checkpoint); throws on a missing or
    /// mis-shaped tensor.
    public func loadWeights(_ tensors: [String: Tensor]) throws {
        for (name, w) in namedWeights {
            guard let t = tensors[name] else { throw LayerSpecError("weights file has no tensor '\(name)'") }
            guard t.shape == w.shape else { throw LayerSpecError("tensor '\(name)' has shape \(t.shape), model expects \(w.shape)") }
            w.copy(from: t)
        }
    }
}
