import Foundation
import HerdTensor

/// Synthetic Twitter RecSys Challenge 2021 logs with a known answer: challenge-format files
/// (`\u{1}`-separated fields, tab-separated lists, no header) drawn from a planted engagement
/// model (see `PlantedEngagementModel`), plus `oracle.json` holding the true model's test AUC and
/// logloss for "any engagement", and `schema.json` describing the columns (`RecSys2021Schema`).
///
/// Rows are generated in blocks of `blockRows`, each from its own seed derived from `(seed,
/// block)`, on all cores; output bytes depend only on `(seed, rows, testFraction)`, not on the
/// thread count. The train split is the first `rows − testRows` rows, the test split the rest.
public struct RecSys2021Generator: Sendable {
    static let blockRows = 8192

    public let seed: UInt64
    public let rows: Int
    let model: PlantedEngagementModel

    /// A generator of `rows` rows for `seed`.
    /// `users` and `tweets` set the pools (default: rows / 4 and rows / 2, at least 1000 each); the
    /// ids seen are fewer (draws are Zipf-distributed over the pools).
    public init(rows: Int, seed: UInt64, users: Int? = nil, tweets: Int? = nil) throws {
        guard rows >= 2 else { throw HerdDataError.invalidArgument("--rows must be at least 2, got \(rows)") }
        if let users, users < 2 { throw HerdDataError.invalidArgument("--users must be at least 2, got \(users)") }
        if let tweets, tweets < 1 { throw HerdDataError.invalidArgument("--items must be at least 1, got \(tweets)") }
        self.rows = rows
        self.seed = seed
        model = PlantedEngagementModel(seed: seed, rows: rows, users: users, tweets: tweets)
    }

    /// Users in the pool (engaging and engaged-with users share it).
    public var userPool: Int { model.users }
    /// Tweets in the pool.
    public var tweetPool: Int { model.tweets }

    /// Test rows for a fraction (at least one each for train and test).
    public func testRows(fraction: Double) -> Int { GenerationOutput.testRows(rows: rows, fraction: fraction) }

    /// Writes `train.txt`, `test.txt` (challenge format), `oracle.json` and `schema.json` into
    /// `directory` (created if needed) and returns the oracle.
    @discardableResult
    public func write(to directory: String, testFraction: Double = 0.1) throws -> RecSys2021Oracle {
        let output = try GenerationOutput(directory: directory, rows: rows, testFraction: testFraction, blockRows: Self.blockRows)
        let (dir, train, test, trainCount, testCount, blocks) = (output.directory, output.train, output.test, output.trainCount, output.testCount, output.blocks)
        let types = PlantedEngagementModel.engagementCount
        var trainPositives = 0
        var typePositives = [Int](repeating: 0, count: types)
        var testProbabilities: [Double] = [], testMain: [Double] = [], testLabels: [Bool] = []
        var testTypeProbabilities = [[Double]](repeating: [], count: types)
        var testTypeLabels = [[Bool]](repeating: [], count: types)
        testProbabilities.reserveCapacity(testCount)
        testMain.reserveCapacity(testCount)
        testLabels.reserveCapacity(testCount)
        var seenUsers = [UInt64](repeating: 0, count: model.users / 64 + 1)
        var seenTweets = [UInt64](repeating: 0, count: model.tweets / 64 + 1)

        /// Writes one finished block (blocks arrive in order) and accumulates the oracle's inputs.
        func writeBlock(_ block: GeneratedBlock, isTest: Bool) throws {
            var positives = 0
            for mask in block.engagements {
                if mask != 0 { positives += 1 }
                for k in 0..<types where mask & (1 << k) != 0 { typePositives[k] += 1 }
            }
            for r in block.userRanks { seenUsers[Int(r) >> 6] |= 1 << UInt64(r & 63) }
            for r in block.tweetRanks { seenTweets[Int(r) >> 6] |= 1 << UInt64(r & 63) }
            if isTest {
                try test.write(block.text)
                testProbabilities += block.probabilities
                testMain += block.mainEffectProbabilities
                testLabels += block.engagements.map { $0 != 0 }
                for k in 0..<types {
                    for i in block.engagements.indices {
                        testTypeProbabilities[k].append(block.typeProbabilities[i * types + k])
                        testTypeLabels[k].append(block.engagements[i] & (1 << k) != 0)
                    }
                }
            } else {
                try train.write(block.text)
                trainPositives += positives
            }
        }

        try generatePipelined(blocks, generate: { index, block in generate(block: index, rows: block.range) },
                              consume: { output, block in try writeBlock(output, isTest: block.test) })
        try train.close()
        try test.close()

        let names = RecSys2021Schema.engagementNames
        var typeRates: [String: Double] = [:], typeAUC: [String: Double] = [:]
        for k in 0..<types {
            typeRates[names[k]] = Double(typePositives[k]) / Double(rows)
            let auc = RecSys2021Oracle.auc(scores: testTypeProbabilities[k], labels: testTypeLabels[k])
            if auc.isFinite { typeAUC[names[k]] = auc }  // absent when the test split has one class
        }
        let oracle = RecSys2021Oracle(
            scores: OracleScores(testProbabilities: testProbabilities, mainEffectScores: testMain, testLabels: testLabels,
                                 trainRows: trainCount, trainPositives: trainPositives),
            engagementPositiveRates: typeRates, engagementTestAUC: typeAUC,
            seed: seed,
            users: seenUsers.reduce(0) { $0 + $1.nonzeroBitCount },
            items: seenTweets.reduce(0) { $0 + $1.nonzeroBitCount },
            userPool: model.users, itemPool: model.tweets)
        try oracle.writeJSON(to: dir.appendingPathComponent("oracle.json").path)
        try writeOracleJSON(RecSys2021Schema.standard, to: dir.appendingPathComponent("schema.json").path)
        return oracle
    }

