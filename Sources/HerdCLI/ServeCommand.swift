import ArgumentParser
import Foundation
import HerdServer
import HerdServing
import HerdTraining

/// `herd serve --workspace W [--port P] [--host H] [--redis URL]`: the recommender over HTTP.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve recommendations over HTTP from a workspace: GET /recommender/recommend/{id}?k=10&canK=50, /healthz, /readyz, /metrics, and a page at /.",
        discussion: """
            Needs a workspace after herd preprocess, herd train (ranking model, default wnd), herd predict on the \
            two-tower export (embeddings) and herd nearline (item index, feature store). One process on embedded \
            parts by default (the store and index nearline wrote); --redis uses a Redis feature store. Prints \
            'listening on http://HOST:PORT' once ready. SIGTERM or SIGINT drains the requests in flight and exits 0.
            """)

    @Option(help: "Workspace directory.") var workspace = Workspace.defaultPath
    @Option(help: "Address to bind (loopback by default; 0.0.0.0 to accept remote clients).") var host = "127.0.0.1"
    @Option(help: "Port (0 = any free port, printed when listening).") var port = 8080
    @Option(help: "Redis feature store, redis://host:port[/prefix] (default: the store herd nearline wrote to).") var redis: String?
    @Option(help: "Ranking model: a model name under W/models (its latest version) or an export directory.") var model = "wnd"
    @Option(help: "Deadline for the feature store per request, in milliseconds; a slower store gives a degraded answer.") var timeoutMs = 1000
    @Option(help: "Rows per ranking forward (micro-batch).") var microBatch = 64
    @Option(help: "File holding the bearer token for POST /admin/reload and /admin/items (without it they answer 403).") var adminTokenFile: String?
    @Option(help: "More TF-Serving models, NAME=DIR[,NAME=DIR…]: an export directory, a herd train --out directory, or a directory of version subdirectories.") var models: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0…65535, got \(port)") }
        guard timeoutMs > 0 else { throw ValidationError("--timeout-ms must be positive, got \(timeoutMs)") }
        guard microBatch > 0 else { throw ValidationError("--micro-batch must be positive, got \(microBatch)") }
    }

    func run() async throws {
        var c = RecommenderServer.Configuration(workspace: Workspace(path: workspace))
        c.host = host
        c.port = port
        c.storeSpec = redis
        c.rankingModel = model
        c.recommender.microBatch = microBatch
        c.recommender.defaultTimeout = .milliseconds(timeoutMs)
        c.adminToken = try adminTokenFile.map(RecommenderServer.readAdminToken)
        c.models = try models.map(RecommenderServer.parseModels) ?? [:]
        let server = try RecommenderServer(configuration: c) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        let host = self.host
        try await server.run { port in
            print("listening on http://\(host):\(port)")  // NOTE: stdout is line-buffered (Entry.swift): the line is out at once
        }
        print("stopped")
    }
}
