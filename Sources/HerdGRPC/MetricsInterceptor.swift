import GRPCCore

/// A server interceptor that reports every call once it ends: its service (`herd.v1.Recommender`),
/// method (`Recommend`), status code (`OK`, `INVALID_ARGUMENT`, …, gRPC's canonical names) and
/// wall time in seconds — what the HTTP server's request metrics record for routes.
///
/// The time runs from the call's arrival to its last response message (a handler that throws, a
/// rejected call, or a response producer that fails all count with their code).
public struct MetricsInterceptor: ServerInterceptor {
    public let record: @Sendable (_ service: String, _ method: String, _ code: String, _ seconds: Double) -> Void

    public init(record: @escaping @Sendable (_ service: String, _ method: String, _ code: String, _ seconds: Double) -> Void) {
        self.record = record
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let t0 = ContinuousClock.now
        let service = context.descriptor.service.fullyQualifiedService, method = context.descriptor.method
        let record = self.record
        @Sendable func done(_ code: String) {
            let d = ContinuousClock.now - t0
            record(service, method, code, Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
        }
        let response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            done(Self.codeName(of: error))
            throw error
        }
        switch response.accepted {
        case .failure(let e):
            done(Self.name(e.code))
            return response
        case .success(var contents):
            let produce = contents.producer
            contents.producer = { writer in
                do {
                    let trailers = try await produce(writer)
                    done("OK")
                    return trailers
                } catch {
                    done(Self.codeName(of: error))
                    throw error
                }
            }
            return StreamingServerResponse(accepted: .success(contents))
        }
    }

    /// gRPC's canonical name of a code (`INVALID_ARGUMENT`).
    public static func name(_ code: RPCError.Code) -> String {
        let names = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
                     "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
                     "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"]
        return names.indices.contains(code.rawValue) ? names[code.rawValue] : "CODE_\(code.rawValue)"
    }

    /// The code a thrown error ends the call with (gRPC turns other errors into UNKNOWN).
    static func codeName(of error: any Error) -> String {
        if let e = error as? RPCError { return name(e.code) }
        if let e = error as? any RPCErrorConvertible { return name(e.rpcErrorCode) }
        return "UNKNOWN"
    }
}
