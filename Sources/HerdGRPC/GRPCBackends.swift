import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import HerdFeatures
import HerdServing

/// A gRPC client to one service address (`host:port`) over plaintext HTTP/2. Its connections run
/// in `run()` (a `ServiceGroup` service, or a task); calls made before wait for the connection.
public typealias HerdGRPCClient = GRPCClient<HTTP2ClientTransport.Posix>

/// Makes a client for `address` (`127.0.0.1:8983`, `[::1]:8983`, `feature.internal:8983`).
public func makeGRPCClient(address: String) throws -> HerdGRPCClient {
    let (host, port) = try parseAddress(address)
    let isIPv4 = host.split(separator: ".").count == 4 && host.split(separator: ".").allSatisfy { UInt8($0) != nil }
    let transport: HTTP2ClientTransport.Posix
    if isIPv4 {
        transport = try HTTP2ClientTransport.Posix(target: .ipv4(host: host, port: port), transportSecurity: .plaintext)
    } else if host.contains(":") {
        transport = try HTTP2ClientTransport.Posix(target: .ipv6(host: host, port: port), transportSecurity: .plaintext)
    } else {
        transport = try HTTP2ClientTransport.Posix(target: .dns(host: host, port: port), transportSecurity: .plaintext)
    }
    return GRPCClient(transport: transport)
}

/// `host:port` → (host, port); IPv6 hosts in brackets.
public func parseAddress(_ address: String) throws -> (host: String, port: Int) {
    var text = Substring(address)
    if text.hasPrefix("grpc://") { text = text.dropFirst("grpc://".count) }
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
        throw ServingError("'\(address)' is not HOST:PORT (a port in 1…65535)")
    }
    var host = text[..<colon]
    if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
    guard !host.isEmpty else { throw ServingError("'\(address)' names no host") }
    return (String(host), port)
}

/// Recall over gRPC: `Search(user_id, k)`; NOT_FOUND means the user has no embedding (cold start).
public final class GRPCRecall: RecallBackend {
    let client: Herd_V1_Recall.Client<HTTP2ClientTransport.Posix>
    public let metric: ANNMetric
    public let info: Herd_V1_RecallInfo

    /// Asks the service for its index shape (waits up to `timeout` for it to answer).
    public init(client: HerdGRPCClient, timeout: Duration = .seconds(10)) throws {
        let c = Herd_V1_Recall.Client(wrapping: client)
        self.client = c
        let deadline = ContinuousClock.now + timeout
        info = try blocking { try await c.info(Herd_V1_RecallInfoRequest(), options: waitingOptions(deadline)) }
        guard let m = info.metric.metric else { throw ServingError("the Recall service reports no index metric") }
        metric = m
    }

    public func candidates(userID: Int64, k: Int, deadline: ContinuousClock.Instant) throws -> (ids: [Int64], scores: [Float])? {
        var request = Herd_V1_SearchRequest()
        request.userID = userID
        request.k = Int32(k)
        let client = self.client, message = request
        do {
            let r = try blocking { try await client.search(message, options: callOptions(deadline)) }
            return (r.ids, r.scores)
        } catch let e as RPCError where e.code == .notFound {
            return nil
        }
    }
}

/// Features over gRPC: `GetUserFeatures` and `GetItemFeatures`, concurrently, within the deadline.
public final class GRPCFeatures: FeatureBackend, @unchecked Sendable {
    let client: Herd_V1_Feature.Client<HTTP2ClientTransport.Posix>
    public let spec: String
    public let userSchema: FeatureSchema
    public let itemSchema: FeatureSchema
    private let lock = NSLock()
    private var lastHealth: StoreHealth = .healthy

    /// Asks the service for the schemas (waits up to `timeout` for it to answer).
    public init(client: HerdGRPCClient, address: String, timeout: Duration = .seconds(10)) throws {
        let c = Herd_V1_Feature.Client(wrapping: client)
        self.client = c
        spec = "grpc://\(address)"
        let deadline = ContinuousClock.now + timeout
        let schemas = try blocking { try await c.getSchemas(Herd_V1_SchemasRequest(), options: waitingOptions(deadline)) }
        userSchema = try schemas.user.schema()
        itemSchema = try schemas.item.schema()
        if !schemas.healthy { lastHealth = .unhealthy(schemas.healthReason) }
    }

    /// The health seen by the last call.
    public var health: StoreHealth { lock.withLock { lastHealth } }

    public func rows(userID: Int64, items: [Int64], deadline: ContinuousClock.Instant) throws -> (user: FeatureRows, items: FeatureRows) {
        let client = self.client, userSchema = self.userSchema, itemSchema = self.itemSchema
        var userIDs = Herd_V1_FeatureIDs(), itemIDs = Herd_V1_FeatureIDs()
        userIDs.ids = [userID]
        itemIDs.ids = items
        let u = userIDs, i = itemIDs
        do {
            let (user, item) = try blocking {
                async let user = client.getUserFeatures(u, options: callOptions(deadline))
                async let item = client.getItemFeatures(i, options: callOptions(deadline))
                return try await (user, item)
            }
            let rows = (user: try user.rows(schema: userSchema), items: try item.rows(schema: itemSchema))
            lock.withLock { lastHealth = .healthy }
            return rows
        } catch let e as RPCError {
            let reason = e.code == .deadlineExceeded
                ? "the feature service \(spec) did not answer within the deadline"
                : "the feature service \(spec) failed: \(e.code): \(e.message)"
            lock.withLock { lastHealth = .unhealthy(reason) }
            throw ServingError(reason)
        }
    }
}

/// Ranking over gRPC: `Score(rows)` with the assembled ranking table.
public final class GRPCRanking: RankingBackend {
    let client: Herd_V1_Ranking.Client<HTTP2ClientTransport.Posix>
    public let info: Herd_V1_RankingInfo
    /// The model's batch spec (labels included), from `Info`.
    public var spec: BatchSpec { info.batchSpec }

    public init(client: HerdGRPCClient, timeout: Duration = .seconds(10)) throws {
        let c = Herd_V1_Ranking.Client(wrapping: client)
        self.client = c
        let deadline = ContinuousClock.now + timeout
        info = try blocking { try await c.info(Herd_V1_RankingInfoRequest(), options: waitingOptions(deadline)) }
    }

    public func probabilities(_ table: FeatureTable, deadline: ContinuousClock.Instant) throws -> [Float] {
        var request = Herd_V1_ScoreRequest()
        request.rows = Herd_V1_Table(table)
        let client = self.client, message = request
        return try blocking { try await client.score(message, options: callOptions(deadline)).probs }
    }
}

/// Options for a start-up call: wait for the service to come up (until `deadline`).
func waitingOptions(_ deadline: ContinuousClock.Instant) -> CallOptions {
    var o = callOptions(deadline)
    o.waitForReady = true
    return o
}
