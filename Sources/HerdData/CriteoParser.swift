import Foundation
import HerdTensor

/// A malformed row found inside one chunk: `line` counts from 0 at the chunk's first line; the
/// reader adds the chunk's first line number to make it file-global.
struct LocalRowError: Sendable {
    var line: Int
    var reason: String
}

/// The result of parsing one chunk of whole lines.
struct ParsedChunk: Sendable {
    var rows: RawChunk
    /// Lines in the chunk (including blank, skipped and header lines).
    var lines: Int
    /// Malformed rows skipped (`OnError.skip`).
    var skipped: Int
    /// Under `.fail`, the first malformed row (parsing stopped there); under `.skip`, the first few.
    var errors: [LocalRowError]
}

/// Parses Criteo rows straight from bytes (no per-field `String`s on the hot path).
///
/// A line is split at `format.delimiter`; a trailing `\r` is dropped; an empty line is ignored
/// (NOTE: tolerated so that hand-edited files with a blank last line load; it still counts for
/// line numbers). Dense fields accept an optional sign, digits and an optional decimal fraction
/// (`260.0`); categorical fields accept 1–8 hex digits in either case.
struct CriteoParser: Sendable {
    /// Skip-mode error samples kept per chunk.
    static let sampleLimit = 5

    let delimiter: UInt8
    let labelled: Bool
    let onError: OnError

    init(format: CriteoFormat, onError: OnError) {
        precondition(format.delimiter != nil && format.labelled != nil, "format must be resolved")
        delimiter = format.delimiter!.byte
        labelled = format.labelled!
        self.onError = onError
    }

    var fieldCount: Int { labelled ? Criteo.labelledFieldCount : Criteo.labelledFieldCount - 1 }

    /// Parses every line of `bytes` (the last line may lack its newline). `skipFirstLine` drops a
    /// header.
    func parse(_ bytes: UnsafeRawBufferPointer, skipFirstLine: Bool) -> ParsedChunk {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else {
            return ParsedChunk(rows: .empty(labelled: labelled), lines: 0, skipped: 0, errors: [])
        }
        let end = base + bytes.count
        // Upper bound on rows: newlines + 1, found with memchr-speed scanning.
        var maxRows = 1
        var scan = UnsafeRawPointer(base)
        while let nl = memchrPointer(scan, end) {
            maxRows += 1
            scan = nl + 1
        }
        var labels = [Float](repeating: 0, count: labelled ? maxRows : 0)
        var dense = [Float](repeating: 0, count: maxRows * Criteo.denseCount)
        var cats = [UInt64](repeating: 0, count: maxRows * Criteo.sparseCount)
        var rows = 0, lines = 0, skipped = 0
        var errors: [LocalRowError] = []

        labels.withUnsafeMutableBufferPointer { labelOut in
            dense.withUnsafeMutableBufferPointer { denseOut in
                cats.withUnsafeMutableBufferPointer { catOut in
                    var p = base
                    while p < end {
                        let nl = memchrPointer(UnsafeRawPointer(p), end)
                        let lineEnd = nl.map { $0.assumingMemoryBound(to: UInt8.self) } ?? end
                        let line = lines
                        lines += 1
                        var e = lineEnd
                        if e > p && e[-1] == 13 { e -= 1 }
                        let isHeader = skipFirstLine && line == 0
                        if !isHeader && e > p {
                            let reason = parseRow(
                                p, e, label: labelled ? labelOut.baseAddress! + rows : nil,
                                dense: denseOut.baseAddress! + rows * Criteo.denseCount,
                                cats: catOut.baseAddress! + rows * Criteo.sparseCount)
                            if let reason {
                                if onError == .fail {
                                    errors.append(LocalRowError(line: line, reason: reason))
                                    return
                                }
                                skipped += 1
                                if errors.count < Self.sampleLimit {
                                    errors.append(LocalRowError(line: line, reason: reason))
                                }
                            } else {
                                rows += 1
                            }
                        }
                        p = lineEnd + 1
                    }
                }
            }
        }
        if labelled { labels.removeLast(maxRows - rows) }
        dense.removeLast((maxRows - rows) * Criteo.denseCount)
        cats.removeLast((maxRows - rows) * Criteo.sparseCount)
        let raw = RawChunk(labels: labels, dense: dense, categorical: cats, labelled: labelled)
        return ParsedChunk(rows: raw, lines: lines, skipped: skipped, errors: errors)
    }

