import Dispatch
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HerdGRPC
import HerdServing

/// A gRPC server on a free loopback port and a client connected to it, for round-trip tests.
final class GRPCTestServer: @unchecked Sendable {
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let client: HerdGRPCClient
    let port: Int
    private let serving: Task<Void, any Error>
    private let connecting: Task<Void, any Error>

    init(services: [any RegistrableRPCService]) async throws {
        let transport = HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext)
        let server = GRPCServer(transport: transport, services: services)
        self.server = server
        serving = Task { try await server.serve() }
        port = try await transport.listeningAddress.ipv4!.port
        let client = try makeGRPCClient(address: "127.0.0.1:\(port)")
        self.client = client
        connecting = Task { try await client.runConnections() }
    }

    func stop() async {
        client.beginGracefulShutdown()
        server.beginGracefulShutdown()
        _ = await connecting.result
        _ = await serving.result
    }
}

/// Runs blocking work on a dispatch thread (the recommender's calls block).
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in DispatchQueue.global().async { c.resume(with: Result { try work() }) } }
}

/// The status code of a failed call, or nil when it succeeded.
func statusCode<T>(_ call: () async throws -> T) async -> RPCError.Code? {
    do {
        _ = try await call()
        return nil
    } catch let e as RPCError {
        return e.code
    } catch {
        return .unknown
    }
}
