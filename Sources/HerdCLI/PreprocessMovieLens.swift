import ArgumentParser
import Foundation
import HerdData
import HerdFeatures
import HerdTraining

/// `herd preprocess movielens --input DIR [--workspace W] [--json]`
///
/// Reads MovieLens-100k in either layout (GroupLens `u.data`/`u.user`/`u.item`, or RecBole
/// `NAME.inter`/`.user`/`.item`), labels ratings ≥ 4 as positives, holds out each user's latest
/// interaction (leave-last-out by time), fits the feature pipeline
/// (`examples/movielens/pipeline.json`) on the training rows and writes the workspace's features:
/// `W/features/{train,test,user,item}.herdtable`, `pipeline.fitted.json` and `sizes.json`.
public struct PreprocessMovieLens: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "movielens",
        abstract: "Turn MovieLens-100k (GroupLens or RecBole layout) into the workspace's train/test/user/item feature tables.",
        discussion: """
            label = rating >= 4; test = each user's latest rating (ties: the later line); ids categorified from 1 \
            (0 = unknown) on the training rows; gender, occupation, zip prefix (2 characters) and genres (a list) \
            categorified; age and release year binned. user.herdtable / item.herdtable hold one row per user / item \
            seen in training, keyed by the encoded user_id / item_id, with that side's feature columns.
            """)

    @Option(help: "Directory holding u.data, u.user, u.item (GroupLens ml-100k) or NAME.inter, NAME.user, NAME.item (RecBole).")
    var input: String

    @Option(help: "Workspace directory; the outputs go to WORKSPACE/features/.")
    var workspace: String = Workspace.defaultPath

    @Flag(help: "Print one JSON summary object as the last line (other output goes to stderr).")
    var json = false

    public init() {}

    public func run() throws {
        let t0 = Date()
        let data = try MovieLens.read(directory: input)
        let t1 = Date()
        let features = try MovieLens.preprocess(data)
        let t2 = Date()
        let ws = Workspace(path: workspace)
        try ws.create()
        let tables = [("train", features.train), ("test", features.test), ("user", features.users), ("item", features.items)]
        for (name, table) in tables { try TableFile.write(table, to: ws.table(name).path) }
        try features.fitted.save(path: ws.fittedPipeline.path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        _ = try AtomicFile.write(try encoder.encode(features.sizes), to: ws.sizes)
        let t3 = Date()

        let labels = try features.test.column("label").int64Values ?? []
        let testPositives = labels.filter { $0 == 1 }.count
        let outputs = tables.map { ws.table($0.0).path } + [ws.fittedPipeline.path, ws.sizes.path]
        let log = { (s: String) in
            if json { FileHandle.standardError.write(Data((s + "\n").utf8)) } else { print(s) }
        }
        log("read \(data.layout.rawValue) layout from \(input): \(data.interactions.rowCount) ratings, \(data.users.rowCount) users, \(data.items.rowCount) items")
        log("train \(features.train.rowCount) rows, test \(features.test.rowCount) rows (\(testPositives) positive = retrieval test users)")
        log("user table \(features.users.rowCount) rows, item table \(features.items.rowCount) rows (\(features.unknownUsers) users, \(features.unknownItems) items never rated in training left out)")
        log("sizes " + features.sizes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        log(String(format: "read %.2f s, split+fit+encode %.2f s, write %.2f s", t1.timeIntervalSince(t0), t2.timeIntervalSince(t1), t3.timeIntervalSince(t2)))
        log("wrote " + outputs.joined(separator: ", "))
        if json {
            let d: [String: Any] = [
                "layout": data.layout.rawValue, "ratings": data.interactions.rowCount, "users": data.users.rowCount, "items": data.items.rowCount,
                "train_rows": features.train.rowCount, "test_rows": features.test.rowCount, "test_positives": testPositives,
                "user_rows": features.users.rowCount, "item_rows": features.items.rowCount, "sizes": features.sizes, "outputs": outputs,
                "seconds": t3.timeIntervalSince(t0),
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: d, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
        }
    }
}
