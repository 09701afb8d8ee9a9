import Foundation
import XCTest

/// A fresh temporary directory per test, removed at the end.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("herd-data-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `text` to `name` inside the directory and returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = (path as NSString).appendingPathComponent(name)
        try text.write(toFile: file, atomically: false, encoding: .utf8)
        return file
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// A labelled TSV row from its parts (13 dense, 26 categorical strings).
func tsvRow(label: String, dense: [String], cats: [String], separator: String = "\t") -> String {
    ([label] + dense + cats).joined(separator: separator)
}

/// A well-formed row: dense `I_j = row + j`, categoricals `C_c = hex(row * 100 + c)`.
func sampleRow(_ row: Int, separator: String = "\t") -> String {
    let dense = (0..<13).map { String(row + $0) }
    let cats = (0..<26).map { String(format: "%08x", row * 100 + $0) }
    return tsvRow(label: row % 3 == 0 ? "1" : "0", dense: dense, cats: cats, separator: separator)
}

/// `n` sample rows with a trailing newline.
func sampleText(rows n: Int, separator: String = "\t") -> String {
    (0..<n).map { sampleRow($0, separator: separator) }.joined(separator: "\n") + "\n"
}

let criteoHeader = (["label"] + (1...13).map { "I\($0)" } + (1...26).map { "C\($0)" }).joined(separator: ",")
