import Foundation

/// How categorical columns are turned into table rows.
public struct FeatureConfig: Sendable, Codable, Equatable {
    /// The encoding of one categorical column.
    public enum Categorical: Sendable, Codable, Equatable {
        /// `id = raw % tableSize`; a missing value hashes as raw id 0 (as DLRM's
        /// `--max-ind-range`), so it lands in row 0.
        case hashing(tableSize: Int)
        /// A vocabulary fitted on the training file; values seen fewer than `freqLimit` times
        /// share the out-of-vocabulary row (see `Vocabulary`).
        case vocabulary(freqLimit: Int)
    }

    /// One encoding per categorical column, C1…C26.
    public var columns: [Categorical]

    public init(columns: [Categorical]) {
        precondition(columns.count == Criteo.sparseCount, "one encoding per categorical column")
        self.columns = columns
    }

    /// Every column hashed into `tableSize` rows.
    public static func hashing(tableSize: Int) -> FeatureConfig {
        FeatureConfig(columns: Array(repeating: .hashing(tableSize: tableSize), count: Criteo.sparseCount))
    }

    /// Every column encoded by a fitted vocabulary with `freqLimit`.
    public static func vocabulary(freqLimit: Int) -> FeatureConfig {
        FeatureConfig(columns: Array(repeating: .vocabulary(freqLimit: freqLimit), count: Criteo.sparseCount))
    }

    /// True when some column needs a counting pass over the training file.
    public var needsFit: Bool {
        columns.contains { if case .vocabulary = $0 { return true } else { return false } }
    }

    func validate() throws {
        for (c, column) in columns.enumerated() {
            switch column {
            case .hashing(let n) where n < 1 || n > Int(Int32.max):
                throw HerdDataError.invalidArgument("C\(c + 1): hashing table size must be in 1…\(Int32.max), got \(n)")
            case .vocabulary(let f) where f < 1:
                throw HerdDataError.invalidArgument("C\(c + 1): freqLimit must be at least 1, got \(f)")
            default: break
            }
        }
    }
}

/// Everything needed to turn raw Criteo rows into model inputs, fitted on the training split.
/// It is saved as JSON next to a model export so that serving transforms rows identically.
///
/// - Dense: `log(max(x, 0) + 1)`, missing → 0, giving `[B, 13]`.
/// - Categorical column `c`: a row id in `0..<tableSizes[c]` (see `ColumnEncoding`).
public struct FeatureState: Sendable, Codable, Equatable {
    /// Bumped when the transform or the JSON layout changes.
    public static let currentVersion = 1

    /// The encoding of one fitted categorical column.
    public enum ColumnEncoding: Sendable, Codable, Equatable {
        case hashing(tableSize: Int)
        case vocabulary(Vocabulary)

        /// Rows of this column's embedding table.
        public var tableSize: Int {
            switch self {
            case .hashing(let n): return n
            case .vocabulary(let v): return v.tableSize
            }
        }

        /// The table row of a raw id (`RawChunk.missing` for an empty field).
        @inline(__always)
        public func id(for raw: UInt64) -> Int32 {
            switch self {
            case .hashing(let n):
                return raw == RawChunk.missing ? 0 : Int32(truncatingIfNeeded: raw % UInt64(n))
            case .vocabulary(let v):
                return v.id(for: raw)
            }
        }

