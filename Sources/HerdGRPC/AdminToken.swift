import GRPCCore

/// The admin check of gRPC admin operations (AddItem): the request metadata must carry
/// `authorization: Bearer TOKEN` with the token from the service config.
///
/// No token configured → every admin call is PERMISSION_DENIED (admin is off); no or a malformed
/// header → UNAUTHENTICATED; a wrong token → PERMISSION_DENIED.
public struct AdminToken: Sendable {
    public let token: String?

    public init(_ token: String?) {
        self.token = token.flatMap { $0.isEmpty ? nil : $0 }
    }

    func check(_ metadata: Metadata, operation: String) throws {
        guard let token else {
            throw RPCError(code: .permissionDenied, message: "\(operation) is an admin operation and no admin_token is configured for this service")
        }
        guard let header = metadata[stringValues: "authorization"].first(where: { _ in true }) else {
            throw RPCError(code: .unauthenticated, message: "\(operation) needs metadata 'authorization: Bearer TOKEN'")
        }
        let prefix = "Bearer "
        guard header.hasPrefix(prefix) else {
            throw RPCError(code: .unauthenticated, message: "\(operation): the authorization metadata must be 'Bearer TOKEN'")
        }
        guard Self.equal(Array(header.utf8.dropFirst(prefix.utf8.count)), Array(token.utf8)) else {
            throw RPCError(code: .permissionDenied, message: "\(operation): wrong admin token")
        }
    }

    /// Compares in time independent of where the bytes differ.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) { diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0) }
        return diff == 0
    }
}
