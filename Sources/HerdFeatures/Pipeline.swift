import Foundation
import HerdData

/// A declarative feature pipeline: an ordered list of steps, decoded from JSON:
///
/// ```json
/// {"steps": [
///   {"op": "fillna", "columns": ["reply_timestamp"], "value": 0},
///   {"op": "categorify", "columns": [["engaged_with_user_id", "enaging_user_id"], "language"],
///    "freq_limit": 2},
///   {"op": "cut_bins", "columns": ["follower_count"], "bins": [1, 100, 1000]},
///   {"op": "cross_hash_encode", "columns": ["present_media", "language"], "bins": 600},
///   {"op": "min_max_scale", "columns": ["len_hashtags"]}]}
/// ```
///
/// Ops and their keys (`?` optional):
///
/// | op | keys |
/// |---|---|
/// | `select`, `drop` | `columns` |
/// | `rename` | `mapping` (object old → new) |
/// | `cast` | `columns`, `type` |
/// | `fillna` | `value` (number, string), `columns`? (default: every column that takes the value) |
/// | `clip` | `columns`, `min`?, `max`? |
/// | `log` | `columns`, `clipping`? (true) |
/// | `min_max_scale` | `columns`, `min`? (0), `max`? (1) — fitted |
/// | `standard_scale` | `columns` — fitted |
/// | `cut_bins` | `columns`, `bins` (boundaries, or a count of equal-width bins — fitted), `out_columns`?, `drop`? (true) |
/// | `categorify` | `columns` (a name, or a list of names sharing one index), `freq_limit`? (1) — fitted |
/// | `hash_encode` | `columns`, `bins` |
/// | `cross_hash_encode` | `columns` (≥ 2), `bins`, `name`? |
/// | `not_null`, `list_length` | `columns`, `out_columns`? |
/// | `count_encode` | `columns`, `out_columns`? — fitted |
/// | `target_encode` | `columns` (groups, as categorify), `targets`, `smooth`? (20), `kfold`? (2), `seed`? (0) — fitted |
/// | `map_encode` | `columns`, `mapping` (object value → integer id), `default`? (0: null and unmapped values) |
/// | `join_list` | `columns` (string lists), `separator`, `limit`? (first n elements; all) |
/// | `keep_most_frequent` | `columns` (id lists from categorify), `out_columns`? |
/// | `any` | `columns`, `out_column` (1 where any column is non-null and non-zero) |
///
/// NOTE: `target_encode` gives the fitting table out-of-fold values, while `apply` (any other
/// table) uses the whole-table statistics, so re-applying a fitted pipeline to its own training
/// table differs in those columns by design.
///
/// `fit` runs the steps on a table and records what fitted steps learnt (ranges, moments,
/// indices); the `FittedPipeline` is saved as JSON and `apply`d to other tables (the test split,
/// serving requests) with the same results for the same raw values. Every error names the step:
/// `invalid pipeline: steps[1] (categorify).freq_limit: expected an integer >= 1, got "2"`.
public struct Pipeline: Sendable, Equatable {
    public let steps: [PipelineStep]

    public init(steps: [PipelineStep]) { self.steps = steps }

    /// Decodes and validates a pipeline file.
    public static func load(path: String) throws -> Pipeline {
        try decode(json: try readJSON(path: path), source: path)
    }

    /// Decodes `{"steps": [...]}`.
    public static func decode(json: JSONValue, source: String = "pipeline") throws -> Pipeline {
        guard case .object(let root) = json else { throw FeatureError.invalidPipeline("the top level must be an object with \"steps\"") }
        for key in root.keys where key != "steps" {
            throw FeatureError.invalidPipeline("unknown top-level key '\(key)' (expected \"steps\")")
        }
        guard case .array(let raw)? = root["steps"] else { throw FeatureError.invalidPipeline("\"steps\" must be an array") }
        return Pipeline(steps: try raw.enumerated().map { try PipelineStep(json: $1, index: $0) })
    }

    public var json: JSONValue { .object(["steps": .array(steps.map(\.json))]) }

