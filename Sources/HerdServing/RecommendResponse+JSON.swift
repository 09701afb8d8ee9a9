import Foundation

extension RecommendResponse {
    /// The same bytes as `JSONEncoder` with `[.sortedKeys, .withoutEscapingSlashes]` gives
    /// (`encoderData()`), written directly: one line, keys sorted, nil members as `null`. Throws,
    /// like `JSONEncoder`, for a non-finite prob or timing.
    ///
    /// NOTE: this runs for every recommend answer; the Codable encoder's boxing and key sorting
    /// were ≈ 4 % of a canK-50 request (tests check both give the same bytes).
    public func jsonData() throws -> Data { Data(try jsonBytes()) }

    /// `jsonData()`'s bytes as an array (the HTTP answer copies them into its buffer once).
    public func jsonBytes() throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + 24 * ids.count + 200)
        func string(_ s: String?) {
            guard let s else { return raw("null") }
            out.append(UInt8(ascii: "\""))
            for b in s.utf8 {
                switch b {
                case UInt8(ascii: "\""): raw("\\\"")
                case UInt8(ascii: "\\"): raw("\\\\")
                case 0x0A: raw("\\n")
                case 0x0D: raw("\\r")
                case 0x09: raw("\\t")
                case 0x08: raw("\\b")
                case 0x0C: raw("\\f")
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    raw("\\u00")
                    out.append(hex[Int(b >> 4)])
                    out.append(hex[Int(b & 0xF)])
                default: out.append(b)
                }
            }
            out.append(UInt8(ascii: "\""))
        }
        func raw(_ s: String) { out.append(contentsOf: s.utf8) }
        func key(_ k: String, first: Bool = false) {
            if !first { out.append(UInt8(ascii: ",")) }
            string(k)
            out.append(UInt8(ascii: ":"))
        }
        func number<F: BinaryFloatingPoint & LosslessStringConvertible>(_ x: F, _ what: String) throws {
            guard x.isFinite else {
                throw EncodingError.invalidValue(x, EncodingError.Context(codingPath: [], debugDescription: "\(what): \(x) is not valid JSON"))
            }
            // NOTE: JSONEncoder writes integral values without a fraction ("1", not "1.0").
            var s = x.description
            if s.hasSuffix(".0") { s.removeLast(2) }
            raw(s)
        }
        out.append(UInt8(ascii: "{"))
        key("coldStart", first: true); raw(coldStart ? "true" : "false")
        key("degraded"); raw(degraded ? "true" : "false")
        key("errorCode"); string(errorCode)
        key("errorMsg"); string(errorMsg)
        key("ids")
        out.append(UInt8(ascii: "["))
        for (i, id) in ids.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            raw(String(id))
        }
        out.append(UInt8(ascii: "]"))
        key("probs")
        out.append(UInt8(ascii: "["))
        for (i, p) in probs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            try number(p, "probs[\(i)]")
        }
        out.append(UInt8(ascii: "]"))
        key("reason"); string(reason)
        key("source"); string(source)
        key("success"); raw(success ? "true" : "false")
        key("timingsMs")
        if let timingsMs {
            out.append(UInt8(ascii: "{"))
            // NOTE: the stage names are known: their sorted order is computed once, not per answer.
            let names = timingsMs.count == Self.sortedStageNames.count && Self.sortedStageNames.allSatisfy { timingsMs[$0] != nil }
                ? Self.sortedStageNames : timingsMs.keys.sorted()
            for (i, name) in names.enumerated() {
                key(name, first: i == 0)
                try number(timingsMs[name]!, "timingsMs.\(name)")
            }
            out.append(UInt8(ascii: "}"))
        } else {
            raw("null")
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// `StageTimings.names` sorted (the members of `timingsMs` in key order).
    static let sortedStageNames = StageTimings.names.sorted()

    /// The answer through `JSONEncoder` (sorted keys, slashes unescaped): the reference for
    /// `jsonData()`.
    public func encoderData() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try e.encode(self)
    }
}
