import Foundation

/// The columns of a Twitter RecSys Challenge 2021 file, as written to `schema.json` by
/// `RecSys2021Generator`: one row per line, no header, fields separated by `fieldSeparator`,
/// list fields' items by the column's `listSeparator`; an empty field is missing (an empty list
/// for list columns, no engagement for the four label timestamps).
///
/// NOTE: the JSON is the schema format of the feature-table reader (`herd preprocess --schema`),
/// so generated data is read without a hand-written schema. Booleans (`true`/`false`) are string
/// columns there, as in the challenge's files.
public struct RecSys2021Schema: Sendable, Codable, Equatable {
    public struct Column: Sendable, Codable, Equatable {
        public enum Kind: String, Sendable, Codable {
            case string, int64, double
            case stringList = "string_list", int64List = "int64_list"
        }

        public var name: String
        public var type: Kind
        /// Separator of a list column's items (`nil` otherwise).
        public var listSeparator: String?
        /// Whether the field may be empty.
        public var nullable: Bool

        public init(name: String, type: Kind, listSeparator: String? = nil, nullable: Bool = false) {
            self.name = name
            self.type = type
            self.listSeparator = listSeparator
            self.nullable = nullable
        }

        enum CodingKeys: String, CodingKey {
            case name, type, listSeparator = "list_separator", nullable
        }
    }

    public var fieldSeparator: String
    public var header: Bool
    public var columns: [Column]
    /// The engagement timestamp columns (a row's label for type k: its column is not empty).
    public var labelColumns: [String]

    enum CodingKeys: String, CodingKey {
        case fieldSeparator = "separator", header, columns, labelColumns = "label_columns"
    }

    /// Engagement types in column order, as used for oracle keys.
    public static let engagementNames = ["reply", "retweet", "retweet_with_comment", "like"]
    /// `present_media` values (index = media kind − 1).
    public static let mediaNames = ["Photo", "Video", "GIF"]
    /// `tweet_type` values.
    public static let tweetTypeNames = ["TopLevel", "Retweet", "Quote"]

    /// The 24 challenge columns (note the challenge's spelling `enaging_user_…`).
    public static let standard: RecSys2021Schema = {
        func list(_ name: String, _ type: Column.Kind) -> Column {
            Column(name: name, type: type, listSeparator: "\t", nullable: true)
        }
        func user(_ prefix: String) -> [Column] {
            [
                Column(name: "\(prefix)_id", type: .string),
                Column(name: "\(prefix)_follower_count", type: .int64),
                Column(name: "\(prefix)_following_count", type: .int64),
                Column(name: "\(prefix)_is_verified", type: .string),
                Column(name: "\(prefix)_account_creation", type: .int64),
            ]
        }
        let labels = engagementNames.map { "\($0)_timestamp" }
        var columns = [
            list("text_tokens", .int64List), list("hashtags", .stringList),
            Column(name: "tweet_id", type: .string),
            list("present_media", .stringList), list("present_links", .stringList), list("present_domains", .stringList),
            Column(name: "tweet_type", type: .string), Column(name: "language", type: .string),
            Column(name: "tweet_timestamp", type: .int64),
        ]
        columns += user("engaged_with_user") + user("enaging_user")
        columns.append(Column(name: "engagee_follows_engager", type: .string))
        columns += labels.map { Column(name: $0, type: .int64, nullable: true) }
        return RecSys2021Schema(fieldSeparator: "\u{1}", header: false, columns: columns, labelColumns: labels)
    }()
}