    /// Runs every step on `table`, fitting the fitted ones; returns the transformed table and the
    /// fitted pipeline. `absent`: input columns `table` lacks because they are dropped unread
    /// (`unreadColumns`); the steps that drop them skip them.
    ///
    /// NOTE: `table` is consumed: a caller that passes its last reference (`fit(consume raw)`)
    /// lets each raw column be freed as soon as a step replaces it, so the peak memory is not the
    /// raw table plus the transformed one.
    public func fit(_ table: consuming FeatureTable, absent: Set<String> = []) throws -> (FeatureTable, FittedPipeline) {
        var t = consume table
        var fitted: [FittedStep] = []
        var absent = absent
        for (i, step) in steps.enumerated() {
            let run = absent.isEmpty ? step : step.ignoring(absent: absent)
            try run.checkColumns(t, index: i)
            do {
                let (next, state) = try run.fit(t)
                t = next
                if !absent.isEmpty { absent.subtract(t.names) }
                fitted.append(FittedStep(step: step, state: state))
            } catch let e as FeatureError {
                throw FeatureError.invalidPipeline("steps[\(i)] (\(step.op.rawValue)): \(e.description)")
            }
        }
        return (t, FittedPipeline(steps: fitted))
    }
}

/// Reads a JSON file into a `JSONValue`, with file-named errors.
func readJSON(path: String) throws -> JSONValue {
    _ = try SourceFingerprint(path: path)
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    do {
        return try JSONDecoder().decode(JSONValue.self, from: data)
    } catch {
        throw FeatureError.invalidPipeline("\(path): not valid JSON")
    }
}

/// One step of a pipeline: an op and its checked arguments.
public struct PipelineStep: Sendable, Equatable {
    public enum Op: String, Sendable, CaseIterable {
        case select, drop, rename, cast, fillna, clip, log
        case minMaxScale = "min_max_scale"
        case standardScale = "standard_scale"
        case cutBins = "cut_bins"
        case categorify
        case hashEncode = "hash_encode"
        case crossHashEncode = "cross_hash_encode"
        case notNull = "not_null"
        case listLength = "list_length"
        case countEncode = "count_encode"
        case targetEncode = "target_encode"
        case mapEncode = "map_encode"
        case joinList = "join_list"
        case keepMostFrequent = "keep_most_frequent"
        case any
    }

    public let op: Op
    /// The step as written (re-serialised into the fitted pipeline).
    public let json: JSONValue
    let args: Args

    enum Args: Sendable, Equatable {
        case columns([String])
        case rename([String: String])
        case cast([String], ColumnType)
        case fillna(Value, [String]?)
        case clip([String], Double?, Double?)
        case log([String], Bool)
        case minMax([String], Double, Double)
        case cutBins([String], [Double], [String]?, Bool)
        case cutBinCount([String], Int, [String]?, Bool)
        case categorify([[String]], Int)
        case hash([String], Int)
        case cross([String], Int, String?)
        case count([String], [String]?)
        case target([[String]], [String], Double, Int, UInt64)
        case mapEncode([String], [String: Int64], Int64)
        case joinList([String], String, Int?)
        case any([String], String)
    }

