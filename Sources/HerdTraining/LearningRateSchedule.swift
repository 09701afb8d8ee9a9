/// Learning rate per step: linear warm-up from 0 over `warmupSteps`, constant, then polynomial
/// decay (power 2, as in facebookresearch/dlrm) from `decayStartStep` over `decaySteps` down to
/// `base · minFactor`.
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public var base: Float
    public var warmupSteps: Int = 0
    public var decayStartStep: Int = 0
    public var decaySteps: Int = 0
    public var minFactor: Float = 0

    public init(base: Float, warmupSteps: Int = 0, decayStartStep: Int = 0, decaySteps: Int = 0, minFactor: Float = 0) {
        self.base = base
        self.warmupSteps = warmupSteps
        self.decayStartStep = decayStartStep
        self.decaySteps = decaySteps
        self.minFactor = minFactor
    }

    /// The rate for 0-based `step`.
    public func rate(at step: Int) -> Float {
        if step < warmupSteps { return base * Float(step + 1) / Float(warmupSteps) }
        if decaySteps > 0 && step >= decayStartStep {
            let t = min(1, Float(step - decayStartStep) / Float(decaySteps))
            let f = (1 - t) * (1 - t)
            return base * max(f, minFactor)
        }
        return base
    }
}
