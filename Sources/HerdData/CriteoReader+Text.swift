extension CriteoReader {
    /// Parses Criteo rows held in memory (the same rules as files; `source` names the text in
    /// error messages, with 1-based line numbers). Used by tests and `herd predict`.
    public static func parse(
        text: String, format: CriteoFormat = .auto, onError: OnError = .fail, source: String = "<input>"
    ) throws -> (rows: RawChunk, summary: ReadSummary) {
        var bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw HerdDataError.emptyFile(path: source) }
        return try bytes.withUnsafeMutableBytes { buffer in
            let all = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[(hasByteOrderMark(UnsafeRawBufferPointer(buffer)) ? 3 : 0)...])
            let firstLineLength = all.firstIndex(of: 10) ?? all.count
            let resolved = format.resolved(firstLine: UnsafeRawBufferPointer(rebasing: all[0..<firstLineLength]))
            let parsed = CriteoParser(format: resolved, onError: onError).parse(all, skipFirstLine: resolved.hasHeader!)
            let errors = parsed.errors.map { RowError(file: source, line: $0.line + 1, reason: $0.reason) }
            if onError == .fail, let first = errors.first { throw HerdDataError.malformedRow(first) }
            if parsed.rows.count == 0 { throw HerdDataError.noRows(path: source, skippedRows: parsed.skipped) }
            let summary = ReadSummary(
                format: resolved, rows: parsed.rows.count, skippedRows: parsed.skipped, lines: parsed.lines,
                skippedSamples: errors)
            return (parsed.rows, summary)
        }
    }
}
