import Foundation

/// A failure in the serving layer (index, feature store, nearline job): a message that says what is
/// wrong and what to do about it.
public struct ServingError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
