import Foundation
import GRPCCore
import HerdGRPC
import HerdServing
import HerdTraining
import Hummingbird
import Logging
import ServiceLifecycle

/// `herd serve`: the recommender over HTTP and gRPC in one process, on embedded parts by default
/// (or, in split mode, the recommender over the gRPC Recall/Feature/Ranking services).
///
/// Every long-running piece is a `Service` in one `ServiceGroup`: SIGTERM or SIGINT starts a
/// graceful shutdown (the HTTP and gRPC servers stop accepting, answer the requests in flight,
/// then the process exits 0).
public struct RecommenderServer {
    public struct Configuration: Sendable {
        public var workspace: Workspace
        /// Loopback unless configured otherwise.
        public var host = "127.0.0.1"
        /// 0 = any free port (printed once listening).
        public var port = 8080
        /// Feature store spec (`embedded:PATH`, `redis://host:port/prefix`); nil = what nearline wrote.
        public var storeSpec: String?
        /// Ranking model: a name under `W/models` (its latest version) or an export directory.
        public var rankingModel = "wnd"
        public var recommender = RecommenderConfig()
        /// The bearer token `POST /admin/…` and gRPC admin calls (AddItem) require; nil = admin
        /// routes answer 403 and gRPC admin calls PERMISSION_DENIED (disabled).
        public var adminToken: String?
        /// TF-Serving models from outside the workspace: name → export directory (see `ModelRegistry`).
        public var models: [String: URL] = [:]
        /// gRPC port (0 = any free port, printed once listening); nil = no gRPC server. In one
        /// process it serves the Recommender, Recall, Feature and Ranking services.
        public var grpcPort: Int? = SplitConfig.defaultPorts[.recommender]
        /// Threads running HTTP recommend calls (`BlockingPool`); 0 = dispatch's global queue (about
        /// one per core); nil = automatic: the global queue with the embedded store, whose calls
        /// never wait, and 2 × cores otherwise (a Redis round trip then overlaps another request's work).
        public var requestThreads: Int?
        /// Whether the HTTP server's tasks run on the request threads too (so a request is parsed,
        /// answered and written on one of them: two thread hand-offs instead of four); false (the
        /// default): they run on Swift's cooperative pool and hand the pipeline to the request threads.
        ///
        /// NOTE: opt-in. Measured quietly (benchmarks/README.md, 2026-12-06) it saved ≈ 2.3 context
        /// switches per request but gained ≤ 4 % q/s, and its p99 at saturation was 2–3× the hand-off
        /// path's (canK 200 FP32, 16 connections: 82 against 33 ms). That tail's cause: a connection
        /// task that found its next request already read served it at once, ahead of the queued
        /// requests (≈ 40 % of requests at saturation); `BlockingPool.beginRequest` now queues such
        /// a request again where it arrived, and interleaved A/Bs (serve8, shared machine) then
        /// measured the two paths' p99 alike, but canK 200 FP32 q/s 3–7 % lower on this path (the
        /// requeues' extra jobs; CPU per request ≈ 3 % higher), canK 50 equal; a quiet A/B (lead,
        /// Redis, 16 connections, 3 rounds) then measured canK 200 FP32 1–5 % higher: not clearly ahead.
        public var httpOnRequestThreads = false

        public init(workspace: Workspace) { self.workspace = workspace }
    }

    public let configuration: Configuration
    /// The recommender now (`POST /admin/reload` swaps it).
    public var recommender: Recommender { live.current }
    public let live: LiveRecommender
    public let metrics = ServerMetrics()
    /// The workspace's exports for TF-Serving-style REST (`/v1/models/…`).
    public let registry: ModelRegistry
    let logger: Logger
    /// The threads running HTTP recommend calls (`resolvedRequestThreads`; nil: dispatch's global
    /// queue), and the HTTP server's tasks while `run` serves.
    let requestPool: BlockingPool?

    /// Loads everything the recommender needs (errors name the missing file and the command that writes it).
    public init(configuration: Configuration, log: @escaping (String) -> Void) throws {
        self.configuration = configuration
        (logger, registry) = Self.loggerAndRegistry(configuration)
        let c = configuration, registryLogger = logger
        // NOTE: the first load logs through `log` (the CLI's stderr); reloads through the logger.
        let firstLog = FirstLog(log)
        live = try LiveRecommender {
            let sink = firstLog.take() ?? { line in registryLogger.info("\(line)") }
            let r = try Recommender.load(workspace: c.workspace, storeSpec: c.storeSpec, rankingModel: c.rankingModel,
                                         config: c.recommender, log: sink)
            let ids = try RawIDs.load(workspace: c.workspace, userKey: r.userSchema.keyColumn, itemKey: r.itemSchema.keyColumn)
            if let ids { sink("recommender: raw ids mapped through \(c.workspace.fittedPipeline.lastPathComponent) (user key \(ids.userKey)\(ids.mapsUsers ? "" : " not categorified"), item key \(ids.itemKey))") }
            return (r, ids)
        }
        requestPool = Self.requestPool(configuration, live.current)
    }

