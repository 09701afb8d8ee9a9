import ArgumentParser
import Foundation
import HerdGRPC
import HerdServer
import HerdServing
import HerdTensor
import HerdTraining

/// `herd serve [--workspace W] [--port P] [--grpc-port G] [--host H] [--redis URL]`: the recommender
/// over HTTP and gRPC in one process; `herd serve feature|recall|ranking|recommender --config FILE`:
/// one service of the split deployment.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve recommendations over HTTP (GET /recommender/recommend/{id}?k=10&canK=50, /healthz, /readyz, /metrics, a page at /) and gRPC (herd.v1 Recommender, Recall, Feature, Ranking).",
        discussion: """
            Needs a workspace after herd preprocess, herd train (ranking model, default wnd), herd predict on the \
            two-tower export (embeddings) and herd nearline (item index, feature store). One process on embedded \
            parts by default (the store and index nearline wrote); --redis uses a Redis feature store. Prints \
            'listening on http://HOST:PORT' and 'grpc listening on HOST:PORT' once ready. SIGTERM or SIGINT drains \
            the requests in flight and exits 0.

            Split services: herd serve feature|recall|ranking|recommender --config FILE runs one service per \
            process (gRPC; the recommender also HTTP and calls the other three over gRPC). The JSON config names \
            the workspace, host, ports (defaults: recommender gRPC 8980 and HTTP 8080, feature 8982, recall 8983, \
            ranking 8984), the others' addresses, redis, admin_token and timeout_ms; see the README. \
            --config without a service name configures the all-in-one server from the same file.
            """)

    @Argument(help: "A split service to run alone: feature, recall, ranking or recommender (needs --config). Omit for all in one process.")
    var service: String?
    @Option(help: "JSON config file (split services; or the all-in-one server: workspace, host, recommender ports, redis, admin_token, timeout_ms).")
    var config: String?
    @Option(help: "Workspace directory.") var workspace = Workspace.defaultPath
    @Option(help: "Address to bind (loopback by default; 0.0.0.0 to accept remote clients).") var host = "127.0.0.1"
    @Option(help: "HTTP port (0 = any free port, printed when listening).") var port = 8080
    @Option(help: "gRPC port (0 = any free port, printed when listening; --grpc-port=-1 = no gRPC).") var grpcPort = 8980
    @Option(help: "Redis feature store, redis://host:port[/prefix] or unix:///path/redis.sock[?prefix=P] (default: the store herd nearline wrote to).") var redis: String?
    @Option(help: "Ranking model: a model name under W/models (its latest version) or an export directory.") var model = "wnd"
    @Option(help: "Deadline for the feature store per request, in milliseconds; a slower store gives a degraded answer.") var timeoutMs = 1000
    @Option(help: "Rows per ranking forward (micro-batch); a request's candidates are ranked in forwards of at most this many rows.") var microBatch = 256
    @Option(help: "Threads running recommend calls (0 = dispatch's global queue, about one per core). Default: the global queue with the embedded store, 2 × cores with Redis (a thread waiting on a round trip leaves its core to another request). ")
    var requestThreads: Int?
    @Flag(inversion: .prefixedEnableDisable, help: "Run the HTTP server's request handling on the request threads too (two thread hand-offs per request instead of four, ≈ 2 fewer context switches; p99 alike, q/s at canK 200 a few % lower), or on Swift's cooperative pool handing each pipeline to them (default). Needs request threads.")
    var httpOnRequestThreads = false
    @Option(help: "Most rows of concurrent requests ranked in one forward (default 1: each request ranks alone; e.g. 512 coalesces).") var coalesceRows = RecommenderConfig().coalesceRows
    @Option(help: "GEMM precision of the ranking model: fp32 (default) or bf16 (BF16 operands, FP32 accumulation; weights rounded once at load).") var precision = "fp32"
    @Option(help: "Memory for the ranking model's first-layer row cache, in MB (0 = none): each candidate item's share of the first layer is kept and reused by later requests ranking that item (exact; FP32 first layers hoisting the user's columns, e.g. W&D, in either precision).")
    var rankingCacheMb = RecommenderConfig().rankingCacheBytes >> 20
    @Flag(inversion: .prefixedEnableDisable, help: "Rank a request's candidates whose ranking features are all equal (different items, same feature row) through the deep MLP once (W&D, DeepFM, DCN; the same probabilities within float rounding).")
    var rankingDedupe = RecommenderConfig().rankingDedupesRows
    @Option(help: "File holding the bearer token for POST /admin/reload and /admin/items (without it they answer 403).") var adminTokenFile: String?
    @Option(help: "More TF-Serving models, NAME=DIR[,NAME=DIR…]: an export directory, a herd train --out directory, or a directory of version subdirectories.") var models: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0…65535, got \(port)") }
        guard grpcPort == -1 || (0...65535).contains(grpcPort) else { throw ValidationError("--grpc-port must be in 0…65535 (or -1 for none), got \(grpcPort)") }
        guard timeoutMs > 0 else { throw ValidationError("--timeout-ms must be positive, got \(timeoutMs)") }
        guard Precision(rawValue: precision) != nil else { throw ValidationError("--precision must be fp32 or bf16, got '\(precision)'") }
        guard microBatch > 0 else { throw ValidationError("--micro-batch must be positive, got \(microBatch)") }
        if let requestThreads, requestThreads < 0 || requestThreads > 1024 { throw ValidationError("--request-threads must be in 0…1024, got \(requestThreads)") }
        guard rankingCacheMb >= 0 && rankingCacheMb <= 1 << 20 else { throw ValidationError("--ranking-cache-mb must be in 0…1048576, got \(rankingCacheMb)") }
        guard coalesceRows > 0 else { throw ValidationError("--coalesce-rows must be positive, got \(coalesceRows)") }
        if let service {
            guard SplitRole(rawValue: service) != nil else {
                throw ValidationError("unknown service '\(service)': use feature, recall, ranking or recommender (or no name for all in one process)")
            }
            guard config != nil else { throw ValidationError("herd serve \(service) needs --config FILE (workspace, ports, addresses of the other services)") }
        }
    }

    func run() async throws {
        let log: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        // NOTE: stdout is line-buffered (Entry.swift): the listening lines are out at once.
        let onGRPC: @Sendable (String, Int) -> Void = { host, port in print("grpc listening on \(host.contains(":") ? "[\(host)]" : host):\(port)") }
        let fileConfig = try config.map { try SplitConfig.load(path: $0) }
        if let service, let role = SplitRole(rawValue: service), let fileConfig {
            try await SplitServer.run(role, config: fileConfig, log: log, onGRPCListening: onGRPC,
                                      onHTTPListening: { port in print("listening on http://\(fileConfig.bindHost(role)):\(port)") })
            print("stopped")
            return
        }
        var c = RecommenderServer.Configuration(workspace: Workspace(path: fileConfig?.workspace ?? workspace))
        c.host = host
        c.port = port
        c.grpcPort = grpcPort == -1 ? nil : grpcPort
        c.storeSpec = redis
        c.rankingModel = model
        c.recommender.microBatch = microBatch
        c.recommender.coalesceRows = coalesceRows
        c.requestThreads = requestThreads
        c.httpOnRequestThreads = httpOnRequestThreads
        c.recommender.rankingPrecision = Precision(rawValue: precision) ?? .fp32
        c.recommender.rankingCacheBytes = rankingCacheMb << 20
        c.recommender.rankingDedupesRows = rankingDedupe
        c.recommender.defaultTimeout = .milliseconds(timeoutMs)
        c.adminToken = try adminTokenFile.map(RecommenderServer.readAdminToken)
        c.models = try models.map(RecommenderServer.parseModels) ?? [:]
        if let f = fileConfig {
            // NOTE: the file gives the all-in-one server's settings; flags left at their defaults do not override it.
            c.host = f.bindHost(.recommender)
            if let p = f.endpoint(.recommender).httpPort { c.port = p }
            if let p = f.endpoint(.recommender).port { c.grpcPort = p }
            if let r = f.redis { c.storeSpec = r }
            if let m = f.rankingModel { c.rankingModel = m }
            if let t = f.timeoutMs { c.recommender.defaultTimeout = .milliseconds(t) }
            if let m = f.microBatch { c.recommender.microBatch = m }
            if f.precision != nil { c.recommender.rankingPrecision = f.rankingPrecision }
            if let t = f.adminToken { c.adminToken = t }
        }
        let server = try RecommenderServer(configuration: c) { line in log(line) }
        let host = c.host
        try await server.run(onListening: { port in print("listening on http://\(host):\(port)") }, onGRPCListening: onGRPC)
        print("stopped")
    }
}
