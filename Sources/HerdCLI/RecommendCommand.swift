import ArgumentParser
import Foundation
import HerdServing
import HerdTraining

/// `herd recommend`: one user's recommendations through the whole online pipeline (recall, features,
/// ranking, top k) in-process, with per-stage timings — the HTTP route's answer without a server.
struct RecommendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recommend",
        abstract: "Recommend k items for a user: recall canK candidates with the user's embedding, fetch features, rank with the W&D export, keep the top k.",
        discussion: """
            Needs a workspace after herd preprocess, herd train (a ranking model, default name wnd), \
            herd predict --embeddings (two-tower user/item embeddings) and herd nearline (item index, feature store). \
            An unknown user gets the canK most popular items ranked for it (coldStart); a failing or slow feature store gives the \
            candidates in recall order (degraded). Ids are the encoded key values of the user and item tables.
            """)

    @Option(help: "Workspace directory (written by herd preprocess / train / predict / nearline).") var workspace = Workspace.defaultPath
    @Option(help: "User id: a value of the user table's key column (e.g. the encoded enaging_user_id).") var user: Int64
    @Option(name: .customLong("k"), help: "Items to return, 1…1000.") var k = 10
    @Option(name: .customLong("can-k"), help: "Candidates to recall and rank, k…10000.") var canK = 50
    @Option(help: "Ranking model: a model name under W/models (its latest version) or an export directory.") var model = "wnd"
    @Option(help: "Feature store spec (embedded:PATH or redis://host:port[/prefix]); default: the store herd nearline wrote to.")
    var store: String?
    @Option(help: "Deadline for the feature store, in milliseconds; a slower store gives a degraded answer.") var timeoutMs = 1000
    @Option(help: "Rows per ranking forward (micro-batch); a request's candidates are ranked in forwards of at most this many rows.") var microBatch = 256
    @Option(help: "Ask this many times and report the mean stage timings (the first call warms up and is not counted when > 1).")
    var `repeat` = 1
    @Flag(help: "Print one JSON object as the last line (logs go to stderr).") var json = false

    func validate() throws {
        guard timeoutMs > 0 else { throw ValidationError("--timeout-ms must be positive, got \(timeoutMs)") }
        guard microBatch > 0 else { throw ValidationError("--micro-batch must be positive, got \(microBatch)") }
        guard `repeat` > 0 else { throw ValidationError("--repeat must be positive, got \(`repeat`)") }
    }

    func run() async throws {
        var config = RecommenderConfig()
        config.microBatch = microBatch
        config.defaultTimeout = .milliseconds(timeoutMs)
        let recommender = try Recommender.load(workspace: Workspace(path: workspace), storeSpec: store, rankingModel: model, config: config) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        var answer: Recommendation
        do {
            answer = try recommender.recommend(userID: user, k: k, canK: canK)
            if `repeat` > 1 {
                var sum = StageTimings()
                for _ in 1..<`repeat` {
                    let t = try recommender.recommend(userID: user, k: k, canK: canK).timings
                    sum.recall += t.recall; sum.features += t.features; sum.preprocess += t.preprocess
                    sum.ranking += t.ranking; sum.topK += t.topK; sum.total += t.total
                }
                let n = Double(`repeat` - 1)
                answer.timings = StageTimings()
                answer.timings.recall = sum.recall / n; answer.timings.features = sum.features / n
                answer.timings.preprocess = sum.preprocess / n; answer.timings.ranking = sum.ranking / n
                answer.timings.topK = sum.topK / n; answer.timings.total = sum.total / n
            }
        } catch let error as RecommenderError {
            if json { print(String(decoding: try RecommendResponse(error: error).jsonData(), as: UTF8.self)) }
            throw error
        }
        if json {
            print(String(decoding: try RecommendResponse(answer).jsonData(), as: UTF8.self))
            return
        }
        var header = "user \(user): \(answer.ids.count) items, \(answer.source.rawValue)"
        header += answer.source == .popular ? " from the \(answer.candidates) most popular" : " from \(answer.candidates) candidates"
        if answer.coldStart { header += " (cold start: no embedding for this user)" }
        if answer.degraded { header += " (degraded: \(answer.reason ?? "?"))" }
        print(header)
        let probLabel = answer.source == .ranked ? "prob" : answer.source == .recall ? "sigmoid(recall score)" : "engagement rate"
        for (i, (id, p)) in zip(answer.ids, answer.probs).enumerated() {
            print(String(format: "%4d  item %-10lld  ", i + 1, id) + probLabel + String(format: " %.4f", Double(p)))
        }
        let ms = answer.timings.milliseconds
        let stages = ["recall", "features", "preprocess", "ranking", "top_k", "total"].map { $0 + String(format: " %.2f", ms[$0] ?? 0) }
        print("stage ms\(`repeat` > 1 ? " (mean of \(`repeat` - 1) calls after a warm-up)" : ""): " + stages.joined(separator: "  "))
    }
}