    /// Decodes and checks step `index`.
    public init(json: JSONValue, index: Int) throws {
        guard case .object(let o) = json else { throw FeatureError.invalidPipeline("steps[\(index)]: a step must be an object") }
        guard case .string(let name)? = o["op"] else { throw FeatureError.invalidPipeline("steps[\(index)]: missing \"op\"") }
        guard let op = Op(rawValue: name) else {
            throw FeatureError.invalidPipeline("steps[\(index)].op: unknown op '\(name)' (known: \(Op.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        var r = StepReader(index: index, op: name, object: o)
        switch op {
        case .select, .drop, .standardScale: args = .columns(try r.names("columns"))
        case .rename: args = .rename(try r.mapping("mapping"))
        case .cast:
            let columns = try r.names("columns")
            let typeName = try r.string("type")
            guard let type = ColumnType(rawValue: typeName) else {
                throw r.error("type", "unknown type '\(typeName)' (known: \(ColumnType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            args = .cast(columns, type)
        case .fillna: args = .fillna(try r.scalar("value"), try r.optionalNames("columns"))
        case .clip:
            let columns = try r.names("columns")
            let lo = try r.optionalDouble("min"), hi = try r.optionalDouble("max")
            if lo == nil && hi == nil { throw r.error("min", "give min, max or both") }
            args = .clip(columns, lo, hi)
        case .log: args = .log(try r.names("columns"), try r.optionalBool("clipping") ?? true)
        case .minMaxScale: args = .minMax(try r.names("columns"), try r.optionalDouble("min") ?? 0, try r.optionalDouble("max") ?? 1)
        case .cutBins:
            let columns = try r.names("columns")
            let outs = try r.optionalNames("out_columns")
            if let outs, outs.count != columns.count { throw r.error("out_columns", "has \(outs.count) names for \(columns.count) columns") }
            let drop = try r.optionalBool("drop") ?? true
            if o["bins"]?.number != nil {
                args = .cutBinCount(columns, try r.int("bins", min: 1), outs, drop)
            } else {
                let bins = try r.doubles("bins")
                guard !bins.isEmpty, zip(bins, bins.dropFirst()).allSatisfy({ $0 < $1 }) else {
                    throw r.error("bins", "must be a bin count or a non-empty, strictly increasing list of numbers")
                }
                args = .cutBins(columns, bins, outs, drop)
            }
        case .categorify:
            let groups = try r.groups("columns")
            let limit = try r.optionalInt("freq_limit", min: 1) ?? 1
            args = .categorify(groups, limit)
        case .hashEncode: args = .hash(try r.names("columns"), try r.int("bins", min: 1))
        case .crossHashEncode:
            let columns = try r.names("columns")
            if columns.count < 2 { throw r.error("columns", "needs at least 2 columns") }
            args = .cross(columns, try r.int("bins", min: 1), try r.optionalString("name"))
        case .mapEncode:
            let columns = try r.names("columns")
            let mapping = try r.idMapping("mapping")
            let fallback = try r.optionalInt("default", min: 0) ?? 0
            args = .mapEncode(columns, mapping, Int64(fallback))
        case .joinList:
            args = .joinList(try r.names("columns"), try r.string("separator"), try r.optionalInt("limit", min: 1))
        case .any:
            args = .any(try r.names("columns"), try r.string("out_column"))
        case .countEncode, .notNull, .listLength, .keepMostFrequent:
            let columns = try r.names("columns")
            let outs = try r.optionalNames("out_columns")
            if let outs, outs.count != columns.count { throw r.error("out_columns", "has \(outs.count) names for \(columns.count) columns") }
            args = .count(columns, outs)
        case .targetEncode:
            let groups = try r.groups("columns")
            let targets = try r.names("targets")
            let smooth = try r.optionalDouble("smooth") ?? 20
            if smooth < 0 { throw r.error("smooth", "must be >= 0") }
            let kfold = try r.optionalInt("kfold", min: 1) ?? 2
            let seed = try r.optionalInt("seed", min: 0) ?? 0
            args = .target(groups, targets, smooth, kfold, UInt64(seed))
        }
        try r.finish()
        self.op = op
        self.json = json
    }

    /// The input columns the step reads, by key.
    var inputColumns: [(key: String, names: [String])] {
        switch args {
        case .columns(let c), .cast(let c, _), .clip(let c, _, _), .log(let c, _), .minMax(let c, _, _), .cutBins(let c, _, _, _), .cutBinCount(let c, _, _, _),
             .hash(let c, _), .cross(let c, _, _), .count(let c, _), .mapEncode(let c, _, _), .joinList(let c, _, _), .any(let c, _):
            return [("columns", c)]
        case .rename(let m): return [("mapping", m.keys.sorted())]
        case .fillna(_, let c): return c.map { [("columns", $0)] } ?? []
        case .categorify(let g, _): return [("columns", g.flatMap { $0 })]
        case .target(let g, let t, _, _, _): return [("columns", g.flatMap { $0 }), ("targets", t)]
        }
    }

    /// Throws `steps[i] (op).key: no column named …` for an input column `table` lacks.
    func checkColumns(_ table: FeatureTable, index: Int) throws {
        for (key, names) in inputColumns {
            for n in names where !table.contains(n) {
                throw FeatureError.invalidPipeline(
                    "steps[\(index)] (\(op.rawValue)).\(key): no column named '\(n)' (columns: \(table.names.joined(separator: ", ")))")
            }
        }
    }

    /// Runs the step, returning the new table and (for fitted ops) the fitted state.
    func fit(_ t: FeatureTable) throws -> (FeatureTable, FittedState?) {
        switch args {
        case .minMax(let c, let lo, let hi):
            let (out, stats) = try t.minMaxScale(c, outMin: lo, outMax: hi)
            return (out, .minMax(stats))
        case .cutBinCount(let c, let n, let outs, let drop):
            let (out, edges) = try t.cutBins(c, binCount: n, outColumns: outs, drop: drop)
            return (out, .binEdges(edges))
        case .columns(let c) where op == .standardScale:
            let (out, stats) = try t.standardScale(c)
            return (out, .standard(stats))
        case .categorify(let groups, let limit):
            let (out, indices) = try t.categorify(groups, freqLimit: limit)
            return (out, .indices(indices))
        case .count(let c, let outs) where op == .countEncode:
            let (out, counts) = try t.countEncode(c, outColumns: outs)
            return (out, .counts(counts))
        case .target(let groups, let targets, let smooth, let kfold, let seed):
            let (out, encoding) = try t.targetEncode(groups, targets: targets, smooth: smooth, kfold: kfold, seed: seed)
            return (out, .target(encoding))
        default:
            return (try apply(t, state: nil), nil)
        }
    }

    /// Applies the step with its fitted state.
    func apply(_ t: FeatureTable, state: FittedState?) throws -> FeatureTable {
        switch (args, state) {
        case (.columns(let c), _) where op == .select: return try t.select(c)
        case (.columns(let c), _) where op == .drop: return try t.drop(c)
        case (.rename(let m), _): return try t.rename(m)
        case (.cast(let c, let type), _): return try t.cast(c, to: type)
        case (.fillna(let v, let c), _): return try t.fillna(v, columns: c)
        case (.clip(let c, let lo, let hi), _): return try t.clip(c, min: lo, max: hi)
        case (.log(let c, let clipping), _): return try t.log(c, clipping: clipping)
        case (.cutBins(let c, let bins, let outs, let drop), _): return try t.cutBins(c, bins: bins, outColumns: outs, drop: drop)
        case (.cutBinCount(let c, _, let outs, let drop), .binEdges(let edges)?): return try t.cutBins(c, edges: edges, outColumns: outs, drop: drop)
        case (.hash(let c, let bins), _): return try t.hashEncode(c, bins: bins)
        case (.cross(let c, let bins, let name), _): return try t.crossHashEncode(c, bins: bins, name: name)
        case (.count(let c, let outs), _) where op == .notNull: return try t.notNull(c, outColumns: outs)
        case (.count(let c, let outs), _) where op == .listLength: return try t.listLength(c, outColumns: outs)
        case (.count(let c, let outs), _) where op == .keepMostFrequent: return try t.keepMostFrequent(c, outColumns: outs)
        case (.mapEncode(let c, let mapping, let fallback), _): return try t.mapEncode(c, mapping: mapping, defaultID: fallback)
        case (.joinList(let c, let separator, let limit), _): return try t.joinList(c, separator: separator, limit: limit)
        case (.any(let c, let out), _): return try t.anyOf(c, outColumn: out)
        case (_, .minMax(let stats)?): return try stats.apply(t)
        case (_, .standard(let stats)?): return try stats.apply(t)
        case (_, .indices(let indices)?):
            var out = t
            for index in indices { out = try out.encode(index.columns, with: index) }
            return out
        case (_, .counts(let counts)?): return try counts.apply(t)
        case (_, .target(let encoding)?): return try encoding.apply(t)
        default:
            throw FeatureError.invalidPipeline("the \(op.rawValue) step has no fitted state")
        }
    }
}

/// What a fitted step learnt.
enum FittedState: Sendable, Equatable {
    case minMax(MinMaxStats)
    case standard(StandardStats)
    case indices([StringIndex])
    case counts(CountEncoding)
    case target(TargetEncoding)
    case binEdges([String: [Double]])
}

/// A step with its fitted state (nil for stateless ops).
public struct FittedStep: Sendable, Equatable {
    public let step: PipelineStep
    let state: FittedState?
}

/// A fitted pipeline, saved as JSON: `{"format_version": 1, "steps": [{…the step…,
/// "fitted": {…}}]}`; `apply` transforms any table with the same raw columns.
public struct FittedPipeline: Sendable, Equatable {
    public static let formatVersion = 1
    public let steps: [FittedStep]

    /// The fitted string indices of every categorify step, in order (for table sizes).
    public var stringIndices: [StringIndex] {
        steps.flatMap { if case .indices(let i)? = $0.state { return i } else { return [] } }
    }

    /// Transforms `table` (consumed, as in `Pipeline.fit`); `absent` as in `Pipeline.fit`.
    public func apply(_ table: consuming FeatureTable, absent: Set<String> = []) throws -> FeatureTable {
        var t = consume table
        var absent = absent
        for (i, s) in steps.enumerated() {
            let run = absent.isEmpty ? s.step : s.step.ignoring(absent: absent)
            try run.checkColumns(t, index: i)
            do {
                t = try run.apply(t, state: s.state)
                if !absent.isEmpty { absent.subtract(t.names) }
            } catch let e as FeatureError {
                throw FeatureError.invalidPipeline("steps[\(i)] (\(s.step.op.rawValue)): \(e.description)")
            }
        }
        return t
    }

    /// The fitted pipeline as pretty JSON (sorted keys): each step as written, plus its `fitted`
    /// state — the contents of `pipeline.fitted.json`.
    public func jsonData() throws -> Data { try jsonData(fastStrings: true) }

    /// `jsonData()`; `fastStrings: false` leaves the long string arrays to `JSONEncoder` too
    /// (tests check both give the same bytes).
    func jsonData(fastStrings: Bool) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard fastStrings else { return try encoder.encode(FittedFileOut(steps: steps)) }
        return try spliced().json
    }

    /// The JSON with the long arrays spliced in, and the stash recording where they went.
    private func spliced() throws -> (json: Data, arrays: StringArrays) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let arrays = StringArrays()
        encoder.userInfo[StringArrays.key] = arrays
        return (arrays.splice(try encoder.encode(FittedFileOut(steps: steps))), arrays)
    }

    /// `jsonData()` and its binary sidecar (`FittedSidecar`: the long string arrays, for fast
    /// loading; it lists no arrays when there are none).
    public func files() throws -> (json: Data, sidecar: Data) {
        let (json, arrays) = try spliced()
        let sidecar = json.withUnsafeBytes { FittedSidecar.encode(json: $0, entries: arrays.entries, spliced: arrays.spliced) }
        return (json, sidecar)
    }

    /// The sidecar file of the fitted pipeline at `path` (`path` + ".strings").
    public static func sidecarPath(_ path: String) -> String { path + ".strings" }

    /// Writes `jsonData()` to `path` and its sidecar to `sidecarPath(path)`, each atomically,
    /// the JSON first (a crash in between leaves a stale sidecar, which `load` detects).
    public func save(path: String) throws {
        let (json, sidecar) = try files()
        for (file, data) in [(path, json), (FittedPipeline.sidecarPath(path), sidecar)] {
            do { try data.write(to: URL(fileURLWithPath: file), options: .atomic) } catch {
                throw HerdDataError.io(path: file, message: "cannot write: \(error.localizedDescription)")
            }
        }
    }

    /// Reads the fitted pipeline at `path`, its string arrays from the sidecar when it matches
    /// the JSON (else from the JSON; `warn` hears why when a sidecar exists but was not used).
    public static func load(path: String, warn: (String) -> Void = FittedPipeline.warnOnStandardError) throws -> FittedPipeline {
        _ = try SourceFingerprint(path: path)
        let json = try MappedFile(path: path)
        return try withExtendedLifetime(json) {
            let sidePath = sidecarPath(path)
            guard FileManager.default.fileExists(atPath: sidePath) else { return try decode(data(json.bytes), source: path) }
            let side = try MappedFile(path: sidePath)
            return try withExtendedLifetime(side) {
                try decode(json: json.bytes, sidecar: side.bytes, source: path, sidecarSource: sidePath, warn: warn)
            }
        }
    }

    private static func data(_ b: UnsafeRawBufferPointer) -> Data { b.isEmpty ? Data() : Data(bytes: b.baseAddress!, count: b.count) }

    /// Prints a sidecar warning on standard error.
    public static func warnOnStandardError(_ message: String) {
        FileHandle.standardError.write(Data(("herd: warning: " + message + "\n").utf8))
    }

    /// Decodes `json` (as `decode(_:source:)`) taking the long string arrays from `sidecar`
    /// (`files().sidecar`) when it belongs to `json`; otherwise reads them from the JSON and
    /// tells `warn` why.
    public static func decode(json: Data, sidecar: Data, source: String, sidecarSource: String,
                              warn: (String) -> Void = FittedPipeline.warnOnStandardError) throws -> FittedPipeline {
        try json.withUnsafeBytes { j in
            try sidecar.withUnsafeBytes { s in try decode(json: j, sidecar: s, source: source, sidecarSource: sidecarSource, warn: warn) }
        }
    }

    static func decode(json: UnsafeRawBufferPointer, sidecar: UnsafeRawBufferPointer, source: String, sidecarSource: String,
                       warn: (String) -> Void) throws -> FittedPipeline {
        let stash: StringArrays, ranges: [Range<Int>]
        do throws(FittedSidecar.Problem) {
            (stash, ranges) = try FittedSidecar.decode(sidecar, json: json)
        } catch {
            switch error {
            case .stale: warn("\(sidecarSource) was written for another version of \(source) (edited or replaced?); reading the string values from the JSON")
            case .corrupt(let why): warn("\(sidecarSource) is damaged (\(why)); reading the string values from \(source)")
            }
            return try decode(data(json), source: source)
        }
        return try decode(FittedSidecar.replacingArrays(json, ranges), source: source, stash: stash)
    }

    /// Decodes the JSON of `jsonData()`; `source` names it in errors (a path, or the export
    /// holding it).
    public static func decode(_ data: Data, source: String) throws -> FittedPipeline {
        try decode(data, source: source, fastStrings: true)
    }

    /// `decode(_:source:)`; `fastStrings: false` leaves the long string arrays to `JSONDecoder`.
    static func decode(_ data: Data, source: String, fastStrings: Bool) throws -> FittedPipeline {
        guard fastStrings else { return try decode(data, source: source, stash: nil) }
        let (rewritten, arrays) = StringArrays.extract(data)
        return try decode(rewritten, source: source, stash: arrays)
    }

    /// Decodes `json` whose long string arrays, if any, were replaced by placeholders of `stash`.
    private static func decode(_ json: Data, source: String, stash: StringArrays?) throws -> FittedPipeline {
        let file: FittedFile
        let decoder = JSONDecoder()
        if let stash { decoder.userInfo[StringArrays.key] = stash }
        do { file = try decoder.decode(FittedFile.self, from: json) } catch {
            throw FeatureError.invalidPipeline("\(source): not a fitted pipeline (expected JSON with \"format_version\" and \"steps\")")
        }
        guard file.formatVersion == formatVersion else {
            throw FeatureError.invalidPipeline("\(source): format_version \(file.formatVersion) is not supported (expected \(formatVersion))")
        }
        return FittedPipeline(steps: try file.steps.enumerated().map { i, raw in
            let step = try PipelineStep(json: .object(raw.object), index: i)
            if let e = raw.stateError { throw FeatureError.invalidPipeline("steps[\(i)].fitted: \(e)") }
            let needs: Bool
            if case .cutBinCount = step.args { needs = true } else {
                needs = [.minMaxScale, .standardScale, .categorify, .countEncode, .targetEncode].contains(step.op)
            }
            if needs && raw.state == nil { throw FeatureError.invalidPipeline("steps[\(i)].fitted: missing (was the pipeline fitted?)") }
            if !needs && raw.hasFitted { throw FeatureError.invalidPipeline("steps[\(i)].fitted: the \(step.op.rawValue) op takes no fitted state") }
            return FittedStep(step: step, state: raw.state)
        })
    }
}

/// The fitted-pipeline file, decoded in one pass.
///
/// NOTE: each step's `fitted` object is decoded straight into its typed state (a `StringIndex`
/// may hold millions of values); only the small step arguments go through `JSONValue`.
private struct FittedFile: Decodable {
    var formatVersion: Int
    var steps: [RawFittedStep]

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case steps
    }
}

/// The fitted-pipeline file, encoded in one pass (the states straight from their types).
private struct FittedFileOut: Encodable {
    var steps: [FittedStep]

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(FittedPipeline.formatVersion, forKey: AnyKey(stringValue: "format_version"))
        var list = c.nestedUnkeyedContainer(forKey: AnyKey(stringValue: "steps"))
        for s in steps { try list.encode(StepOut(step: s)) }
    }

