import Foundation
import HerdData
import HerdFeatures
import HerdLayers
import HerdModels
import HerdTensor

/// A model over a feature table described by column names, in BigDL Friesian's vocabulary
/// (`ColumnFeatureInfo` for Wide & Deep, `ColumnInfoTower` for two-tower): which encoded columns
/// go to the wide part, which become one-hot indicators, embeddings or continuous inputs. Read
/// from JSON:
///
/// ```json
/// {"model": "wnd", "labels": ["reply", "like"],
///  "wide_base_cols": ["a_is_verified"], "wide_cross_cols": ["present_media_language"],
///  "indicator_cols": ["language"], "embed_cols": ["user_id", "hashtags"], "embed_out_dims": [8, 8],
///  "continuous_cols": ["len_hashtags"], "hidden_units": [1024, 512, 256], "batch_norm": true, "dropout": 0.1}
///
/// {"model": "twotower", "labels": ["like"],
///  "user": {"id": "enaging_user_id", "indicator_cols": […], "embed_cols": […], "numerical_cols": […]},
///  "item": {"id": "tweet_id", …}, "hidden_units": [1024, 512, 128], "embed_dim": 16, "loss": "bce",
///  "temperature": 0.2, "negatives": {"per_positive": 4, "sampling": "uniform", "table_negatives": "drop"},
///  "logq_correction": false, "item_bias": false}
/// ```
///
/// `resolve` turns the names into a `BatchSpec` (cardinalities from the tables, or `sizes.json`)
/// and a model config whose feature indices point into it. DLRM, DeepFM and DCN take a Wide & Deep
/// spec's `embed_cols` (as embeddings of one dimension) and `continuous_cols`.
public struct TableModelSpec: Sendable, Equatable {
    /// One tower of a two-tower spec (Friesian's `ColumnInfoTower`).
    public struct Tower: Sendable, Equatable {
        /// The key column of the user/item table (one row per key); not necessarily an input.
        public var id: String
        public var indicatorCols: [String] = []
        public var embedCols: [String] = []
        public var numericalCols: [String] = []
    }

    /// The model the spec was written for: `wnd` or `twotower` (DLRM, DeepFM, DCN read `wnd` specs).
    public var model: ModelKind
    /// 0/1 label columns; a row is positive when any is.
    public var labels: [String]
    public var wideBaseCols: [String] = []
    public var wideCrossCols: [String] = []
    public var indicatorCols: [String] = []
    public var embedCols: [String] = []
    /// Embedding size per `embedCols` entry.
    public var embedOutDims: [Int] = []
    public var continuousCols: [String] = []
    public var user: Tower?
    public var item: Tower?
    /// Hidden layer widths: W&D's deep MLP (the output layer is added), two-tower's towers (the
    /// last is the embedding size).
    public var hiddenUnits: [Int]
    public var batchNorm = false
    public var dropout: Float = 0
    /// How multi-hot bags (list columns such as hashtags) are pooled: `mean` or `sum`.
    public var pooling: Pooling = .mean
    /// Two-tower (and DLRM/DeepFM/DCN) embedding size.
    public var embedDim = 16
    public var loss: TwoTowerLoss = .bce
    public var temperature: Float?
    /// Two-tower: negatives drawn from the item table at training time (`"negatives":
    /// {"per_positive": 4, "sampling": "uniform"|"popularity", "table_negatives": "drop"|"keep"}`);
    /// nil: train on the table's own labels.
    public var negatives: NegativeSampling?
    /// Two-tower in-batch softmax: subtract log q(item) from each in-batch logit (`"logq_correction":
    /// true`), q being the item's share of the training positives.
    public var logQCorrection = false
    /// Two-tower: a learned per-item bias keyed by `item.id` added to every logit (`"item_bias":
    /// true`; `item.id` must be one of the item tower's `embed_cols` or `indicator_cols`). With the
    /// logQ-corrected softmax it learns the item's popularity, which the unit-vector dot product
    /// cannot express; `herd predict` writes it as an extra embedding column (`TwoTower`).
    public var itemBias = false

    /// Where the spec came from, for messages.
    public var source = "spec"
}

// MARK: - Decoding

