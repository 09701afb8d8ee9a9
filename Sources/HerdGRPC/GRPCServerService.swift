import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HerdServing
import ServiceLifecycle

/// A gRPC server (plaintext HTTP/2 on `host:port`) as a `ServiceLifecycle` service: graceful
/// shutdown (SIGTERM in the `ServiceGroup`) stops accepting and lets the calls in flight finish.
public struct GRPCServerService: Service {
    public let host: String
    public let port: Int
    let services: [any RegistrableRPCService]
    let interceptors: [any ServerInterceptor]
    let onListening: @Sendable (String, Int) -> Void

    /// `port` 0 = any free port; `onListening(host, port)` gets the bound one. `interceptors` see
    /// every call (e.g. `MetricsInterceptor`).
    public init(host: String, port: Int, services: [any RegistrableRPCService], interceptors: [any ServerInterceptor] = [],
                onListening: @escaping @Sendable (String, Int) -> Void) {
        self.host = host
        self.port = port
        self.services = services
        self.interceptors = interceptors
        self.onListening = onListening
    }

    public func run() async throws {
        let address: GRPCNIOTransportCore.SocketAddress = host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
        let transport = HTTP2ServerTransport.Posix(address: address, transportSecurity: .plaintext)
        let server = GRPCServer(transport: transport, services: services, interceptors: interceptors)
        let host = self.host, onListening = self.onListening
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                let bound: GRPCNIOTransportCore.SocketAddress
                do {
                    bound = try await transport.listeningAddress
                } catch {
                    // NOTE: the transport only says "serverIsStopped" when the bind fails (port in use).
                    throw ServingError("gRPC could not listen on \(host):\(port): is the port in use? Choose another with --grpc-port (0 = any free port, --grpc-port=-1 = no gRPC) [\(error)]")
                }
                onListening(host, bound.ipv4?.port ?? bound.ipv6?.port ?? port)
            }
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}

/// The connections of a gRPC client as a `ServiceLifecycle` service (put it before the servers
/// that use it: a `ServiceGroup` stops services in reverse order, so the client outlives them).
public struct GRPCClientService: Service {
    public let client: HerdGRPCClient

    public init(client: HerdGRPCClient) { self.client = client }

    public func run() async throws {
        let client = self.client
        try await withGracefulShutdownHandler {
            try await client.runConnections()
        } onGracefulShutdown: {
            client.beginGracefulShutdown()
        }
    }
}
