import Foundation
import HerdData

/// Projection pushdown: input columns a pipeline drops before any step reads them need not be
/// parsed at all (`CSVReader.skipColumns`). The RecSys 2021 pipeline drops `text_tokens` (most of
/// the file's bytes) and `tweet_id` unread.
///
/// Usage: `reader.skipColumns = pipeline.unreadColumns(schemaNames)`, then
/// `pipeline.fit(table, absent: reader.skipColumns)` (or `fitted.apply(table, absent: …)`): the
/// steps that drop those columns skip them, and the fitted pipeline keeps every step as written,
/// so it still applies to full tables (serving).
extension Pipeline {
    /// The columns of `names` (the input's columns) that are removed by a `drop` step, or left
    /// out by a `select`, before any step names them.
    public func unreadColumns(_ names: [String]) -> Set<String> { PipelineStep.unreadColumns(steps, names) }
}

extension FittedPipeline {
    /// As `Pipeline.unreadColumns`, for the fitted steps.
    public func unreadColumns(_ names: [String]) -> Set<String> { PipelineStep.unreadColumns(steps.map(\.step), names) }
}

extension PipelineStep {
    static func unreadColumns(_ steps: [PipelineStep], _ names: [String]) -> Set<String> {
        var pending = Set(names)  // input columns no step has named yet
        var unread = Set<String>()
        for step in steps {
            switch (step.op, step.args) {
            case (.drop, .columns(let c)):
                for n in c where pending.remove(n) != nil { unread.insert(n) }
            case (.select, .columns(let c)):
                let kept = Set(c)
                for n in pending where !kept.contains(n) { unread.insert(n) }
                pending.formIntersection(kept)
            case (.rename, _):
                return unread  // NOTE: names mean other columns from here on; stop (keep the rest)
            case (.fillna, .fillna(_, nil)):
                continue  // fills each column on its own: a column dropped later is not read for others
            default:
                // NOTE: conservative: any name anywhere in the step (inputs, outputs, targets) counts
                // as read, so a column the step creates under an input's name is never skipped.
                pending.subtract(step.json.strings)
            }
            if pending.isEmpty { break }
        }
        return unread
    }

    /// The step to run on a table that lacks the `absent` columns: a `drop` without them;
    /// every other step as it is.
    func ignoring(absent: Set<String>) -> PipelineStep {
        guard op == .drop, case .columns(let c) = args, c.contains(where: absent.contains) else { return self }
        return PipelineStep(op: op, json: json, args: .columns(c.filter { !absent.contains($0) }))
    }

    init(op: Op, json: JSONValue, args: Args) {
        self.op = op
        self.json = json
        self.args = args
    }
}

extension JSONValue {
    /// Every string in the value, recursively (object keys excluded).
    var strings: [String] {
        switch self {
        case .string(let s): return [s]
        case .array(let a): return a.flatMap(\.strings)
        case .object(let o): return o.values.flatMap(\.strings)
        default: return []
        }
    }
}
