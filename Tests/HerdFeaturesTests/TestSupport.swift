import Foundation
@testable import HerdFeatures

/// A fresh temporary directory per test, removed at the end.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("herd-features-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ name: String, _ text: String) throws -> String {
        let file = self.file(name)
        try text.write(toFile: file, atomically: false, encoding: .utf8)
        return file
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
}

/// A small table: ids with a tie, a null, a list column.
func sampleTable() throws -> FeatureTable {
    try FeatureTable([
        ("user", Column(strings: ["a", "b", "a", nil, "c", "b"])),
        ("count", Column(int64s: [3, nil, -2, 10, 0, 7])),
        ("score", Column(doubles: [0.5, 1.5, nil, -1, 2, 4])),
        ("tags", Column(stringLists: [["x", "y"], [], nil, ["y"], ["z", "y", "x"], ["y"]])),
    ])
}