    /// The admin token in `path` (surrounding whitespace dropped); a clear error when it is missing or empty.
    public static func readAdminToken(_ path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ServingError("--admin-token-file \(path): cannot read it")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty, !token.contains(where: \.isNewline) else {
            throw ServingError("--admin-token-file \(path): needs one non-empty line (the token)")
        }
        return token
    }

    /// `NAME=DIR[,NAME=DIR…]` → name → directory (each directory must exist).
    public static func parseModels(_ text: String) throws -> [String: URL] {
        var out: [String: URL] = [:]
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, !kv[0].isEmpty, !kv[0].contains("/"), !kv[1].isEmpty else {
                throw ServingError("--models takes NAME=DIR[,NAME=DIR…], got '\(part)'")
            }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: kv[1], isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ServingError("--models \(kv[0])=\(kv[1]): no such directory")
            }
            guard out[kv[0]] == nil else { throw ServingError("--models names '\(kv[0])' twice") }
            out[kv[0]] = URL(fileURLWithPath: kv[1], isDirectory: true)
        }
        return out
    }

    /// The server's logger and the registry of the workspace's (and `models`') exports.
    static func loggerAndRegistry(_ configuration: Configuration) -> (Logger, ModelRegistry) {
        var logger = Logger(label: "herd.serve")
        logger.logLevel = .info
        let registryLogger = logger
        let registry = ModelRegistry(workspace: configuration.workspace, directories: configuration.models,
                                     log: { line in registryLogger.info("\(line)") })
        return (logger, registry)
    }

    /// Serves a recommender built elsewhere (split mode: over gRPC clients; reload keeps it).
    public init(configuration: Configuration, recommender: Recommender, rawIDs: RawIDs? = nil) {
        self.configuration = configuration
        (logger, registry) = Self.loggerAndRegistry(configuration)
        live = LiveRecommender(recommender, rawIDs: rawIDs)
        requestPool = Self.requestPool(configuration, recommender)
    }

    /// The gRPC services: the Recommender (answering with the live recommender, so it follows
    /// reloads), and with in-process parts also Recall, Feature and Ranking over the index, store
    /// and model replicas loaded at start.
    public func grpcServices() -> [any RegistrableRPCService] {
        let metrics = self.metrics, live = self.live
        return LocalServices.all(recommender: recommender, current: { live.current }, admin: AdminToken(configuration.adminToken),
                                 indexFile: configuration.workspace.itemIndex, rawIDs: { live.rawIDs }) { answer in
            metrics.stages(answer.timings, source: answer.source.rawValue)
        }
    }

    /// `configuration.requestThreads` with nil resolved for the store loaded at start (nil result:
    /// dispatch's global queue).
    public var resolvedRequestThreads: Int? { Self.requestThreads(configuration, recommender) }

    static func requestThreads(_ configuration: Configuration, _ recommender: Recommender) -> Int? {
        if let n = configuration.requestThreads { return n > 0 ? n : nil }
        return recommender.context?.store is EmbeddedFeatureStore ? nil : 2 * ProcessInfo.processInfo.activeProcessorCount
    }

    static func requestPool(_ configuration: Configuration, _ recommender: Recommender) -> BlockingPool? {
        requestThreads(configuration, recommender).map { BlockingPool(threads: $0, name: "herd-recommend") }
    }

    /// The router, for in-process tests and embedding in another application.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        RecommenderRoutes.add(to: router, live: live, metrics: metrics, pool: requestPool)
        TFServingRoutes.add(to: router, registry: registry, metrics: metrics)
        AdminRoutes.add(to: router, server: self)
        return router
    }

    /// Serves until SIGTERM/SIGINT; `onListening` gets the bound HTTP port, `onGRPCListening` the
    /// gRPC host and port. `before` are services that must outlive the servers (gRPC clients).
    public func run(before: [any Service] = [], onListening: @escaping @Sendable (Int) -> Void,
                    onGRPCListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }) async throws {
        let app = Application(
            router: router(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "herd"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        // NOTE: with request threads, the HTTP server's tasks (one per connection) run on them: a
        // request then costs two thread hand-offs instead of four (see `BlockingPool`). Only its
        // tasks: the gRPC server and the services in `before` keep Swift's cooperative pool
        // (split mode's clients are awaited from the request threads through `blocking`).
        let pool = configuration.httpOnRequestThreads ? requestPool : nil
        let http: any Service = pool.map { OnExecutor(service: app, executor: $0) } ?? app
        var services: [any Service] = before + [http]
        if let grpcPort = configuration.grpcPort {
            services.append(GRPCServerService(host: configuration.host, port: grpcPort, services: grpcServices(),
                                              interceptors: [metrics.grpcInterceptor], onListening: onGRPCListening))
        }
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Runs a service's tasks on `executor` (task executor preference: its child tasks inherit it).
struct OnExecutor<S: Service>: Service {
    let service: S
    let executor: any TaskExecutor

    func run() async throws {
        try await withTaskExecutorPreference(executor) { try await service.run() }
    }
}

/// The CLI's log sink for the first load only.
private final class FirstLog: @unchecked Sendable {
    private let lock = NSLock()
    private var log: ((String) -> Void)?
    init(_ log: @escaping (String) -> Void) { self.log = log }
    func take() -> ((String) -> Void)? {
        lock.withLock {
            defer { log = nil }
            return log
        }
    }
}