    struct GeneratedBlock: Sendable {
        var text: [UInt8]
        /// True probability of any engagement, per row.
        var probabilities: [Double]
        /// The same without the interaction terms (a score only main effects can explain).
        var mainEffectProbabilities: [Double]
        /// True probability of each engagement type, `engagementCount` per row.
        var typeProbabilities: [Double]
        /// Bit k set when engagement type k happened, per row.
        var engagements: [UInt8]
        /// Pool ranks of the engaged-with and the engaging user, two per row.
        var userRanks: [UInt32]
        var tweetRanks: [UInt32]
    }

    /// The rows `rows` (global indices) of block number `block`, in the challenge format.
    func generate(block: Int, rows: Range<Int>) -> GeneratedBlock {
        let types = PlantedEngagementModel.engagementCount
        var rng = SplitMix64(seed: mix64(seed ^ mix64(0x5EED_2021_0000 &+ UInt64(block))))
        var out = GeneratedBlock(
            text: [], probabilities: [], mainEffectProbabilities: [], typeProbabilities: [], engagements: [],
            userRanks: [], tweetRanks: [])
        out.text.reserveCapacity(rows.count * 520)
        out.probabilities.reserveCapacity(rows.count)
        out.mainEffectProbabilities.reserveCapacity(rows.count)
        out.typeProbabilities.reserveCapacity(rows.count * types)
        out.engagements.reserveCapacity(rows.count)
        out.userRanks.reserveCapacity(2 * rows.count)
        out.tweetRanks.reserveCapacity(rows.count)
        var row = PlantedEngagementModel.Row()
        var timestamps = [Int?](repeating: nil, count: types)
        for _ in rows {
            model.draw(&rng, into: &row)
            var none = 1.0, noneMain = 1.0
            var mask: UInt8 = 0
            for k in 0..<types {
                let p = logistic(row.logits[k] + model.bias[k])
                none *= 1 - p
                noneMain *= 1 - logistic(row.logits[k] - row.interaction + model.bias[k])
                out.typeProbabilities.append(p)
                if rng.nextDouble() < p {
                    mask |= 1 << UInt8(k)
                    let delay = exp(PlantedEngagementModel.delayMu[k] + 1.6 * Double(rng.nextGaussian()))
                    timestamps[k] = row.tweet.timestamp + max(1, Int(min(delay, 14 * 86_400)))
                } else {
                    timestamps[k] = nil
                }
            }
            out.probabilities.append(1 - none)
            out.mainEffectProbabilities.append(1 - noneMain)
            out.engagements.append(mask)
            out.userRanks.append(UInt32(row.author.rank))
            out.userRanks.append(UInt32(row.engager.rank))
            out.tweetRanks.append(UInt32(row.tweet.rank))
            append(row, timestamps: timestamps, to: &out.text)
        }
        return out
    }

