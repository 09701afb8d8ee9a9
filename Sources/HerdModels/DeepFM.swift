import Foundation
import HerdData
import HerdLayers
import HerdTensor

/// DeepFM's configuration (Guo et al. 2017): shared field embeddings feed a factorization machine
/// and a deep MLP; first-order weights per id; dense features join the deep input.
public struct DeepFMConfig: Codable, Sendable, Equatable {
    public var denseFeatures: Int = 13
    public var tableSizes: [Int]
    public var embeddingDim: Int = 16
    /// Deep MLP widths after the input (`Fs·D + Fd`); the last must be 1.
    public var deepMLP: [Int] = [400, 400, 400, 1]
    public var seed: UInt64 = 0

    public init(tableSizes: [Int]) { self.tableSizes = tableSizes }

    public func validate() throws {
        guard !tableSizes.isEmpty, tableSizes.allSatisfy({ $0 > 0 }) else { throw LayerSpecError("DeepFM needs at least one sparse feature and positive table sizes") }
        guard deepMLP.last == 1 else { throw LayerSpecError("DeepFM deep MLP must end in 1 (the logit), got \(deepMLP)") }
        guard embeddingDim > 0 else { throw LayerSpecError("DeepFM needs a positive embedding dimension") }
    }
}

/// DeepFM: `logit = b + Σ_f w_f[id_f] + FM(E) + deep([E, dense])`.
///
/// ```
/// sparse ─ embeddings E [B, Fs·D] ─┬─ FM ½Σ_d[(Σ_f e)² − Σ_f e²] ──────────── [B] ┐
///                                  └─ [E, dense] [B, Fs·D+Fd] ─ deep MLP ─── [B] ┼─ + ─ logit
/// sparse ─ 1-dim tables ─ Σ_f ─────────────────────────────────────────────── [B] ┘
/// ```
public final class DeepFM: RankingModel, @unchecked Sendable {
    public let config: DeepFMConfig
    public let sparseArch: EmbeddingBagCollection
    public let firstOrder: EmbeddingBagCollection
    public let deepArch: MLP
    public let bias: Parameter
    public var kind: ModelKind { .deepfm }

    private var x: Tensor?
    private var fm: [Float] = []
    private var first: Tensor?
    private var logits: Tensor?
    private var firstGrad: Tensor?

    public init(config: DeepFMConfig) throws {
        try config.validate()
        self.config = config
        var rng = SplitMix64(seed: config.seed)
        sparseArch = try EmbeddingBagCollection(spec: "dense", prefix: "sparse_arch", tableSizes: config.tableSizes,
                                                dimension: config.embeddingDim, rng: &rng)
        firstOrder = EmbeddingBagCollection(tables: config.tableSizes.enumerated().map { f, n in
            DenseEmbeddingTable(name: "first_order.\(f)", weight: Tensor(shape: [n, 1]))
        })
        deepArch = MLP(name: "deep_arch", sizes: [sparseArch.width + config.denseFeatures] + config.deepMLP, lastActivation: .none, rng: &rng)
        bias = Parameter(name: "bias", value: Tensor(shape: [1]))
    }

    private init(sharing o: DeepFM) {
        config = o.config
        sparseArch = EmbeddingBagCollection(sharing: o.sparseArch)
        firstOrder = EmbeddingBagCollection(sharing: o.firstOrder)
        deepArch = MLP(sharing: o.deepArch)
        bias = Parameter(name: o.bias.name, value: o.bias.value)
    }

    public func replica() -> any RankingModel { DeepFM(sharing: self) }
    public func setMode(_ mode: ForwardMode) { deepArch.setMode(mode) }

    public var groups: [ParameterGroup] {
        [ParameterGroup(name: "dense", parameters: deepArch.parameters + [bias]),
         ParameterGroup(name: "sparse", collections: [sparseArch, firstOrder])]
    }

    public var namedWeights: [(String, Tensor)] {
        deepArch.parameters.map { ($0.name, $0.value) } + [(bias.name, bias.value)]
            + (sparseArch.tables + firstOrder.tables).map { ("\($0.name).weight", $0.weight) }
    }

    public var forwardMACsPerSample: Int {
        deepArch.macsPerSample + config.tableSizes.count * config.embeddingDim * 2
    }

    public func forward(_ batch: Batch) -> Tensor {
        let b = batch.count, fs = config.tableSizes.count, d = config.embeddingDim, fd = config.denseFeatures
        precondition(batch.dense.columns == fd, "batch has \(batch.dense.columns) dense features, DeepFM expects \(fd)")
        let width = fs * d + fd
        let x = Tensor.ensure(self.x, shape: [b, width])
        self.x = x
        sparseArch.forward(batch.sparse, out: x.data, outStride: width, outOffset: 0)
        for s in 0..<b { (x.data + s * width + fs * d).update(from: batch.dense.data + s * fd, count: fd) }
        if fm.count < b { fm = [Float](repeating: 0, count: b) }
        fm.withUnsafeMutableBufferPointer { FactorizationMachine.forward(x.data, rows: b, fields: fs, dimension: d, stride: width, offset: 0, into: $0.baseAddress!) }
        let f1 = Tensor.ensure(first, shape: [b, fs])
        first = f1
        firstOrder.forward(batch.sparse, out: f1.data, outStride: fs, outOffset: 0)
        let deep = deepArch.forward(x)
        let out = Tensor.ensure(logits, shape: [b, 1])
        logits = out
        for s in 0..<b {
            var v = bias.value[0] + deep[s] + fm[s]
            for f in 0..<fs { v += f1.data[s * fs + f] }
            out[s] = v
        }
        return out
    }

    public func backward(_ dLogits: Tensor) {
        guard let x else { preconditionFailure("DeepFM.backward before forward") }
        let b = dLogits.rows, fs = config.tableSizes.count, d = config.embeddingDim
        let width = fs * d + config.denseFeatures
        var bg: Float = 0
        for s in 0..<b { bg += dLogits[s] }
        bias.grad[0] += bg
        let g1 = Tensor.ensure(firstGrad, shape: [b, fs])
        firstGrad = g1
        for s in 0..<b { (g1.data + s * fs).update(repeating: dLogits[s], count: fs) }
        firstOrder.backward(grad: g1.data, gradStride: fs, gradOffset: 0)
        let dx = deepArch.backward(dLogits, needInputGradient: true)!
        FactorizationMachine.backward(dLogits.data, input: x.data, rows: b, fields: fs, dimension: d, stride: width, offset: 0, into: dx.data)
        sparseArch.backward(grad: dx.data, gradStride: width, gradOffset: 0)
    }
}
