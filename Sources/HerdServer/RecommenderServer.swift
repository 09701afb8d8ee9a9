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
        /// gRPC port (0 = any free port, printed once listening); nil = no gRPC server. In one
        /// process it serves the Recommender, Recall, Feature and Ranking services.
        public var grpcPort: Int? = SplitConfig.defaultPorts[.recommender]
        /// Token of admin operations (gRPC AddItem; `authorization: Bearer TOKEN`); nil = refused.
        public var adminToken: String?

        public init(workspace: Workspace) { self.workspace = workspace }
    }

    public let configuration: Configuration
    public let recommender: Recommender
    public let metrics = ServerMetrics()
    /// The workspace's exports for TF-Serving-style REST (`/v1/models/…`).
    public let registry: ModelRegistry
    let logger: Logger

    /// Loads everything the recommender needs (errors name the missing file and the command that writes it).
    public init(configuration: Configuration, log: @escaping (String) -> Void) throws {
        self.configuration = configuration
        var logger = Logger(label: "herd.serve")
        logger.logLevel = .info
        self.logger = logger
        let registryLogger = logger
        registry = ModelRegistry(workspace: configuration.workspace, log: { line in registryLogger.info("\(line)") })
        recommender = try Recommender.load(workspace: configuration.workspace, storeSpec: configuration.storeSpec,
                                           rankingModel: configuration.rankingModel, config: configuration.recommender, log: log)
    }

    /// Serves a recommender built elsewhere (split mode: over gRPC clients).
    public init(configuration: Configuration, recommender: Recommender) {
        self.configuration = configuration
        var logger = Logger(label: "herd.serve")
        logger.logLevel = .info
        self.logger = logger
        let registryLogger = logger
        registry = ModelRegistry(workspace: configuration.workspace, log: { line in registryLogger.info("\(line)") })
        self.recommender = recommender
    }

    /// The gRPC services: the Recommender, and with in-process parts also Recall, Feature and
    /// Ranking over the same index, store and model replicas.
    public func grpcServices() -> [any RegistrableRPCService] {
        let metrics = self.metrics
        return LocalServices.all(recommender: recommender, admin: AdminToken(configuration.adminToken)) { answer in
            metrics.stages(answer.timings.milliseconds, source: answer.source.rawValue)
        }
    }

    /// The router, for in-process tests and embedding in another application.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        RecommenderRoutes.add(to: router, recommender: recommender, metrics: metrics)
        TFServingRoutes.add(to: router, registry: registry, metrics: metrics)
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
        var services: [any Service] = before + [app]
        if let grpcPort = configuration.grpcPort {
            services.append(GRPCServerService(host: configuration.host, port: grpcPort, services: grpcServices(), onListening: onGRPCListening))
        }
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
