import Foundation
import HerdFeatures
import HerdTraining

/// Raw ids (the values in the data: RecSys 2021's 32-hex-digit user and tweet ids, MovieLens's
/// `user_id`) ↔ the encoded ids that the workspace's tables, embeddings, feature store and index
/// are keyed by (the fitted pipeline's categorify indices: `1…N`, 0 = unknown).
///
/// Users of the service know raw ids; the recommender works on encoded ones. Built from
/// `W/features/pipeline.fitted.json`: the string index whose columns include the user key column
/// maps user ids, the one including the item key column maps item ids back.
public struct RawIDs: Sendable {
    public let userKey: String
    public let itemKey: String
    let users: StringIndex?
    let items: StringIndex?
    /// The shape of the known raw user ids: their byte lengths and the bytes they use.
    let userLengths: ClosedRange<Int>?
    let userBytes: [Bool]

    public init(pipeline: FittedPipeline, userKey: String, itemKey: String) {
        self.userKey = userKey
        self.itemKey = itemKey
        let indices = pipeline.stringIndices
        users = indices.first { $0.columns.contains(userKey) }
        items = indices.first { $0.columns.contains(itemKey) }
        var bytes = [Bool](repeating: false, count: 256)
        var lo = Int.max, hi = 0
        for v in users?.values ?? [] {
            let u = v.utf8
            lo = min(lo, u.count)
            hi = max(hi, u.count)
            for b in u { bytes[Int(b)] = true }
        }
        userLengths = lo <= hi ? lo...hi : nil
        userBytes = bytes
    }

    /// Whether `raw` has the shape of the known raw user ids (length within theirs, only bytes they
    /// use): an id of that shape that the index does not know is a new user (cold start); any
    /// other unknown text is a malformed id (e.g. `abc` where ids are 32 upper-case hex digits).
    public func looksLikeUserID(_ raw: String) -> Bool {
        guard let userLengths, userLengths.contains(raw.utf8.count) else { return false }
        return raw.utf8.allSatisfy { userBytes[Int($0)] }
    }

    /// An example of a raw user id, for messages.
    public var exampleUserID: String? { users?.values.first }

    /// The mapping of a workspace, or nil when it has no fitted pipeline (its ids were never encoded).
    public static func load(workspace w: Workspace, userKey: String, itemKey: String) throws -> RawIDs? {
        guard FileManager.default.fileExists(atPath: w.fittedPipeline.path) else { return nil }
        let ids = RawIDs(pipeline: try FittedPipeline.load(path: w.fittedPipeline.path), userKey: userKey, itemKey: itemKey)
        return ids.users == nil && ids.items == nil ? nil : ids
    }

    /// The mapping of a workspace with the key columns its embeddings name (`key_column` in
    /// `embeddings/user.safetensors` and `item.safetensors`), for services without a feature store
    /// at hand (split Recall); nil when the workspace has no fitted pipeline or no such metadata.
    public static func load(workspace w: Workspace) throws -> RawIDs? {
        func key(_ kind: String) throws -> String? {
            let url = w.embeddingTable(kind)
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            return try SafeTensorsFile(url: url).metadata["key_column"]
        }
        guard let userKey = try key("user"), let itemKey = try key("item") else { return nil }
        return try load(workspace: w, userKey: userKey, itemKey: itemKey)
    }

    /// Whether raw user ids can be mapped (the user key column was categorified).
    public var mapsUsers: Bool { users != nil }

    /// The encoded id of a raw user id: 0 when the index does not know it (an unknown user), nil
    /// when the user key column was not categorified.
    public func userID(raw: String) -> Int64? { users?.id(of: raw) }

    /// The raw id of an encoded item id, or nil (not categorified, or an id the index does not
    /// have, e.g. an item added to the live index after preprocessing).
    public func rawItem(_ id: Int64) -> String? {
        guard let items, id >= 1, id <= Int64(items.values.count) else { return nil }
        return items.values[Int(id - 1)]
    }

    /// The raw id of an encoded user id (see `rawItem`).
    public func rawUser(_ id: Int64) -> String? {
        guard let users, id >= 1, id <= Int64(users.values.count) else { return nil }
        return users.values[Int(id - 1)]
    }
}
