import Foundation
import HerdFeatures
import HerdServing

/// Conversions between Herd's columnar types and the wire messages of `Protos/herd/v1/table.proto`
/// and `feature.proto`. Column-major, typed: numbers travel as int64 / double, never as text.
extension Herd_V1_ColumnType {
    public init(_ type: ColumnType) {
        switch type {
        case .int64: self = .int64
        case .double: self = .double
        case .string: self = .string
        case .int64List: self = .int64List
        case .doubleList: self = .doubleList
        case .stringList: self = .stringList
        }
    }

    /// The Herd type, or nil for UNSPECIFIED / an unknown value.
    public var columnType: ColumnType? {
        switch self {
        case .int64: return .int64
        case .double: return .double
        case .string: return .string
        case .int64List: return .int64List
        case .doubleList: return .doubleList
        case .stringList: return .stringList
        default: return nil
        }
    }
}

/// A wire message that does not make a valid table or schema (→ INVALID_ARGUMENT).
struct MessageError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

extension Herd_V1_Column {
    /// The message of `column` named `name`.
    public init(name: String, _ column: Column) {
        self.init()
        self.name = name
        type = Herd_V1_ColumnType(column.type)
        if column.nullCount > 0 { nulls = (0..<column.count).map(column.isNull) }
        func fill(_ data: ColumnData) {
            switch data {
            case .int64(let v): int64Values = v
            case .double(let v): doubleValues = v
            case .string(let s): stringValues = (0..<s.count).map { s[$0] }
            case .list(let offsets, let values):
                listOffsets = offsets.map(Int64.init)
                fill(values)
            }
        }
        fill(column.data)
    }

    /// The column, checked: `rows` values (or offsets), values of the declared type only.
    public func column(rows: Int) throws -> Column {
        guard let t = type.columnType else { throw MessageError("column '\(name)': give a type (INT64, DOUBLE, STRING or a list type)") }
        if !nulls.isEmpty && nulls.count != rows {
            throw MessageError("column '\(name)': \(nulls.count) null flags for \(rows) rows")
        }
        let validity = nulls.isEmpty ? nil : Validity(nulls.map { !$0 })
        func flat(_ element: ColumnType, count: Int) throws -> ColumnData {
            let others: [(String, Int)] = [("int64_values", int64Values.count), ("double_values", doubleValues.count), ("string_values", stringValues.count)]
            let own = element == .int64 ? "int64_values" : element == .double ? "double_values" : "string_values"
            for (field, n) in others where field != own && n > 0 {
                throw MessageError("column '\(name)' is \(t) but has \(n) \(field)")
            }
            switch element {
            case .int64:
                guard int64Values.count == count else { throw MessageError("column '\(name)': \(int64Values.count) int64_values, expected \(count)") }
                return .int64(int64Values)
            case .double:
                guard doubleValues.count == count else { throw MessageError("column '\(name)': \(doubleValues.count) double_values, expected \(count)") }
                return .double(doubleValues)
            default:
                guard stringValues.count == count else { throw MessageError("column '\(name)': \(stringValues.count) string_values, expected \(count)") }
                return .string(StringData(stringValues))
            }
        }
        if let element = t.element {
            guard listOffsets.count == rows + 1, listOffsets.first == 0,
                  zip(listOffsets, listOffsets.dropFirst()).allSatisfy({ $0 <= $1 }) else {
                throw MessageError("column '\(name)': a list column needs \(rows + 1) non-decreasing list_offsets from 0, got \(listOffsets.count)")
            }
            let offsets = listOffsets.map { Int($0) }
            return Column(type: t, data: .list(offsets: offsets, values: try flat(element, count: offsets.last!)), validity: validity)
        }
        guard listOffsets.isEmpty else { throw MessageError("column '\(name)' is \(t): list_offsets are for list columns") }
        return Column(type: t, data: try flat(t, count: rows), validity: validity)
    }
}

extension Herd_V1_Table {
    public init(_ table: FeatureTable) {
        self.init()
        rows = Int64(table.rowCount)
        columns = zip(table.names, table.columns).map { Herd_V1_Column(name: $0, $1) }
    }

    /// The table, checked (see `Herd_V1_Column.column(rows:)`); at most `maxRows` rows.
    public func table(maxRows: Int) throws -> FeatureTable {
        guard rows >= 0, rows <= Int64(maxRows) else { throw MessageError("rows = \(rows): send 0…\(maxRows) rows per call") }
        var seen = Set<String>()
        for c in columns where !seen.insert(c.name).inserted { throw MessageError("column '\(c.name)' appears twice") }
        return try FeatureTable(columns.map { ($0.name, try $0.column(rows: Int(rows))) })
    }
}

extension Herd_V1_FeatureSchema {
    public init(_ schema: FeatureSchema) {
        self.init()
        keyColumn = schema.keyColumn
        fields = schema.fields.map { f in
            var c = Herd_V1_ColumnSchema()
            c.name = f.name
            c.type = Herd_V1_ColumnType(f.type)
            return c
        }
    }

    public func schema() throws -> FeatureSchema {
        let fields = try self.fields.map { f -> FeatureSchema.Field in
            guard let t = f.type.columnType else { throw MessageError("schema field '\(f.name)' has no type") }
            return FeatureSchema.Field(name: f.name, type: t)
        }
        guard fields.contains(where: { $0.name == keyColumn }) else { throw MessageError("schema: the key column '\(keyColumn)' is not a field") }
        return FeatureSchema(keyColumn: keyColumn, fields: fields)
    }
}

extension Herd_V1_FeatureRows {
    public init(_ rows: FeatureRows) throws {
        self.init()
        keyColumn = rows.schema.keyColumn
        ids = rows.ids
        found = rows.found
        table = Herd_V1_Table(try rows.table())
    }

    /// The rows against `schema` (the columns must be the schema's, in order).
    public func rows(schema: FeatureSchema) throws -> FeatureRows {
        guard found.count == ids.count else { throw MessageError("feature rows: \(found.count) found flags for \(ids.count) ids") }
        let t = try table.table(maxRows: Int.max / 2)
        guard t.rowCount == ids.count else { throw MessageError("feature rows: \(t.rowCount) rows for \(ids.count) ids") }
        guard t.names == schema.fields.map(\.name), keyColumn == schema.keyColumn else {
            throw MessageError("feature rows: columns \(t.names) keyed by \(keyColumn), expected \(schema.fields.map(\.name)) keyed by \(schema.keyColumn)")
        }
        let rows: [[Value]?] = (0..<ids.count).map { r in found[r] ? t.row(r) : nil }
        return FeatureRows(schema: schema, ids: ids, rows: rows)
    }
}
