import Foundation
@testable import HerdData
import XCTest

final class RecSys2021GeneratorTests: XCTestCase {
    /// The lines of a generated file, each split into its `\u{1}`-separated fields.
    private func rows(_ path: String) throws -> [[Substring]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasSuffix("\n"))
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            .map { $0.split(separator: "\u{1}", omittingEmptySubsequences: false) }
    }

    private func isHex32(_ s: Substring) -> Bool {
        s.utf8.count == 32 && s.utf8.allSatisfy { (48...57).contains($0) || (65...70).contains($0) }
    }

    func testDeterministicBytesAndOracle() throws {
        let a = try TemporaryDirectory(), b = try TemporaryDirectory()
        let oracle = try RecSys2021Generator(rows: 20000, seed: 5).write(to: a.path, testFraction: 0.25)
        let again = try RecSys2021Generator(rows: 20000, seed: 5).write(to: b.path, testFraction: 0.25)
        XCTAssertEqual(oracle, again)
        for name in ["train.txt", "test.txt", "oracle.json", "schema.json"] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a.file(name))),
                           try Data(contentsOf: URL(fileURLWithPath: b.file(name))), name)
        }
        let other = try TemporaryDirectory()
        try RecSys2021Generator(rows: 2000, seed: 6).write(to: other.path, testFraction: 0.25)
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: a.file("train.txt"))).prefix(1000),
                          try Data(contentsOf: URL(fileURLWithPath: other.file("train.txt"))).prefix(1000))

        XCTAssertEqual(oracle.trainRows, 15000)
        XCTAssertEqual(oracle.testRows, 5000)
        XCTAssertEqual(oracle.seed, 5)
        XCTAssertGreaterThan(oracle.positiveRate, 0.10)
        XCTAssertLessThan(oracle.positiveRate, 0.40)
        XCTAssertGreaterThan(oracle.testAUC, 0.7)
        XCTAssertLessThan(oracle.testAUC, 0.95)
        XCTAssertLessThan(oracle.testLogloss, oracle.testLoglossBaseline)
        XCTAssertLessThan(oracle.testAUCWithoutInteractions, oracle.testAUC - 0.01)
        // Each engagement type has its own rate: like ≫ retweet ≫ reply ≫ retweet with comment.
        let rates = RecSys2021Schema.engagementNames.map { oracle.engagementPositiveRates[$0]! }
        XCTAssertEqual(rates.count, 4)
        XCTAssertGreaterThan(rates[3], rates[1])
        XCTAssertGreaterThan(rates[1], rates[0])
        XCTAssertGreaterThan(rates[0], rates[2])
        XCTAssertGreaterThan(rates[2], 0)
        XCTAssertGreaterThan(oracle.engagementTestAUC["like"]!, 0.6)
        XCTAssertGreaterThan(oracle.users, 1000)
        XCTAssertLessThanOrEqual(oracle.users, oracle.userPool)
        XCTAssertGreaterThan(oracle.items, 1000)
        XCTAssertLessThan(oracle.items, 20000)  // tweets recur
        XCTAssertLessThanOrEqual(oracle.items, oracle.itemPool)

        // The files' labels agree with the oracle's rates.
        let train = try rows(a.file("train.txt")), test = try rows(a.file("test.txt"))
        XCTAssertEqual(train.count, 15000)
        XCTAssertEqual(test.count, 5000)
        let all = train + test
        let positives = all.filter { $0[20...23].contains { !$0.isEmpty } }.count
        XCTAssertEqual(Double(positives) / 20000, oracle.positiveRate, accuracy: 1e-12)
        let likes = all.filter { !$0[23].isEmpty }.count
        XCTAssertEqual(Double(likes) / 20000, oracle.engagementPositiveRates["like"]!, accuracy: 1e-12)
        // Distinct users/tweets in the files match the oracle's counts.
        XCTAssertEqual(Set(all.flatMap { [$0[9], $0[14]] }).count, oracle.users)
        XCTAssertEqual(Set(all.map { $0[2] }).count, oracle.items)
    }

    func testValueFormats() throws {
        let dir = try TemporaryDirectory()
        try RecSys2021Generator(rows: 6000, seed: 11).write(to: dir.path)
        let lines = try rows(dir.file("train.txt")) + rows(dir.file("test.txt"))
        XCTAssertEqual(lines.count, 6000)
        var sawMedia = Set<Substring>(), sawTypes = Set<Substring>(), languages = Set<Substring>()
        var hashtags = 0, links = 0, verified = 0, follows = 0
        for f in lines {
            XCTAssertEqual(f.count, 24)
            guard f.count == 24 else { continue }
            let tokens = f[0].split(separator: "\t", omittingEmptySubsequences: false)
            XCTAssertGreaterThanOrEqual(tokens.count, 3)
            XCTAssertEqual(tokens.first, "101")
            XCTAssertEqual(tokens.last, "102")
            XCTAssertTrue(tokens.allSatisfy { Int($0).map { (0..<119_547).contains($0) } ?? false })
            for c in [1, 4, 5] where !f[c].isEmpty {
                XCTAssertTrue(f[c].split(separator: "\t", omittingEmptySubsequences: false).allSatisfy(isHex32))
            }
            XCTAssertEqual(f[4].split(separator: "\t").count, f[5].split(separator: "\t").count)  // a domain per link
            if !f[1].isEmpty { hashtags += 1 }
            if !f[4].isEmpty { links += 1 }
            for c in [2, 7, 9, 14] { XCTAssertTrue(isHex32(f[c]), "column \(c): \(f[c])") }
            XCTAssertNotEqual(f[9], f[14])  // nobody engages with themselves
            if !f[3].isEmpty {
                for m in f[3].split(separator: "\t", omittingEmptySubsequences: false) { sawMedia.insert(m) }
            }
            sawTypes.insert(f[6])
            languages.insert(f[7])
            for c in [12, 17, 19] { XCTAssertTrue(f[c] == "true" || f[c] == "false") }
            if f[12] == "true" { verified += 1 }
            if f[19] == "true" { follows += 1 }
            for c in [10, 11, 15, 16] { XCTAssertNotNil(Int(f[c]).flatMap { $0 >= 0 ? $0 : nil }) }
            let tweetTime = Int(f[8])!
            XCTAssertTrue((1_612_396_800..<1_612_396_800 + 21 * 86_400).contains(tweetTime))
            for c in [13, 18] { XCTAssertTrue((1_142_000_000..<tweetTime).contains(Int(f[c])!)) }
            for c in 20...23 where !f[c].isEmpty {
                let t = Int(f[c])!
                XCTAssertGreaterThanOrEqual(t, tweetTime)
                XCTAssertLessThanOrEqual(t, tweetTime + 14 * 86_400)
            }
        }
        XCTAssertEqual(sawMedia, ["Photo", "Video", "GIF"])
        XCTAssertEqual(sawTypes, ["TopLevel", "Retweet", "Quote"])
        XCTAssertGreaterThan(languages.count, 10)
        XCTAssertLessThanOrEqual(languages.count, 66)
        XCTAssertGreaterThan(hashtags, 600)
        XCTAssertGreaterThan(links, 300)
        XCTAssertGreaterThan(verified, 10)
        XCTAssertGreaterThan(follows, 600)
        XCTAssertLessThan(follows, 4000)
        // Counts are heavy-tailed: the largest follower count is far above the median.
        let followers = lines.map { Int($0[10])! }.sorted()
        XCTAssertGreaterThan(followers.last!, 100 * max(1, followers[followers.count / 2]))
        // A tweet's fields are the same on every row it appears in.
        var byTweet: [Substring: [Substring]] = [:]
        for f in lines {
            let fixed = Array(f[0...13])
            if let seen = byTweet[f[2]] { XCTAssertEqual(seen, fixed) } else { byTweet[f[2]] = fixed }
        }
        XCTAssertLessThan(byTweet.count, 5000)
    }

    func testUsersRepeatWithSkew() throws {
        let dir = try TemporaryDirectory()
        let oracle = try RecSys2021Generator(rows: 20000, seed: 2).write(to: dir.path)
        let lines = try rows(dir.file("train.txt")) + rows(dir.file("test.txt"))
        for column in [14, 9] {  // engaging users, engaged-with users
            var counts: [Substring: Int] = [:]
            for f in lines { counts[f[column], default: 0] += 1 }
            let sorted = counts.values.sorted(by: >)
            let top = sorted.prefix(max(1, sorted.count / 100)).reduce(0, +)
            // 15 times their share under uniform activity.
            XCTAssertGreaterThan(Double(top) / 20000, 0.15, "column \(column): top 1 % of \(sorted.count) users")
            XCTAssertLessThan(sorted.count, 20000)
        }
        // One shared pool: many users appear in both roles.
        let engaging = Set(lines.map { $0[14] }), engaged = Set(lines.map { $0[9] })
        XCTAssertGreaterThan(engaging.intersection(engaged).count, 200)
        XCTAssertEqual(engaging.union(engaged).count, oracle.users)
        let rate = Double(lines.filter { $0[20...23].contains { !$0.isEmpty } }.count) / 20000
        XCTAssertGreaterThan(rate, 0.10)
        XCTAssertLessThan(rate, 0.40)
    }

    /// Retrieval has something to find: a user's positives concentrate on tweets of their taste
    /// topic (timeline exposure plus the taste × topic logit), far above the 1/topicCount share of
    /// chance, and above the share among shown-but-not-engaged tweets.
    func testPositivesConcentrateOnTheEngagersTaste() throws {
        let generator = try RecSys2021Generator(rows: 20000, seed: 8)
        let model = generator.model
        let block = generator.generate(block: 0, rows: 0..<8192)
        var inTaste = [0, 0], total = [0, 0]  // [negatives, positives]
        for r in 0..<block.engagements.count {
            let positive = block.engagements[r] != 0 ? 1 : 0
            let engager = Int(block.userRanks[2 * r + 1]), tweet = Int(block.tweetRanks[r])
            total[positive] += 1
            if model.topic(ofTweet: tweet) == model.taste(ofUser: engager) { inTaste[positive] += 1 }
        }
        let positiveShare = Double(inTaste[1]) / Double(total[1]), negativeShare = Double(inTaste[0]) / Double(total[0])
        XCTAssertGreaterThan(positiveShare, 0.6)
        XCTAssertLessThan(negativeShare, positiveShare - 0.1)
        XCTAssertGreaterThan(negativeShare, 1.5 / Double(PlantedEngagementModel.topicCount))  // exposure follows taste
        // Topics and tastes cover their range; moving a rank keeps it in the pool and in its tier.
        XCTAssertEqual(Set((1...64).map(model.topic(ofTweet:))).count, PlantedEngagementModel.topicCount)
        XCTAssertEqual(Set((1...2000).map(model.taste(ofUser:))).count, PlantedEngagementModel.topicCount)
        for (rank, topic, pool) in [(1, 0, 100), (1, 7, 100), (37, 3, 100), (99, 5, 100), (5, 6, 5), (3, 7, 1)] {
            let m = PlantedEngagementModel.moved(rank, to: topic, pool: pool)
            XCTAssertTrue((1...pool).contains(m), "\(rank) \(topic) \(pool) → \(m)")
            if pool >= 32 { XCTAssertEqual((m - 1) % PlantedEngagementModel.topicCount, topic) }
        }
        XCTAssertEqual(PlantedEngagementModel.moved(37, to: 3, pool: 100), 36)
        XCTAssertEqual(PlantedEngagementModel.moved(99, to: 5, pool: 100), 94)
        // Authors write about their taste.
        for rank in [1, 2, 50, 999] {
            for topic in 0..<PlantedEngagementModel.topicCount {
                XCTAssertEqual(model.taste(ofUser: model.writer(near: rank, topic: topic)), topic)
            }
        }
        let tweets = block.tweetRanks.indices.map { Int(block.tweetRanks[$0]) }
        let authors = block.userRanks.indices.filter { $0 % 2 == 0 }.map { Int(block.userRanks[$0]) }
        let onTopic = zip(tweets, authors).filter { model.topic(ofTweet: $0) == model.taste(ofUser: $1) }.count
        XCTAssertGreaterThan(Double(onTopic) / Double(tweets.count), 0.999)
    }

    func testPoolsCanBeSet() throws {
        let dir = try TemporaryDirectory()
        let generator = try RecSys2021Generator(rows: 4000, seed: 3, users: 5000, tweets: 300)
        XCTAssertEqual(generator.userPool, 5000)
        XCTAssertEqual(generator.tweetPool, 300)
        let oracle = try generator.write(to: dir.path)
        XCTAssertEqual(oracle.userPool, 5000)
        XCTAssertEqual(oracle.itemPool, 300)
        let lines = try rows(dir.file("train.txt")) + rows(dir.file("test.txt"))
        let users = Set(lines.map { $0[14] }).union(lines.map { $0[9] }), tweets = Set(lines.map { $0[2] })
        XCTAssertEqual(users.count, oracle.users)
        XCTAssertEqual(tweets.count, oracle.items)
        XCTAssertLessThanOrEqual(tweets.count, 300)
        XCTAssertGreaterThan(tweets.count, 150)  // 4000 Zipf draws over 300 tweets see most of them
        XCTAssertGreaterThan(users.count, 1000)
        XCTAssertThrowsError(try RecSys2021Generator(rows: 100, seed: 1, users: 1))
        XCTAssertThrowsError(try RecSys2021Generator(rows: 100, seed: 1, tweets: 0))
    }

    func testOracleAUCIsExact() throws {
        XCTAssertEqual(RecSys2021Oracle.auc(scores: [0.1, 0.4, 0.35, 0.8], labels: [false, false, true, true]), 0.75)
        XCTAssertEqual(RecSys2021Oracle.auc(scores: [0.2, 0.2, 0.9], labels: [true, false, true]), 0.75)
        // On a tiny generated file, the oracle's AUC is the pairwise count over the true
        // probabilities of the test rows, whose labels are the rows' engagement columns.
        let generator = try RecSys2021Generator(rows: 60, seed: 9)
        let dir = try TemporaryDirectory()
        let oracle = try generator.write(to: dir.path, testFraction: 0.5)
        let block = generator.generate(block: 1, rows: 30..<60)
        let test = try rows(dir.file("test.txt"))
        XCTAssertEqual(test.count, 30)
        XCTAssertEqual(String(decoding: block.text, as: UTF8.self), try String(contentsOfFile: dir.file("test.txt"), encoding: .utf8))
        let labels = test.map { $0[20...23].contains { !$0.isEmpty } }
        XCTAssertEqual(labels, block.engagements.map { $0 != 0 })
        var wins = 0.0, pairs = 0.0
        for i in labels.indices where labels[i] {
            for j in labels.indices where !labels[j] {
                pairs += 1
                let (p, q) = (block.probabilities[i], block.probabilities[j])
                wins += p > q ? 1 : p == q ? 0.5 : 0
            }
        }
        XCTAssertGreaterThan(pairs, 0)
        XCTAssertEqual(oracle.testAUC, wins / pairs, accuracy: 1e-12)
        // Any engagement's probability combines the four types.
        for i in 0..<30 {
            let none = (0..<4).reduce(1.0) { $0 * (1 - block.typeProbabilities[i * 4 + $1]) }
            XCTAssertEqual(block.probabilities[i], 1 - none, accuracy: 1e-12)
        }
    }

    func testSchemaMatchesColumns() throws {
        let dir = try TemporaryDirectory()
        try RecSys2021Generator(rows: 100, seed: 1).write(to: dir.path)
        let data = try Data(contentsOf: URL(fileURLWithPath: dir.file("schema.json")))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(json["separator"] as? String, "\u{1}")
        let columns = try XCTUnwrap(json["columns"] as? [[String: Any]])
        let names = columns.compactMap { $0["name"] as? String }
        XCTAssertEqual(names, [
            "text_tokens", "hashtags", "tweet_id", "present_media", "present_links", "present_domains", "tweet_type",
            "language", "tweet_timestamp", "engaged_with_user_id", "engaged_with_user_follower_count",
            "engaged_with_user_following_count", "engaged_with_user_is_verified", "engaged_with_user_account_creation",
            "enaging_user_id", "enaging_user_follower_count", "enaging_user_following_count", "enaging_user_is_verified",
            "enaging_user_account_creation", "engagee_follows_engager", "reply_timestamp", "retweet_timestamp",
            "retweet_with_comment_timestamp", "like_timestamp",
        ])
        let types = columns.compactMap { $0["type"] as? String }
        XCTAssertEqual(types.count, 24)
        XCTAssertTrue(types.allSatisfy { ["string", "int64", "double", "string_list", "int64_list"].contains($0) })
        for c in columns where (c["type"] as? String)?.hasSuffix("_list") == true {
            XCTAssertEqual(c["list_separator"] as? String, "\t")
        }
        XCTAssertEqual(columns.filter { ($0["type"] as? String)?.hasSuffix("_list") == true }.count, 5)
        XCTAssertEqual(columns[0]["type"] as? String, "int64_list")
        XCTAssertEqual(columns[12]["type"] as? String, "string")  // is_verified: "true"/"false"
        XCTAssertEqual(columns[10]["type"] as? String, "int64")
        XCTAssertEqual(try JSONDecoder().decode(RecSys2021Schema.self, from: data), RecSys2021Schema.standard)
        // Every line has as many fields as the schema has columns.
        for f in try rows(dir.file("train.txt")) { XCTAssertEqual(f.count, names.count) }
    }
}