    /// Parses one line `[start, end)` (no newline) into the outputs; returns the reason when the
    /// row is malformed. Field-count errors take precedence over value errors.
    ///
    /// NOTE: each field is parsed in the same pass that looks for its delimiter.
    @inline(__always)
    private func parseRow(
        _ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>,
        label: UnsafeMutablePointer<Float>?, dense: UnsafeMutablePointer<Float>,
        cats: UnsafeMutablePointer<UInt64>
    ) -> String? {
        let expected = fieldCount
        let firstDense = labelled ? 1 : 0
        let firstCat = firstDense + Criteo.denseCount
        var field = 0
        var p = start
        var valueError: String?
        while true {
            var q = p
            if field >= expected || valueError != nil {
                while q < end && q.pointee != delimiter { q += 1 }
            } else if field >= firstCat, end - p > 8, p[8] == delimiter,
                      let value = Self.hex8(UnsafeRawPointer(p).loadUnaligned(as: UInt64.self)) {
                // NOTE: the common case (8 hex digits, then a delimiter) is decoded 8 bytes at a
                // time; any other field takes the byte loop below, which also finds errors.
                cats[field - firstCat] = UInt64(value)
                q = p + 8
            } else if field >= firstCat {
                var value: UInt64 = 0
                var valid = true
                while q < end {
                    let c = q.pointee
                    if c == delimiter { break }
                    let digit = c &- 48
                    let letter = (c | 0x20) &- 97
                    if digit < 10 {
                        value = value << 4 | UInt64(digit)
                    } else if letter < 6 {
                        value = value << 4 | UInt64(letter + 10)
                    } else {
                        valid = false
                    }
                    q += 1
                }
                let n = q - p
                if valid && n <= 8 {
                    cats[field - firstCat] = n == 0 ? RawChunk.missing : value
                } else {
                    valueError = "\(Criteo.columnNames[field - firstCat + 14]): expected a hex id of up to 8 digits, found '\(excerpt(p, q))'"
                }
            } else if field >= firstDense {
                if let v = scanNumber(p, end, &q) {
                    dense[field - firstDense] = v
                } else {
                    while q < end && q.pointee != delimiter { q += 1 }
                    valueError = "\(Criteo.columnNames[field - firstDense + 1]): expected an integer, found '\(excerpt(p, q))'"
                }
            } else {
                while q < end && q.pointee != delimiter { q += 1 }
                if q - p == 1 && (p.pointee == 48 || p.pointee == 49) {
                    label!.pointee = p.pointee == 49 ? 1 : 0
                } else {
                    valueError = q == p ? "label is empty" : "label must be 0 or 1, found '\(excerpt(p, q))'"
                }
            }
            field += 1
            if q >= end { break }
            p = q + 1
        }
        if field != expected { return "expected \(expected) fields, found \(field)" }
        return valueError
    }

    /// The value of 8 hex digits (either case) loaded little-endian from memory (first digit in
    /// the lowest byte), or nil when any byte is not a hex digit. SWAR: every byte is classified
    /// and converted at once.
    @inline(__always)
    static func hex8(_ w: UInt64) -> UInt32? {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high = ones &* 0x80
        // Bytes ≥ 0x80 are never digits; below that, adding (0x80 - bound) to a byte sets its
        // top bit iff byte ≥ bound, with no carry into the next byte.
        guard w & high == 0 else { return nil }
        let digit = (w &+ ones &* (0x80 - 0x30)) & ~(w &+ ones &* (0x80 - 0x3A))
        let t = w | (ones &* 0x20)  // letters to lower case (only A-F land on a-f)
        let letter = (t &+ ones &* (0x80 - 0x61)) & ~(t &+ ones &* (0x80 - 0x67))
        guard (digit | letter) & high == high else { return nil }
        // Nibble per byte: low 4 bits, plus 9 for letters (bit 6 set).
        let nibbles = (w & (ones &* 0x0F)) &+ ((w >> 6) & ones) &* 9
        // Pack the 8 nibbles, first digit most significant.
        let bytes = ((nibbles << 4) | (nibbles >> 8)) & 0x00FF_00FF_00FF_00FF
        let words = ((bytes << 8) | (bytes >> 16)) & 0x0000_FFFF_0000_FFFF
        return UInt32(truncatingIfNeeded: (words << 16) | (words >> 32))
    }

    /// Parses a dense field starting at `p`, leaving `q` at the delimiter (or line end) on
    /// success: empty → `nan`; `[+-]digits[.digits]` (or `[+-].digits`) → value. Returns nil (with
    /// `q` somewhere inside the field) when the field is not a number.
    @inline(__always)
    private func scanNumber(_ p: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, _ q: inout UnsafePointer<UInt8>) -> Float? {
        var r = p
        if r == end || r.pointee == delimiter {
            q = r
            return .nan
        }
        var negative = false
        if r.pointee == 45 || r.pointee == 43 {
            negative = r.pointee == 45
            r += 1
        }
        var whole: UInt64 = 0
        var digits = 0
        while r < end, r.pointee &- 48 < 10 {
            // NOTE: saturate instead of trapping; counts beyond 1e18 do not occur and log1p
            // flattens them anyway.
            whole = whole < 1_000_000_000_000_000_000 ? whole &* 10 &+ UInt64(r.pointee &- 48) : whole
            r += 1
            digits += 1
        }
        var value = Double(whole)
        if r < end && r.pointee == 46 {
            r += 1
            var scale = 0.1
            while r < end, r.pointee &- 48 < 10 {
                value += Double(r.pointee &- 48) * scale
                scale *= 0.1
                r += 1
                digits += 1
            }
        }
        q = r
        guard digits > 0, r == end || r.pointee == delimiter else { return nil }
        return Float(negative ? -value : value)
    }

    /// The field as printable text for an error message (at most 24 bytes).
    private func excerpt(_ p: UnsafePointer<UInt8>, _ q: UnsafePointer<UInt8>) -> String {
        let n = min(q - p, 24)
        let text = String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
        return n < q - p ? text + "…" : text
    }
}

/// The first `\n` in `[from, end)`, or nil.
@inline(__always)
func memchrPointer(_ from: UnsafeRawPointer, _ end: UnsafePointer<UInt8>) -> UnsafeRawPointer? {
    let n = UnsafeRawPointer(end) - from
    guard n > 0, let hit = memchr(from, 10, n) else { return nil }
    return UnsafeRawPointer(hit)
}
