import Foundation
import HerdData

/// Writes a table as delimited text: a header line, then one line per row; null = empty field;
/// list elements joined by `listSeparator`; doubles in Swift's shortest round-trip form (so a
/// read back gives the same bits).
///
/// Without `quote` (the default, like the reader) values are written verbatim, so a value
/// containing the separator or a newline would not read back. With `quote` (e.g. `"`), a string
/// or list field containing the separator, the quote, `\r` or `\n` — or an empty string — is
/// quoted with inner quotes doubled, which `CSVReader(quote:)` reads back (newlines excepted).
/// A null list and an empty list both write as an empty field.
public enum CSVWriter {
    public static func write(
        _ table: FeatureTable, to path: String, separator: UInt8 = UInt8(ascii: ","), listSeparator: UInt8 = UInt8(ascii: "|"),
        quote: UInt8? = nil
    ) throws {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        out += table.names.joined(separator: String(UnicodeScalar(separator))).utf8
        out.append(10)
        let tmp = path + ".tmp-\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: nil), let handle = FileHandle(forWritingAtPath: tmp) else {
            throw HerdDataError.io(path: path, message: "cannot create file")
        }
        func flush() throws {
            do { try handle.write(contentsOf: out) } catch {
                throw HerdDataError.io(path: path, message: "write failed: \(error.localizedDescription)")
            }
            out.removeAll(keepingCapacity: true)
        }
        var field: [UInt8] = []
        do {
            for r in 0..<table.rowCount {
                for (c, column) in table.columns.enumerated() {
                    if c > 0 { out.append(separator) }
                    if column.isNull(r) { continue }
                    guard let quote, !column.type.isNumeric else {
                        appendValue(column.data, r, listSeparator, &out)
                        continue
                    }
                    field.removeAll(keepingCapacity: true)
                    appendValue(column.data, r, listSeparator, &field)
                    let needs = (field.isEmpty && column.type == .string)
                        || field.contains { $0 == separator || $0 == quote || $0 == 10 || $0 == 13 }
                    if !needs {
                        out += field
                        continue
                    }
                    out.append(quote)
                    for b in field {
                        out.append(b)
                        if b == quote { out.append(quote) }
                    }
                    out.append(quote)
                }
                out.append(10)
                if out.count > 1 << 20 { try flush() }
            }
            try flush()
            try handle.close()
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw error
        }
        guard rename(tmp, path) == 0 else { throw HerdDataError.io(path: path, message: String(cString: strerror(errno))) }
    }

    static func appendValue(_ data: ColumnData, _ i: Int, _ listSeparator: UInt8, _ out: inout [UInt8]) {
        switch data {
        case .int64(let v): out += String(v[i]).utf8
        case .double(let v): out += String(v[i]).utf8
        case .string(let s): out += s.bytes[s.offsets[i]..<s.offsets[i + 1]]
        case .list(let o, let inner):
            for e in o[i]..<o[i + 1] {
                if e > o[i] { out.append(listSeparator) }
                appendValue(inner, e, listSeparator, &out)
            }
        }
    }
}
