import Foundation
import GRPCCore
import HerdGRPC
import HerdServing
import Hummingbird
import Logging
import ServiceLifecycle

/// `herd serve feature|recall|ranking|recommender --config FILE`: one service of the split
/// deployment in its own process (see `SplitConfig`). Feature, recall and ranking serve gRPC,
/// plus, with `http_port` in their section, HTTP `GET /metrics` (their gRPC calls by method and
/// status, latency histograms: `ServerMetrics`) and `GET /healthz`; the recommender serves HTTP
/// and gRPC over gRPC clients of the other three.
public enum SplitServer {
    /// Runs `role` until SIGTERM/SIGINT. `onGRPCListening(host, port)` and `onHTTPListening(port)`
    /// report the bound ports.
    public static func run(_ role: SplitRole, config: SplitConfig, log: @escaping @Sendable (String) -> Void,
                           onGRPCListening: @escaping @Sendable (String, Int) -> Void,
                           onHTTPListening: @escaping @Sendable (Int) -> Void) async throws {
        var logger = Logger(label: "herd.serve.\(role.rawValue)")
        logger.logLevel = .info
        let host = config.bindHost(role), port = config.grpcPort(role)
        let service: any RegistrableRPCService
        var before: [any Service] = []
        switch role {
        case .feature: service = try SplitServices.feature(config, log: log)
        case .recall: service = try SplitServices.recall(config, log: log)
        case .ranking:
            guard let address = config.endpoint(.ranking).featureAddress else {
                service = try SplitServices.ranking(config, log: log)
                break
            }
            // NOTE: the client's connections run before the service is built (it asks the Feature
            // service for its schemas); the group then ends them after the server's shutdown.
            let client = try makeGRPCClient(address: address)
            let running = Task { try await client.runConnections() }
            do {
                service = try await offload { try SplitServices.ranking(config, features: client, log: log) }
            } catch {
                client.beginGracefulShutdown()
                _ = await running.result
                throw error
            }
            before.append(ClientShutdown(clients: [client], running: running))
        case .recommender:
            try await runRecommender(config, log: log, onGRPCListening: onGRPCListening, onHTTPListening: onHTTPListening)
            return
        }
        let metrics = ServerMetrics()
        var services = before
        if let httpPort = config.endpoint(role).httpPort {
            services.append(Application(
                router: metricsRouter(metrics),
                configuration: .init(address: .hostname(host, port: httpPort), serverName: "herd-\(role.rawValue)"),
                onServerRunning: { channel in onHTTPListening(channel.localAddress?.port ?? 0) },
                logger: logger))
        }
        services.append(GRPCServerService(host: host, port: port, services: [service], interceptors: [metrics.grpcInterceptor],
                                          onListening: onGRPCListening))
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// A split service's HTTP surface: `/metrics` (Prometheus text) and `/healthz`.
    static func metricsRouter(_ metrics: ServerMetrics) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        router.get("/healthz") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        }
        return router
    }

    static func runRecommender(_ config: SplitConfig, log: @escaping @Sendable (String) -> Void,
                               onGRPCListening: @escaping @Sendable (String, Int) -> Void,
                               onHTTPListening: @escaping @Sendable (Int) -> Void) async throws {
        let recall = try makeGRPCClient(address: try config.address(.recall))
        let features = try makeGRPCClient(address: try config.address(.feature))
        let ranking = try makeGRPCClient(address: try config.address(.ranking))
        let clients = [recall, features, ranking]
        // NOTE: the connections run before the recommender is built (it asks each service for its
        // shape at start); the ServiceGroup then owns their shutdown, after the servers'.
        let running = Task {
            try await withThrowingDiscardingTaskGroup { group in
                for c in clients { group.addTask { try await c.runConnections() } }
            }
        }
        let recommender: Recommender
        do {
            recommender = try await offload {
                try SplitServices.recommender(config, recall: recall, features: features, ranking: ranking, log: log)
            }
        } catch {
            for c in clients { c.beginGracefulShutdown() }
            _ = await running.result
            throw error
        }
        var c = RecommenderServer.Configuration(workspace: config.workspaceValue)
        c.host = config.bindHost(.recommender)
        c.port = config.endpoint(.recommender).httpPort ?? SplitConfig.defaultHTTPPort
        c.grpcPort = config.grpcPort(.recommender)
        c.adminToken = config.adminToken
        c.recommender = recommender.config
        let rawIDs = try RawIDs.load(workspace: config.workspaceValue, userKey: recommender.userSchema.keyColumn, itemKey: recommender.itemSchema.keyColumn)
        let server = RecommenderServer(configuration: c, recommender: recommender, rawIDs: rawIDs)
        try await server.run(before: [ClientShutdown(clients: clients, running: running)], onListening: onHTTPListening, onGRPCListening: onGRPCListening)
    }
}

/// Ends the gRPC clients' connections when the group shuts down (after the servers, which come
/// later in the group).
struct ClientShutdown: Service {
    let clients: [HerdGRPCClient]
    let running: Task<Void, any Error>

    func run() async throws {
        try? await gracefulShutdown()
        for c in clients { c.beginGracefulShutdown() }
        _ = await running.result
    }
}