    struct StepOut: Encodable {
        var step: FittedStep

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: AnyKey.self)
            if case .object(let o) = step.step.json {
                for (k, v) in o { try c.encode(v, forKey: AnyKey(stringValue: k)) }
            }
            let key = AnyKey(stringValue: "fitted")
            switch step.state {
            case .minMax(let s)?: try c.encode(s, forKey: key)
            case .standard(let s)?: try c.encode(s, forKey: key)
            case .indices(let s)?: try c.encode(s, forKey: key)
            case .counts(let s)?: try c.encode(s, forKey: key)
            case .target(let s)?: try c.encode(s, forKey: key)
            case .binEdges(let s)?: try c.encode(s, forKey: key)
            case nil: break
            }
        }
    }
}

private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

private struct RawFittedStep: Decodable {
    var object: [String: JSONValue] = [:]
    var hasFitted = false
    var state: FittedState?
    var stateError: String?

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        for k in c.allKeys where k.stringValue != "fitted" { object[k.stringValue] = try c.decode(JSONValue.self, forKey: k) }
        let key = AnyKey(stringValue: "fitted")
        guard c.contains(key) else { return }
        hasFitted = true
        guard case .string(let name)? = object["op"], let op = PipelineStep.Op(rawValue: name) else { return }
        do {
            switch op {
            case .minMaxScale: state = .minMax(try c.decode(MinMaxStats.self, forKey: key))
            case .standardScale: state = .standard(try c.decode(StandardStats.self, forKey: key))
            case .categorify: state = .indices(try c.decode([StringIndex].self, forKey: key))
            case .countEncode: state = .counts(try c.decode(CountEncoding.self, forKey: key))
            case .targetEncode: state = .target(try c.decode(TargetEncoding.self, forKey: key))
            case .cutBins: state = .binEdges(try c.decode([String: [Double]].self, forKey: key))
            default: break
            }
        } catch let e as FeatureError {
            stateError = e.description
        } catch let e as DecodingError {
            stateError = "unreadable fitted state for \(name): \(describe(e))"
        }
    }
}

