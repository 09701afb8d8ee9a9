/// How a request named its ids: HTTP's `?idType=raw|encoded`, gRPC's `id_type`.
public enum IDType: String, Sendable, CaseIterable {
    case raw, encoded
}

/// The user a request asked for, as it was read.
public enum RequestedUser: Equatable, Sendable {
    case encoded(Int64)
    /// A raw id and its encoded id (0 = unknown to the pipeline's index: a new user).
    case raw(String, Int64)

    public var encoded: Int64 {
        switch self {
        case .encoded(let id), .raw(_, let id): return id
        }
    }

    /// The raw id, for a raw request.
    public var raw: String? {
        if case .raw(let r, _) = self { return r }
        return nil
    }
}

extension RawIDs {
    /// Reads `text` as a user id, the transports' one rule. `idType` forces a reading: `encoded`
    /// needs an integer; `raw` maps through the pipeline's user index (an id it does not know is a
    /// new user, encoded 0). Without it: a raw id the index knows, else an integer as an encoded id
    /// (Friesian's convention), else a new user's raw id when it has the shape of the known raw
    /// ids (their lengths and characters), else refused (`abc` where ids are 32 hex digits).
    /// `ids` nil (or a workspace whose user ids were not categorified): only integers, and
    /// `raw` is refused with a message saying so.
    public static func resolveUser(_ text: String, idType: IDType?, ids: RawIDs?) -> Result<RequestedUser, RecommenderError> {
        let mapped = ids?.mapsUsers == true ? ids : nil
        switch idType {
        case .encoded?:
            guard let v = Int64(text) else { return .failure(.invalidArgument("an encoded user id is an integer, got '\(text)'")) }
            return .success(.encoded(v))
        case .raw?:
            guard !text.isEmpty else { return .failure(.invalidArgument("the raw user id is empty")) }
            guard let mapped, let v = mapped.userID(raw: text) else {
                return .failure(.invalidArgument("this workspace's user ids were not encoded by its pipeline: send them as they are (encoded), not as raw ids"))
            }
            return .success(.raw(text, v))
        case nil:
            if let mapped, let v = mapped.userID(raw: text), v != 0 { return .success(.raw(text, v)) }
            if let v = Int64(text) { return .success(.encoded(v)) }
            if let mapped {
                if mapped.looksLikeUserID(text) { return .success(.raw(text, 0)) }
                return .failure(.invalidArgument("the user id '\(text)' is neither a raw user id (like '\(mapped.exampleUserID ?? "")') nor an integer (an encoded id)"))
            }
            return .failure(.invalidArgument("the user id must be an integer, got '\(text)'"))
        }
    }

    /// The raw ids of encoded item ids; an id the index does not know (e.g. an item added to the
    /// live index after preprocessing) as its encoded id in decimal.
    public func rawItems(_ ids: [Int64]) -> [String] { ids.map { rawItem($0) ?? String($0) } }

    /// Whether raw item ids can be mapped back (the item key column was categorified).
    public var mapsItems: Bool { items != nil }

    /// The encoded id of a raw item id: 0 when the index does not know it, nil when the item key
    /// column was not categorified.
    public func itemID(raw: String) -> Int64? { items?.id(of: raw) }
}
