import Foundation
import HerdLayers
import HerdTensor

/// Updates parameters from their gradients. One protocol, several algorithms chosen by a spec
/// string (`makeOptimizer`): `sgd`, `adagrad`, `rowwise_adagrad`, `adam`, `lazy_adam`, `ftrl`.
///
/// Dense parameters are updated element by element; embedding tables only in the rows of the
/// step's `SparseRowGradient` (so Adagrad on a table is TorchRec's sparse Adagrad and Adam is
/// TensorFlow's LazyAdam). State slots are created on first use and keyed by parameter name, so
/// they can be checkpointed and restored by name.
public protocol Optimizer: AnyObject {
    /// The spec string this optimizer was built from.
    var spec: String { get }
    /// Called once per training step before the updates (Adam's bias correction counts steps).
    func beginStep()
    /// `p.value -= f(p.grad)` at learning rate `lr`.
    func update(_ p: Parameter, lr: Float)
    /// Updates the rows `gradient.ids` of `table`.
    func update(table: any EmbeddingTable, gradient: SparseRowGradient, lr: Float)
    /// Updates table `f` of `collection` from the collection's last gradient. The default turns
    /// it into row gradients (`gradient(table:)`) for `update(table:gradient:lr:)`; plain SGD
    /// applies kept bag gradients straight into the rows.
    func update(collection: EmbeddingBagCollection, table f: Int, lr: Float)
    /// State slots (and counters as 1-element tensors) by stable name, for checkpoints.
    var state: [(String, Tensor)] { get }
    /// Restores slots saved by `state` (names not present are created fresh on use).
    func load(state: [String: Tensor]) throws
}

extension Optimizer {
    public func update(collection: EmbeddingBagCollection, table f: Int, lr: Float) {
        update(table: collection.tables[f], gradient: collection.gradient(table: f), lr: lr)
    }
}

/// Errors in optimizer specs.
public struct OptimizerSpecError: Error, CustomStringConvertible {
    public let description: String
}

/// Parses `name` or `name:key=value,key=value` (e.g. `adam:beta1=0.9,beta2=0.999,eps=1e-8`).
func parseSpec(_ spec: String) throws -> (name: String, options: [String: Double]) {
    let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
    var options: [String: Double] = [:]
    if parts.count == 2 {
        for kv in parts[1].split(separator: ",") {
            let p = kv.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard p.count == 2, let v = Double(p[1]) else {
                throw OptimizerSpecError(description: "bad optimizer option '\(kv)' in '\(spec)'; write key=value, e.g. adam:beta1=0.9")
            }
            options[p[0]] = v
        }
    }
    return (parts.first?.lowercased() ?? "", options)
}

/// Builds an optimizer from its spec string. Options per algorithm:
/// - `sgd` (`momentum` not supported: DLRM trains with plain SGD)
/// - `adagrad`: `eps` (1e-8), `initial` accumulator (0)
/// - `rowwise_adagrad`: one accumulator per embedding row (mean of g² over the row); dense
///   parameters fall back to element-wise Adagrad. `eps`.
/// - `adam` / `lazy_adam`: `beta1` (0.9), `beta2` (0.999), `eps` (1e-8). On tables both only touch
///   the rows in the gradient (lazy); `adam` is the usual choice for dense parameters.
/// - `ftrl`: FTRL-Proximal, `l1` (0), `l2` (0), `beta` (1); the learning rate is FTRL's alpha.
public func makeOptimizer(spec: String) throws -> any Optimizer {
    let (name, o) = try parseSpec(spec)
    let known: [String: Set<String>] = [
        "sgd": [], "adagrad": ["eps", "initial"], "rowwise_adagrad": ["eps", "initial"],
        "adam": ["beta1", "beta2", "eps"], "lazy_adam": ["beta1", "beta2", "eps"], "ftrl": ["l1", "l2", "beta"],
    ]
    guard let allowed = known[name] else {
        throw OptimizerSpecError(description: "unknown optimizer '\(name)'; known: \(known.keys.sorted().joined(separator: ", "))")
    }
    if let bad = o.keys.first(where: { !allowed.contains($0) }) {
        throw OptimizerSpecError(description: "optimizer '\(name)' has no option '\(bad)'; options: \(allowed.sorted().joined(separator: ", "))")
    }
    func f(_ k: String, _ d: Float) -> Float { o[k].map { Float($0) } ?? d }
    switch name {
    case "sgd": return SGD(spec: spec)
    case "adagrad": return Adagrad(spec: spec, eps: f("eps", 1e-8), initial: f("initial", 0), rowwise: false)
    case "rowwise_adagrad": return Adagrad(spec: spec, eps: f("eps", 1e-8), initial: f("initial", 0), rowwise: true)
    case "adam", "lazy_adam": return Adam(spec: spec, beta1: f("beta1", 0.9), beta2: f("beta2", 0.999), eps: f("eps", 1e-8))
    default: return FTRL(spec: spec, l1: f("l1", 0), l2: f("l2", 0), beta: f("beta", 1))
    }
}

/// Named state slots created on first use.
final class Slots: @unchecked Sendable {
    private var slots: [String: Tensor] = [:]
    private let lock = NSLock()

    /// The slot `name` with `shape`, created filled with `initial`.
    func get(_ name: String, shape: [Int], initial: Float = 0) -> Tensor {
        lock.lock()
        defer { lock.unlock() }
        if let t = slots[name] { return t }
        let t = Tensor(shape: shape)
        if initial != 0 { t.fill(initial) }
        slots[name] = t
        return t
    }

    var all: [(String, Tensor)] { lock.withLock { slots.sorted { $0.key < $1.key } } }

    func load(_ state: [String: Tensor], prefix: String) {
        lock.withLock {
            for (k, v) in state where k.hasPrefix(prefix) { slots[String(k.dropFirst(prefix.count))] = v }
        }
    }
}