/// Reads a step's keys with errors naming `steps[i].key`, and flags unknown keys.
struct StepReader {
    let index: Int
    let op: String
    let object: [String: JSONValue]
    private var used: Set<String> = ["op"]

    init(index: Int, op: String, object: [String: JSONValue]) {
        self.index = index
        self.op = op
        self.object = object
    }

    func error(_ key: String, _ message: String) -> FeatureError {
        .invalidPipeline("steps[\(index)] (\(op)).\(key): \(message)")
    }

    private mutating func get(_ key: String) throws -> JSONValue {
        used.insert(key)
        guard let v = object[key] else { throw error(key, "missing") }
        return v
    }

    private mutating func optional(_ key: String) -> JSONValue? {
        used.insert(key)
        if case .null? = object[key] { return nil }
        return object[key]
    }

    mutating func names(_ key: String) throws -> [String] {
        let v = try get(key)
        return try names(v, key)
    }

    private func names(_ v: JSONValue, _ key: String) throws -> [String] {
        if case .string(let s) = v { return [s] }
        guard case .array(let a) = v, !a.isEmpty else { throw error(key, "expected a column name or a non-empty list of names, got \(v.brief)") }
        return try a.map {
            guard case .string(let s) = $0 else { throw error(key, "expected column names, got \($0.brief)") }
            return s
        }
    }

