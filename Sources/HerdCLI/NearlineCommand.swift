import ArgumentParser
import Foundation
import HerdServing
import HerdTraining

/// `herd nearline`: loads the workspace's user/item features into a feature store and the item
/// embeddings into an ANN index, for online serving.
struct NearlineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nearline",
        abstract: "Load W/features/{user,item}.herdtable into a feature store and W/embeddings/item.safetensors into an ANN index (W/serving/item.index).",
        discussion: """
            Re-running updates in place: rows are upserted, and the saved index gets the new and changed \
            vectors (it is rebuilt only when --index asks for another kind or the dimension changed). \
            Writes W/serving/nearline.json with what was loaded.
            """)

    @Option(help: "Workspace directory (written by herd preprocess / train / predict).") var workspace = Workspace.defaultPath
    @Option(help: "Redis feature store, redis://host:port[/prefix][?pool=N&timeout_ms=MS] or unix:///path/redis.sock[?prefix=P&…]; default: the embedded store in W/serving/features.store.")
    var redis: String?
    @Option(help: "ANN index spec: Flat | IVF<lists>,Flat[,nprobe=N] | HNSW<M>[,efSearch=N][,efConstruction=N]. Default: keep the saved index's kind, else \(Nearline.defaultIndex).")
    var index: String?
    @Option(help: "Similarity: ip (inner product; two-tower embeddings) or l2.") var metric = "ip"
    @Option(help: "Key column of user.herdtable when user.safetensors has no key_column metadata (enaging_user_id for RecSys, user_id for MovieLens).")
    var userKey: String?
    @Option(help: "Key column of item.herdtable when item.safetensors has no key_column metadata (tweet_id, movie_id).")
    var itemKey: String?
    @Flag(help: "Print one JSON object as the last line (progress goes to stderr).") var json = false

    func run() async throws {
        if let redis, !RedisConfig.isRedisURL(redis) {
            throw ValidationError("--redis takes a URL like redis://127.0.0.1:6379 or unix:///run/redis.sock, got '\(redis)'")
        }
        var config = NearlineConfig(workspace: Workspace(path: workspace))
        config.store = redis
        config.index = index
        config.userKey = userKey
        config.itemKey = itemKey
        config.metric = try ANNMetric(parsing: metric)
        let toStderr = json
        // NOTE: errors (ServingError, TrainingError) carry their own message; ArgumentParser prints
        // it as `Error: …` without a usage dump.
        let summary = try Nearline.run(config) { line in
            if toStderr { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
        }
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            print(String(decoding: try e.encode(summary), as: UTF8.self))
        } else {
            print("nearline: \(summary.users) users, \(summary.items) items → \(summary.store); \(summary.indexCount) vectors in \(summary.indexPath) (\(summary.indexSpec)) in \(String(format: "%.1f", summary.seconds)) s")
        }
    }
}
