import Foundation

/// A request the recommender refuses, typed so that transports map it to a status:
/// `invalidArgument` → HTTP 400 / gRPC INVALID_ARGUMENT, `unavailable` → 503 / UNAVAILABLE.
///
/// Failures of the feature store are not errors: they give a degraded answer (see `Recommendation`).
public enum RecommenderError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A bad parameter (`k`, `canK`, the user id); the message names it and the allowed range.
    case invalidArgument(String)
    /// The recommender cannot answer at all (nothing to fall back to).
    case unavailable(String)

    /// The gRPC status name: `INVALID_ARGUMENT` or `UNAVAILABLE`.
    public var code: String {
        switch self {
        case .invalidArgument: return "INVALID_ARGUMENT"
        case .unavailable: return "UNAVAILABLE"
        }
    }

    /// The HTTP status: 400 or 503.
    public var httpStatus: Int {
        switch self {
        case .invalidArgument: return 400
        case .unavailable: return 503
        }
    }

    public var message: String {
        switch self {
        case .invalidArgument(let m), .unavailable(let m): return m
        }
    }

    public var description: String { "\(code): \(message)" }
}