    mutating func optionalNames(_ key: String) throws -> [String]? {
        guard let v = optional(key) else { return nil }
        return try names(v, key)
    }

    /// `["a", ["b", "c"]]`: each entry is one group (a single name, or names sharing an index).
    mutating func groups(_ key: String) throws -> [[String]] {
        let v = try get(key)
        if case .string(let s) = v { return [[s]] }
        guard case .array(let a) = v, !a.isEmpty else { throw error(key, "expected a list of column names or lists of names, got \(v.brief)") }
        return try a.map { try names($0, key) }
    }

    mutating func mapping(_ key: String) throws -> [String: String] {
        guard case .object(let o) = try get(key) else { throw error(key, "expected an object of old → new names") }
        return try o.mapValues {
            guard case .string(let s) = $0 else { throw error(key, "expected new names as strings, got \($0.brief)") }
            return s
        }
    }

    /// `{"value": id, …}` with integer ids >= 0.
    mutating func idMapping(_ key: String) throws -> [String: Int64] {
        guard case .object(let o) = try get(key), !o.isEmpty else { throw error(key, "expected a non-empty object of value → integer id") }
        return try o.mapValues { v in
            guard let n = v.integer, n >= 0, let i = Int64(exactly: n) else {
                throw error(key, "expected integer ids >= 0, got \(v.brief)")
            }
            return i
        }
    }