extension TableModelSpec {
    /// Reads a spec file.
    public static func load(path: String) throws -> TableModelSpec {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TrainingError("\(path): cannot read the model spec (\(FileManager.default.fileExists(atPath: path) ? "unreadable" : "no such file"))")
        }
        return try decode(data, source: path)
    }

    /// Decodes spec JSON; errors name `source` and the key.
    public static func decode(_ data: Data, source: String) throws -> TableModelSpec {
        let json: JSONValue
        do { json = try JSONValue(json: data) } catch { throw TrainingError("\(source): not valid JSON (\(error))") }
        guard case .object(let o) = json else { throw TrainingError("\(source): a model spec is a JSON object, not \(json.brief)") }
        var r = SpecReader(source: source, path: "", object: o)
        let modelName = try r.string("model")
        guard let model = ModelKind(rawValue: modelName), model == .wnd || model == .twotower else {
            throw r.error("model", "must be \"wnd\" or \"twotower\" (DLRM, DeepFM and DCN train from a wnd spec), not \"\(modelName)\"")
        }
        let labels = try r.names("labels")
        var spec: TableModelSpec
        if model == .wnd {
            spec = TableModelSpec(model: model, labels: labels, hiddenUnits: try r.optionalInts("hidden_units", min: 1) ?? [1024, 512, 256])
            spec.wideBaseCols = try r.optionalNames("wide_base_cols") ?? []
            spec.wideCrossCols = try r.optionalNames("wide_cross_cols") ?? []
            spec.indicatorCols = try r.optionalNames("indicator_cols") ?? []
            spec.embedCols = try r.optionalNames("embed_cols") ?? []
            spec.embedOutDims = try r.optionalInts("embed_out_dims", min: 1) ?? Array(repeating: 8, count: spec.embedCols.count)
            guard spec.embedOutDims.count == spec.embedCols.count else {
                throw r.error("embed_out_dims", "has \(spec.embedOutDims.count) sizes for \(spec.embedCols.count) embed_cols")
            }
            spec.continuousCols = try r.optionalNames("continuous_cols") ?? []
            spec.batchNorm = try r.optionalBool("batch_norm") ?? false
            spec.dropout = Float(try r.optionalNumber("dropout") ?? 0)
            guard spec.dropout >= 0 && spec.dropout < 1 else { throw r.error("dropout", "must be in [0, 1)") }
            if let p = try r.optionalString("pooling") {
                guard let v = Pooling(rawValue: p) else { throw r.error("pooling", "must be \"mean\" or \"sum\", not \"\(p)\"") }
                spec.pooling = v
            }
            spec.embedDim = try r.optionalInt("embed_dim", min: 1) ?? 16
            guard !(spec.embedCols + spec.indicatorCols + spec.wideBaseCols + spec.wideCrossCols).isEmpty else {
                throw TrainingError("\(source): a wnd spec needs at least one of wide_base_cols, wide_cross_cols, indicator_cols, embed_cols")
            }
        } else {
            spec = TableModelSpec(model: model, labels: labels, hiddenUnits: try r.optionalInts("hidden_units", min: 1) ?? [1024, 512, 128])
            spec.user = try r.tower("user")
            spec.item = try r.tower("item")
            spec.embedDim = try r.optionalInt("embed_dim", min: 1) ?? 16
            if let l = try r.optionalString("loss") {
                guard let v = TwoTowerLoss(rawValue: l) else { throw r.error("loss", "must be \"bce\" or \"in_batch_softmax\", not \"\(l)\"") }
                spec.loss = v
            }
            if let t = try r.optionalNumber("temperature") {
                guard t > 0 else { throw r.error("temperature", "must be positive") }
                spec.temperature = Float(t)
            }
            spec.negatives = try r.negatives("negatives")
            spec.logQCorrection = try r.optionalBool("logq_correction") ?? false
            if spec.logQCorrection && spec.loss != .inBatchSoftmax {
                throw r.error("logq_correction", "applies to \"loss\": \"in_batch_softmax\" only")
            }
            spec.itemBias = try r.optionalBool("item_bias") ?? false
            if spec.itemBias, let item = spec.item, !(item.embedCols + item.indicatorCols).contains(item.id) {
                throw r.error("item_bias", "keys the bias by item.id \"\(item.id)\", which must be one of the item tower's embed_cols or indicator_cols")
            }
        }
        spec.source = source
        try r.rejectUnknown()
        return spec
    }
}

/// Reads one JSON object of a spec with errors naming `source: path.key`, and refuses unknown keys.
private struct SpecReader {
    let source: String
    let path: String
    let object: [String: JSONValue]
    private var used: Set<String> = []

    init(source: String, path: String, object: [String: JSONValue]) {
        self.source = source
        self.path = path
        self.object = object
    }

    func error(_ key: String, _ message: String) -> TrainingError { TrainingError("\(source): \(path)\(key): \(message)") }

    private mutating func optional(_ key: String) -> JSONValue? {
        used.insert(key)
        if case .null? = object[key] { return nil }
        return object[key]
    }