    /// One line of the challenge format.
    private func append(_ row: PlantedEngagementModel.Row, timestamps: [Int?], to text: inout [UInt8]) {
        let t = row.tweet
        let separator: UInt8 = 1, tab: UInt8 = 9
        for i in 0..<t.tokenCount {
            if i > 0 { text.append(tab) }
            appendDecimal(model.token(seed: t.tokenSeed, index: i, count: t.tokenCount), to: &text)
        }
        text.append(separator)
        for (i, tag) in t.hashtags.enumerated() {
            if i > 0 { text.append(tab) }
            appendHex128(model.hashtagID(tag), to: &text)
        }
        text.append(separator)
        appendHex128(t.id, to: &text)
        text.append(separator)
        for i in 0..<t.mediaCount {
            if i > 0 { text.append(tab) }
            text += RecSys2021Schema.mediaNames[t.media - 1].utf8
        }
        text.append(separator)
        for i in t.domains.indices {
            if i > 0 { text.append(tab) }
            appendHex128(model.linkID(tweet: t.rank, i), to: &text)
        }
        text.append(separator)
        for (i, domain) in t.domains.enumerated() {
            if i > 0 { text.append(tab) }
            appendHex128(model.domainID(domain), to: &text)
        }
        text.append(separator)
        text += RecSys2021Schema.tweetTypeNames[t.type].utf8
        text.append(separator)
        appendHex128(model.languageID(t.language), to: &text)
        text.append(separator)
        appendDecimal(t.timestamp, to: &text)
        func appendUser(_ user: PlantedEngagementModel.User) {
            text.append(separator)
            appendHex128(user.id, to: &text)
            text.append(separator)
            appendDecimal(user.followers, to: &text)
            text.append(separator)
            appendDecimal(user.following, to: &text)
            text.append(separator)
            text += (user.verified ? "true" : "false").utf8
            text.append(separator)
            appendDecimal(user.creation, to: &text)
        }
        appendUser(row.author)
        appendUser(row.engager)
        text.append(separator)
        text += (row.follows ? "true" : "false").utf8
        for timestamp in timestamps {
            text.append(separator)
            if let timestamp { appendDecimal(timestamp, to: &text) }
        }
        text.append(10)
    }
}

@inline(__always)
private func appendDecimal(_ value: Int, to out: inout [UInt8]) {
    var v = value
    if v < 0 {
        out.append(45)
        v = -v
    }
    var divisor = 1
    while divisor <= v / 10 { divisor *= 10 }
    repeat {
        out.append(UInt8(48 + v / divisor))
        v %= divisor
        divisor /= 10
    } while divisor > 0
}

/// 32 upper-case hex digits, like the challenge's hashed ids.
@inline(__always)
private func appendHex128(_ value: (UInt64, UInt64), to out: inout [UInt8]) {
    appendHex64(value.0, to: &out)
    appendHex64(value.1, to: &out)
}

@inline(__always)
private func appendHex64(_ word: UInt64, to out: inout [UInt8]) {
    for shift in stride(from: 60, through: 0, by: -4) {
        let d = UInt8((word >> UInt64(shift)) & 0xf)
        out.append(d < 10 ? 48 + d : 55 + d)
    }
}