    mutating func string(_ key: String) throws -> String {
        let v = try get(key)
        guard case .string(let s) = v else { throw error(key, "expected a string, got \(v.brief)") }
        return s
    }

    mutating func optionalString(_ key: String) throws -> String? {
        guard let v = optional(key) else { return nil }
        guard case .string(let s) = v else { throw error(key, "expected a string, got \(v.brief)") }
        return s
    }

    mutating func int(_ key: String, min: Int) throws -> Int {
        let v = try get(key)
        return try int(v, key, min: min)
    }

    private func int(_ v: JSONValue, _ key: String, min: Int) throws -> Int {
        guard let i = v.integer, i >= min else {
            throw error(key, "expected an integer >= \(min), got \(v.brief)")
        }
        return i
    }

    mutating func optionalInt(_ key: String, min: Int) throws -> Int? {
        guard let v = optional(key) else { return nil }
        return try int(v, key, min: min)
    }

    mutating func optionalDouble(_ key: String) throws -> Double? {
        guard let v = optional(key) else { return nil }
        guard let d = v.number else { throw error(key, "expected a number, got \(v.brief)") }
        return d
    }

    mutating func optionalBool(_ key: String) throws -> Bool? {
        guard let v = optional(key) else { return nil }
        guard case .bool(let b) = v else { throw error(key, "expected true or false, got \(v.brief)") }
        return b
    }

    mutating func doubles(_ key: String) throws -> [Double] {
        let v = try get(key)
        guard case .array(let a) = v else { throw error(key, "expected a list of numbers, got \(v.brief)") }
        return try a.map {
            guard let d = $0.number else { throw error(key, "expected a list of numbers, got \($0.brief) in it") }
            return d
        }
    }

    /// A fill value: an integral number → `.int`, other numbers → `.double`, strings.
    mutating func scalar(_ key: String) throws -> Value {
        let v = try get(key)
        switch v {
        case .int, .uint, .double:
            let d = v.number!
            return d.rounded() == d && abs(d) < 9e15 ? .int(Int64(d)) : .double(d)
        case .string(let s): return .string(s)
        case let v: throw error(key, "expected a number or a string, got \(v.brief)")
        }
    }

    /// Throws for keys the op does not take.
    func finish() throws {
        for key in object.keys.sorted() where !used.contains(key) {
            throw FeatureError.invalidPipeline("steps[\(index)] (\(op)): unknown key '\(key)'")
        }
    }
}
