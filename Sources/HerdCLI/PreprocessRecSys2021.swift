import ArgumentParser
import Foundation
import HerdData
import HerdFeatures
import HerdTraining

/// `herd preprocess recsys2021 [--workspace W] [--freq-limit N] [--cross-buckets B] [--on-error skip] [--json]`
///
/// Friesian's `wnd_preprocess_recsys.py` on a workspace: reads `W/data/{train,test}.txt` (with
/// `W/data/schema.json`, or the challenge layout when it is absent), fits the built-in pipeline
/// (`RecSys2021Features.pipelineJSON`, readable copy `examples/recsys2021/pipeline.json`) on the
/// training rows, applies it to the test rows and writes `W/features/`: `train.herdtable`,
/// `test.herdtable`, `user.herdtable`, `item.herdtable`, `pipeline.fitted.json` and `sizes.json`.
struct PreprocessRecSys2021: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recsys2021",
        abstract: "Friesian's RecSys 2021 preprocessing: WORKSPACE/data/{train,test}.txt → WORKSPACE/features (train/test/user/item tables, fitted pipeline, sizes).",
        discussion: """
            label = any engagement (plus reply/retweet/retweet_with_comment/like flags); present_media and tweet_type \
            through fixed maps; language and tweet_id categorified; one user-id index shared by engaged_with_user_id and \
            enaging_user_id; hashtags, present_domains, present_links categorified element by element, keeping each row's \
            most frequent known one; the four follower/following counts binned at 1, 1e2 ... 1e7; present_media x language \
            hashed into present_media_language; the three list lengths min-max scaled. Ids start at 1, 0 = unknown. \
            user.herdtable holds one row per known engaging user (key enaging_user_id) and item.herdtable one row per known \
            tweet (key tweet_id), each from the key's latest row by tweet_timestamp over train + test, with the same column \
            names and encodings as train.herdtable. Users and tweets whose id is not in the training index (id 0) get a \
            row key (enaging_user_id_key / tweet_id_key columns of train and test: the id where known, else a fresh id \
            from the index size up, one per raw id) and one row each in user_unseen.herdtable / item_unseen.herdtable, \
            so `herd predict` embeds them from their other features. sizes.json maps every categorical column to its cardinality.
            """)

    @Option(help: "Workspace directory: reads WORKSPACE/data (written by `herd generate recsys2021 --workspace W`), writes WORKSPACE/features.")
    var workspace: String = Workspace.defaultPath

    @Option(help: "Keep user ids, hashtags, domains and links seen at least N times in the training rows (rarer ones share id 0). Default: the pipeline's 2; Friesian keeps every value (1).")
    var freqLimit: Int?

    @Option(help: "Hash buckets of the present_media x language cross (default: the pipeline's 600).")
    var crossBuckets: Int?

    @Option(help: "What to do with a malformed row: fail (default, naming file:line) or skip and count.")
    var onError: OnError = .fail

    @Flag(help: "Print one JSON summary object as the last line (the summary lines go to stderr).")
    var json = false

    func validate() throws {
        if let freqLimit, freqLimit < 1 { throw ValidationError("--freq-limit must be >= 1, got \(freqLimit)") }
        if let crossBuckets, crossBuckets < 1 { throw ValidationError("--cross-buckets must be >= 1, got \(crossBuckets)") }
    }

    func run() throws {
        let ws = Workspace(path: workspace)
        let trainFile = ws.data.appendingPathComponent("train.txt"), testFile = ws.data.appendingPathComponent("test.txt")
        let generate = "herd generate recsys2021 --workspace \(workspace)"
        try ws.require(trainFile, writtenBy: generate)
        try ws.require(testFile, writtenBy: generate)
        let schemaFile = ws.data.appendingPathComponent("schema.json")
        let hasSchema = FileManager.default.fileExists(atPath: schemaFile.path)
        let schema = hasSchema ? try CSVSchema.load(path: schemaFile.path) : try RecSys2021Features.builtInSchema()
        let pipeline = try RecSys2021Features.pipeline(freqLimit: freqLimit, crossBuckets: crossBuckets)
        let progress = { (s: String) in FileHandle.standardError.write(Data((s + "\n").utf8)) }
        let log = { (s: String) in if json { progress(s) } else { print(s) } }

        let t0 = Date()
        let reader = CSVReader(schema: schema, onError: onError)
        progress("reading \(trainFile.path) (\(hasSchema ? "schema \(schemaFile.path)" : "built-in RecSys 2021 layout"))")
        let (rawTrain, trainSummary) = try reader.read(path: trainFile.path)
        progress("reading \(testFile.path)")
        let (rawTest, testSummary) = try reader.read(path: testFile.path)
        let t1 = Date()
        progress("fitting the pipeline on \(rawTrain.rowCount) training rows, applying it to \(rawTest.rowCount) test rows, building the user and item tables")
        let f = try RecSys2021Features.preprocess(train: rawTrain, test: rawTest, pipeline: pipeline)
        let t2 = Date()
        progress("writing \(ws.features.path)")
        try ws.create()
        let tables = [("train", f.train), ("test", f.test), ("user", f.users), ("item", f.items),
                      ("user_unseen", f.unseenUsers), ("item_unseen", f.unseenItems)]
        for (name, table) in tables { try TableFile.write(table, to: ws.table(name).path, durable: false) }  // NOTE: a rerun recreates them
        try f.fitted.save(path: ws.fittedPipeline.path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        _ = try AtomicFile.write(try encoder.encode(f.sizes), to: ws.sizes)
        let t3 = Date()

        let seconds = t3.timeIntervalSince(t0)
        let rows = f.train.rowCount + f.test.rowCount
        let rowsPerSecond = Double(rows) / max(seconds, 1e-9)
        let outputs = tables.map { ws.table($0.0).path } + [ws.fittedPipeline.path, ws.sizes.path]
        for s in trainSummary.skippedSamples + testSummary.skippedSamples { log("skipped \(s)") }
        let skipped = trainSummary.skippedRows + testSummary.skippedRows
        log("train \(f.train.rowCount) rows, test \(f.test.rowCount) rows\(skipped > 0 ? " (\(trainSummary.skippedRows) + \(testSummary.skippedRows) malformed rows skipped)" : ""), \(f.train.columnCount) columns")
        log("user table \(f.users.rowCount) rows (key \(RecSys2021Features.userKey)), item table \(f.items.rowCount) rows (key \(RecSys2021Features.itemKey))")
        log("unseen in training (id out of vocabulary): \(f.unseenUsers.rowCount) users, \(f.unseenItems.rowCount) items "
            + "(user_unseen/item_unseen tables, keyed by \(RecSys2021Features.rowKey(of: RecSys2021Features.userKey)) / \(RecSys2021Features.rowKey(of: RecSys2021Features.itemKey)))")
        log("sizes " + f.sizes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        log(String(format: "read %.2f s, fit+apply+tables %.2f s, write %.2f s; %.0f rows/s", t1.timeIntervalSince(t0), t2.timeIntervalSince(t1),
                   t3.timeIntervalSince(t2), rowsPerSecond))
        log("wrote " + outputs.joined(separator: ", "))
        if json {
            let d: [String: Any] = [
                "rows_train": f.train.rowCount, "rows_test": f.test.rowCount,
                "skipped_rows_train": trainSummary.skippedRows, "skipped_rows_test": testSummary.skippedRows,
                "users": f.users.rowCount, "items": f.items.rowCount, "sizes": f.sizes,
                "users_unseen": f.unseenUsers.rowCount, "items_unseen": f.unseenItems.rowCount, "columns": f.train.names,
                "read_s": t1.timeIntervalSince(t0), "transform_s": t2.timeIntervalSince(t1), "write_s": t3.timeIntervalSince(t2),
                "seconds": seconds, "rows_per_s": rowsPerSecond, "outputs": outputs,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: d, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
        }
    }
}