        // JSON: {"kind": "hashing", "tableSize": N} or
        //       {"kind": "vocabulary", "tableSize": N, "freqLimit": F, "values": [...]}
        private enum CodingKeys: String, CodingKey { case kind, tableSize, freqLimit, values }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            switch try c.decode(String.self, forKey: .kind) {
            case "hashing":
                self = .hashing(tableSize: try c.decode(Int.self, forKey: .tableSize))
            case "vocabulary":
                self = .vocabulary(try Vocabulary(from: decoder))
            case let other:
                throw HerdDataError.invalidState(reason: "unknown categorical encoding '\(other)'")
            }
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .hashing(let n):
                try c.encode("hashing", forKey: .kind)
                try c.encode(n, forKey: .tableSize)
            case .vocabulary(let v):
                try c.encode("vocabulary", forKey: .kind)
                try c.encode(v.tableSize, forKey: .tableSize)
                try v.encode(to: encoder)
            }
        }
    }

    public var version: Int
    /// Name of the dense transform (documentary; only `log1p_clamp0` exists).
    public var denseTransform: String
    /// C1…C26.
    public var columns: [ColumnEncoding]
    /// Rows the state was fitted on (0 for pure hashing; metadata, not part of `fingerprint`).
    public var fittedRows: Int
    /// Malformed rows skipped while fitting (metadata, not part of `fingerprint`).
    public var fittedSkippedRows: Int

    public init(columns: [ColumnEncoding], fittedRows: Int = 0, fittedSkippedRows: Int = 0) {
        precondition(columns.count == Criteo.sparseCount, "one encoding per categorical column")
        version = Self.currentVersion
        denseTransform = "log1p_clamp0"
        self.columns = columns
        self.fittedRows = fittedRows
        self.fittedSkippedRows = fittedSkippedRows
    }

    /// A state that hashes every column into `tableSize` rows (no fitting needed).
    public static func hashing(tableSize: Int) -> FeatureState {
        FeatureState(columns: Array(repeating: .hashing(tableSize: tableSize), count: Criteo.sparseCount))
    }

    /// Rows of each categorical column's embedding table, C1…C26.
    public var tableSizes: [Int] { columns.map(\.tableSize) }

    /// A 64-bit FNV-1a digest of everything that affects the transform; caches built with a
    /// different state are rebuilt.
    public var fingerprint: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ v: UInt64) {
            var x = v
            for _ in 0..<8 {
                h = (h ^ (x & 0xff)) &* 0x0000_0100_0000_01b3
                x >>= 8
            }
        }
        mix(UInt64(version))
        for byte in denseTransform.utf8 { mix(UInt64(byte)) }
        for column in columns {
            switch column {
            case .hashing(let n):
                mix(1)
                mix(UInt64(n))
            case .vocabulary(let v):
                mix(2)
                mix(UInt64(v.values.count))
                for value in v.values { mix(UInt64(value)) }
            }
        }
        return h
    }

    // MARK: JSON

    /// The state as compact JSON with sorted keys (vocabularies can hold millions of values).
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    /// Writes the state as JSON to `path`.
    public func save(to path: String) throws {
        do {
            try jsonData().write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch let error as HerdDataError {
            throw error
        } catch {
            throw HerdDataError.io(path: path, message: "cannot write feature state: \(error.localizedDescription)")
        }
    }

    /// Reads a state saved by `save(to:)`.
    public static func load(from path: String) throws -> FeatureState {
        _ = try SourceFingerprint(path: path)
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw HerdDataError.io(path: path, message: "cannot read feature state: \(error.localizedDescription)")
        }
        return try decode(data, source: path)
    }

    /// Decodes JSON produced by `jsonData()`; `source` names it in errors.
    public static func decode(_ data: Data, source: String = "feature state") throws -> FeatureState {
        let state: FeatureState
        do {
            state = try JSONDecoder().decode(FeatureState.self, from: data)
        } catch let error as HerdDataError {
            throw error
        } catch {
            throw HerdDataError.invalidState(reason: "\(source) is not a valid feature state JSON (\(error))")
        }
        guard state.version == currentVersion else {
            throw HerdDataError.invalidState(reason: "\(source) has version \(state.version), this build reads \(currentVersion)")
        }
        guard state.columns.count == Criteo.sparseCount else {
            throw HerdDataError.invalidState(reason: "\(source) has \(state.columns.count) categorical columns, expected \(Criteo.sparseCount)")
        }
        for (c, column) in state.columns.enumerated() {
            if case .hashing(let n) = column, n < 1 || n > Int(Int32.max) {
                throw HerdDataError.invalidState(reason: "\(source): C\(c + 1) has hashing table size \(n)")
            }
        }
        return state
    }
}
