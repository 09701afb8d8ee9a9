import ArgumentParser
import HerdData
import Foundation

/// Settings from a `--config` JSON file: an object whose keys are flag names without the leading
/// dashes. Flags given on the command line take precedence (callers write `flag ?? settings.x`).
struct Settings {
    let values: [String: Any]
    let path: String?

    init(file: String?) throws {
        path = file
        guard let file else { values = [:]; return }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("--config \(file): no such file")
        }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ValidationError("--config \(file): not a JSON object (expected e.g. {\"epochs\": 2, \"batch-size\": 4096})")
        }
        values = obj
    }

    /// Refuses keys that are not in `known`, so that a misspelt setting is not silently ignored.
    func rejectUnknownKeys(_ known: Set<String>) throws {
        let unknown = values.keys.filter { !known.contains($0) }.sorted()
        guard !unknown.isEmpty else { return }
        let hints = unknown.compactMap { key -> String? in
            let dashed = key.replacingOccurrences(of: "_", with: "-").lowercased()
            return dashed != key && known.contains(dashed) ? "\"\(dashed)\"" : nil
        }
        throw ValidationError(
            "--config \(path ?? ""): unknown setting\(unknown.count > 1 ? "s" : "") \(unknown.map { "\"\($0)\"" }.joined(separator: ", "))"
                + (hints.isEmpty ? "" : " (did you mean \(hints.joined(separator: ", "))?)")
                + "; the keys are the flag names without dashes: \(known.sorted().joined(separator: ", "))")
    }

    private func bad(_ key: String, _ what: String) -> ValidationError {
        ValidationError("--config \(path ?? ""): \"\(key)\" must be \(what)")
    }

    func int(_ key: String) throws -> Int? {
        guard let v = values[key] else { return nil }
        if let n = v as? NSNumber, Double(n.intValue) == n.doubleValue { return n.intValue }
        throw bad(key, "an integer")
    }
    func uint64(_ key: String) throws -> UInt64? { try int(key).map { UInt64(max($0, 0)) } }
    func double(_ key: String) throws -> Double? {
        guard let v = values[key] else { return nil }
        if let n = v as? NSNumber { return n.doubleValue }
        throw bad(key, "a number")
    }
    func string(_ key: String) throws -> String? {
        guard let v = values[key] else { return nil }
        if let s = v as? String { return s }
        throw bad(key, "a string")
    }
    func bool(_ key: String) throws -> Bool? {
        guard let v = values[key] else { return nil }
        if let b = v as? Bool { return b }
        throw bad(key, "true or false")
    }
    func enumValue<T: RawRepresentable>(_ key: String) throws -> T? where T.RawValue == String {
        guard let s = try string(key) else { return nil }
        guard let v = T(rawValue: s) else { throw bad(key, "a valid choice, not '\(s)'") }
        return v
    }
}


extension HerdData.OnError: ExpressibleByArgument {}