    mutating func string(_ key: String) throws -> String {
        guard let s = try optionalString(key) else { throw error(key, "missing") }
        return s
    }

    mutating func optionalString(_ key: String) throws -> String? {
        guard let v = optional(key) else { return nil }
        guard case .string(let s) = v else { throw error(key, "expected a string, got \(v.brief)") }
        return s
    }

    mutating func names(_ key: String) throws -> [String] {
        guard let n = try optionalNames(key) else { throw error(key, "missing (a list of column names)") }
        return n
    }

    mutating func optionalNames(_ key: String) throws -> [String]? {
        guard let v = optional(key) else { return nil }
        if case .string(let s) = v { return [s] }
        guard case .array(let a) = v else { throw error(key, "expected a list of column names, got \(v.brief)") }
        let names = try a.map {
            guard case .string(let s) = $0 else { throw error(key, "expected column names, got \($0.brief)") }
            return s
        }
        if let d = Dictionary(grouping: names, by: { $0 }).first(where: { $0.value.count > 1 }) { throw error(key, "lists \"\(d.key)\" twice") }
        return names
    }

    mutating func optionalInt(_ key: String, min: Int) throws -> Int? {
        guard let v = optional(key) else { return nil }
        guard let i = v.integer, i >= min else { throw error(key, "expected an integer >= \(min), got \(v.brief)") }
        return i
    }

    mutating func optionalInts(_ key: String, min: Int) throws -> [Int]? {
        guard let v = optional(key) else { return nil }
        guard case .array(let a) = v, !a.isEmpty else { throw error(key, "expected a non-empty list of integers, got \(v.brief)") }
        return try a.map {
            guard let i = $0.integer, i >= min else { throw error(key, "expected integers >= \(min), got \($0.brief)") }
            return i
        }
    }

    mutating func optionalNumber(_ key: String) throws -> Double? {
        guard let v = optional(key) else { return nil }
        guard let d = v.number else { throw error(key, "expected a number, got \(v.brief)") }
        return d
    }

    mutating func optionalBool(_ key: String) throws -> Bool? {
        guard let v = optional(key) else { return nil }
        guard case .bool(let b) = v else { throw error(key, "expected true or false, got \(v.brief)") }
        return b
    }

    mutating func negatives(_ key: String) throws -> NegativeSampling? {
        guard let v = optional(key) else { return nil }
        guard case .object(let o) = v else { throw error(key, "expected an object {\"per_positive\": N, \"sampling\": \"uniform\"|\"popularity\", \"table_negatives\": \"drop\"|\"keep\"}, got \(v.brief)") }
        var r = SpecReader(source: source, path: "\(path)\(key).", object: o)
        var n = NegativeSampling(perPositive: try r.optionalInt("per_positive", min: 0) ?? 4)
        if let d = try r.optionalString("sampling") {
            guard let v = NegativeSampling.Distribution(rawValue: d) else { throw r.error("sampling", "must be \"uniform\" or \"popularity\", not \"\(d)\"") }
            n.distribution = v
        }
        if let t = try r.optionalString("table_negatives") {
            guard let v = NegativeSampling.TableNegatives(rawValue: t) else { throw r.error("table_negatives", "must be \"drop\" or \"keep\", not \"\(t)\"") }
            n.tableNegatives = v
        }
        try r.rejectUnknown()
        return n
    }

    mutating func tower(_ key: String) throws -> TableModelSpec.Tower {
        guard let v = optional(key) else { throw error(key, "missing (an object with id, indicator_cols, embed_cols, numerical_cols)") }
        guard case .object(let o) = v else { throw error(key, "expected an object, got \(v.brief)") }
        var r = SpecReader(source: source, path: "\(path)\(key).", object: o)
        var t = TableModelSpec.Tower(id: try r.string("id"))
        t.indicatorCols = try r.optionalNames("indicator_cols") ?? []
        t.embedCols = try r.optionalNames("embed_cols") ?? []
        t.numericalCols = try r.optionalNames("numerical_cols") ?? []
        guard !(t.indicatorCols + t.embedCols + t.numericalCols).isEmpty else {
            throw TrainingError("\(source): \(path)\(key): the tower has no inputs (give indicator_cols, embed_cols or numerical_cols)")
        }
        try r.rejectUnknown()
        return t
    }

    func rejectUnknown() throws {
        let unknown = object.keys.filter { !used.contains($0) }.sorted()
        guard let first = unknown.first else { return }
        throw error(first, "unknown key (known here: \(used.sorted().joined(separator: ", ")))")
    }
}
