import Foundation
import HerdFeatures
import HerdServing

/// A store that delegates schemas to another but fails or stalls on `get`.
final class FailingFeatureStore: FeatureStore, @unchecked Sendable {
    enum Mode { case fail, stall(seconds: Double) }
    let inner: any FeatureStore
    let mode: Mode
    init(_ inner: any FeatureStore, mode: Mode) {
        self.inner = inner
        self.mode = mode
    }
    var spec: String { "failing(\(inner.spec))" }
    var health: StoreHealth {
        if case .fail = mode { return .unhealthy("test double: connection refused") }
        return .healthy
    }
    func put(_ table: FeatureTable, kind: EntityKind, keyColumn: String, ids: [Int64]?, progress: ((Int, Int) -> Void)?) throws {
        try inner.put(table, kind: kind, keyColumn: keyColumn, ids: ids, progress: progress)
    }
    func get(kind: EntityKind, ids: [Int64]) throws -> FeatureRows {
        switch mode {
        case .fail: throw ServingError("test double: connection refused")
        case .stall(let s):
            Thread.sleep(forTimeInterval: s)
            return try inner.get(kind: kind, ids: ids)
        }
    }
    func schema(kind: EntityKind) throws -> FeatureSchema? { try inner.schema(kind: kind) }
}
