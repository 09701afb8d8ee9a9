import Foundation
import HerdTensor

/// The planted engagement model behind `RecSys2021Generator`, fixed by `(seed, rows)`.
///
/// Entities, each a pure function of `(seed, rank)` (hashes; no tables are stored):
/// - a **user pool** of `users` users. A user's rank is their popularity as an author: the
///   engaged-with user of a tweet is a Zipf(1.1, offset 10) rank, so low ranks have many
///   followers, are often verified and have old accounts. Engaging users come from the same pool
///   with Zipf(1.1, offset 30) activity over an affine permutation of the ranks, so one shared user
///   index covers both roles.
/// - a **tweet pool** of `tweets` tweets drawn Zipf(0.95, offset 30) per row (popular tweets recur); a tweet
///   fixes its author, language (mostly the author's), media, links/domains, hashtags (Zipf over a
///   hashtag pool), type, timestamp, text tokens and a latent quality.
///
/// - **topics**: tweet `rank` is about topic `(rank − 1) mod topicCount`, and so are its hashtags
///   (hashtag ranks are drawn Zipf and moved into the tweet's topic, keeping their tier); every user
///   has one **taste** topic (a hash of the rank), and authors write about their taste (a tweet's
///   author is the first user from its Zipf-drawn rank on whose taste is the tweet's topic).
///
/// Per row one engaging user and one tweet are drawn, the tweet from the engager's timeline: with
/// probability `tasteExposure` a tweet of the engager's taste topic (a Zipf tweet rank moved into
/// that topic, keeping its popularity tier), otherwise any tweet (a Zipf rank). The engager is then
/// made ≠ the author, and whether the author follows the engager is drawn (more likely for pairs
/// with a high latent affinity). Each engagement type
/// k ∈ {reply, retweet, retweet with comment, like} then has
///
///     logit_k = bias_k + shared + 0.5·g_k(engager) + typeEffect[k][tweet type] + mediaEffect[k][media]
///     shared  = 0.8·g(engager) + 0.5·g(author) + 0.5·g(tweet) + Σ_h 0.4·g(h)/√n_h
///             − 0.12·(log1p(author followers) − 7.5) + 0.06·(log1p(engager following) − 5.5)
///             − 0.05·(log1p(engager followers) − 5.5) + 0.3·verified(author) + 0.9·follows
///             + 0.5·g(media × language)                                      ┐
///             + (0.7 if the tweet's language is the engager's, else −0.2)    ├ interactions
///             + 0.6·⟨u(engager), v(author)⟩/2   (4-dim latent vectors)       │
///             + 1.0 if the tweet's topic is the engager's taste                ┘
///     engaged_k ~ Bernoulli(logistic(logit_k)), independently given the row
///
/// where each `g` is a hash-derived value of mean 0 and variance 1. The label of the challenge's
/// "any engagement" task has true probability `1 − Π_k (1 − p_k)`.
// NOTE: the topics give retrieval something to find. Without them, which tweets a user engages
// with is mostly which tweets were shown (popularity, independent of the user), so no model beat
// the most-popular baseline's recall; with them a user's positives concentrate on their taste. `bias_k` is calibrated on a
/// pilot sample so that type k's positive rate is `targetRates[k]`.
struct PlantedEngagementModel: Sendable {
    static let engagementCount = 4
    /// Positive rates of reply, retweet, retweet with comment, like (any ≈ 29 %).
    static let targetRates: [Double] = [0.03, 0.075, 0.009, 0.21]
    static let languageCount = 66
    static let vocabularySize = 119_547
    static let latentDim = 4
    /// Tweet topics = user tastes.
    static let topicCount = 8
    /// Share of a user's rows whose tweet is drawn from their taste topic.
    static let tasteExposure = 0.6
    /// Logit of every engagement type when the tweet's topic is the engager's taste.
    static let tasteEffect = 1.0
    /// 2021-02-04 00:00 UTC: the first tweet timestamp; tweets span three weeks.
    static let windowStart = 1_612_396_800
    static let windowSeconds = 21 * 86_400

    // Per-type effects: rows reply, retweet, retweet with comment, like.
    /// Columns TopLevel, Retweet, Quote.
    static let typeEffect: [[Double]] = [[0.3, -0.6, 0.1], [0, 0.2, 0], [0.1, -0.3, 0.3], [0.1, -0.2, 0]]
    /// Columns none, Photo, Video, GIF.
    static let mediaEffect: [[Double]] = [[0.1, -0.1, -0.2, 0], [-0.1, 0.1, 0.3, 0.2], [0, 0, 0.1, 0], [-0.1, 0.2, 0.1, 0.3]]
    /// Median engagement delay is `exp(delayMu[k])` seconds.
    static let delayMu: [Double] = [7.5, 7.0, 7.5, 6.8]

    let seed: UInt64
    let users: Int
    let tweets: Int
    let hashtagPool: Int
    let domainPool: Int

    let authorZipf: ZipfSampler
    let engagerZipf: ZipfSampler
    let tweetZipf: ZipfSampler
    let hashtagZipf: ZipfSampler
    let domainZipf: ZipfSampler
    let languageZipf: ZipfSampler
    let tokenZipf: ZipfSampler
    /// Engager rank = (engagerMultiplier·(r − 1) + engagerOffset) mod users + 1, a bijection.
    let engagerMultiplier: Int
    let engagerOffset: Int

    let salt: Salts
    var bias: [Double] = Array(repeating: 0, count: engagementCount)

    struct Salts: Sendable {
        var user, tweet, hashtag, domain, language, token, link: UInt64
        var engagerEffect, authorEffect, tweetEffect, hashtagEffect, mediaLanguage: UInt64
        var engagerVector, authorVector, follows, engagerType, taste: UInt64

        init(seed: UInt64) {
            func s(_ k: UInt64) -> UInt64 { mix64(seed ^ mix64(0x2021_0000 &+ k)) }
            user = s(1); tweet = s(2); hashtag = s(3); domain = s(4); language = s(5); token = s(6); link = s(7)
            engagerEffect = s(10); authorEffect = s(11); tweetEffect = s(12); hashtagEffect = s(13); mediaLanguage = s(14)
            engagerVector = s(20); authorVector = s(21); follows = s(22); engagerType = s(23); taste = s(24)
        }
    }

    init(seed: UInt64, rows: Int, users userPool: Int? = nil, tweets tweetPool: Int? = nil) {
        self.seed = seed
        // NOTE: pools scale with the row count so that every size repeats users and tweets about as
        // often (the real challenge has ≈ 3 rows per user and ≈ 2 per tweet), unless given.
        users = userPool ?? max(1000, rows / 4)
        tweets = tweetPool ?? max(1000, rows / 2)
        hashtagPool = max(200, rows / 40)
        domainPool = max(100, min(50_000, rows / 200))
        authorZipf = ZipfSampler(n: users, exponent: 1.1, offset: 10)
        engagerZipf = ZipfSampler(n: users, exponent: 1.1, offset: 30)
        tweetZipf = ZipfSampler(n: tweets, exponent: 0.95, offset: 30)
        hashtagZipf = ZipfSampler(n: hashtagPool, exponent: 1.1, offset: 5)
        domainZipf = ZipfSampler(n: domainPool, exponent: 1.25)
        languageZipf = ZipfSampler(n: Self.languageCount, exponent: 1.6)
        tokenZipf = ZipfSampler(n: Self.vocabularySize - 1000, exponent: 1.1)
        salt = Salts(seed: seed)
        var a = Int(mix64(seed ^ 0xA11CE) % UInt64(users))
        while a == 0 || gcd(a, users) != 1 { a = (a + 1) % users }
        engagerMultiplier = a
        engagerOffset = Int(mix64(seed ^ 0x0FF5E7) % UInt64(users))
        bias = calibrateBias()
    }

    // MARK: Entities

    struct User {
        var rank = 0
        var id: (UInt64, UInt64) = (0, 0)
        var followers = 0
        var following = 0
        var verified = false
        var creation = 0
        var language = 0
    }

    /// User `rank` (1-based) of the pool.
    func user(_ rank: Int, into u: inout User) {
        var rng = SplitMix64(seed: mix64(salt.user ^ UInt64(rank)))
        u.rank = rank
        u.id = (rng.next(), rng.next())
        // 1 for the most followed user, 0 for the least.
        let popularity = 1 - log(Double(rank)) / log(Double(users))
        let z = Double(rng.nextGaussian())
        let logFollowers = 4.5 + 1.5 * z + 11 * popularity * popularity
        u.followers = Int(min(exp(logFollowers), 2e8))
        u.following = Int(min(exp(5.5 + 1.1 * Double(rng.nextGaussian()) + 0.3 * z), 5e6))
        u.verified = rng.nextDouble() < logistic(logFollowers - 13.5)
        let span = Double(Self.windowStart - 5 * 86_400 - 1_142_000_000)
        u.creation = 1_142_000_000 + Int(span * pow(rng.nextDouble(), 1 + 2 * popularity))
        u.language = languageZipf.rank(rng.nextDouble()) - 1
    }

    struct Tweet {
        var rank = 0
        var id: (UInt64, UInt64) = (0, 0)
        var author = 0
        var language = 0
        /// 0 none, 1 Photo, 2 Video, 3 GIF.
        var media = 0
        var mediaCount = 0
        /// 0 TopLevel, 1 Retweet, 2 Quote.
        var type = 0
        var timestamp = 0
        var hashtags: [Int] = []
        var domains: [Int] = []
        var tokenSeed: UInt64 = 0
        var tokenCount = 0
    }

    /// Tweet `rank` (1-based) of the pool; its author's language is needed for the tweet's.
    func tweet(_ rank: Int, into t: inout Tweet, author: inout User) {
        var rng = SplitMix64(seed: mix64(salt.tweet ^ UInt64(rank)))
        t.rank = rank
        t.id = (rng.next(), rng.next())
        t.author = writer(near: authorZipf.rank(rng.nextDouble()), topic: topic(ofTweet: rank))
        user(t.author, into: &author)
        t.language = rng.nextDouble() < 0.85 ? author.language : languageZipf.rank(rng.nextDouble()) - 1
        let m = rng.nextDouble()
        (t.media, t.mediaCount) = m < 0.55 ? (0, 0) : m < 0.88 ? (1, rng.nextDouble() < 0.8 ? 1 : 2 + Int(rng.next() % 3)) : m < 0.98 ? (2, 1) : (3, 1)
        let k = rng.nextDouble()
        t.type = k < 0.58 ? 0 : k < 0.92 ? 1 : 2
        t.timestamp = Self.windowStart + Int(rng.next() % UInt64(Self.windowSeconds))
        t.hashtags.removeAll(keepingCapacity: true)
        let h = rng.nextDouble()
        let hashtagCount = h < 0.72 ? 0 : h < 0.87 ? 1 : h < 0.94 ? 2 : h < 0.98 ? 3 : 4 + Int(rng.next() % 4)
        for _ in 0..<hashtagCount { t.hashtags.append(Self.moved(hashtagZipf.rank(rng.nextDouble()), to: topic(ofTweet: rank), pool: hashtagPool)) }
        t.domains.removeAll(keepingCapacity: true)
        let l = rng.nextDouble()
        let linkCount = l < 0.84 ? 0 : l < 0.98 ? 1 : 2
        for _ in 0..<linkCount { t.domains.append(domainZipf.rank(rng.nextDouble())) }
        t.tokenSeed = rng.next()
        t.tokenCount = min(200, 4 + Int(exp(3.1 + 0.6 * Double(rng.nextGaussian()))))
    }

    /// Topic of tweet `rank` (1-based), in 0 ..< topicCount.
    @inline(__always)
    func topic(ofTweet rank: Int) -> Int { (rank - 1) % Self.topicCount }

    /// Taste topic of user `rank` (1-based), in 0 ..< topicCount.
    @inline(__always)
    func taste(ofUser rank: Int) -> Int { Int(mix64(salt.taste ^ UInt64(rank)) % UInt64(Self.topicCount)) }

    /// The first user from `rank` on (cyclically, at most 16·topicCount steps; else `rank`) whose taste is `topic`.
    func writer(near rank: Int, topic: Int) -> Int {
        var a = rank
        for _ in 0..<(16 * Self.topicCount) {
            if taste(ofUser: a) == topic { return a }
            a = a % users + 1
        }
        return rank
    }

    /// Rank `rank` of a pool of `pool` moved into `topic` (rank ≡ topic + 1 mod topicCount) within its
    /// tier of `topicCount` ranks (a tier past the pool's end moves one tier down).
    @inline(__always)
    static func moved(_ rank: Int, to topic: Int, pool: Int) -> Int {
        let r = (rank - 1) / topicCount * topicCount + topic + 1
        return r <= pool ? r : max(1, r - topicCount)
    }

    /// The BERT token id of token `index` of a tweet (index 0 is [CLS] = 101, the last [SEP] = 102).
    @inline(__always)
    func token(seed tokenSeed: UInt64, index: Int, count: Int) -> Int {
        if index == 0 { return 101 }
        if index == count - 1 { return 102 }
        let u = Double(mix64(tokenSeed &+ UInt64(index)) >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let r = tokenZipf.rank(u)
        return 1000 + Int(mix64(salt.token ^ UInt64(r)) % UInt64(Self.vocabularySize - 1000))
    }

    /// The 128-bit id of hashtag `rank`, domain `rank`, language `index`, or link `i` of tweet `rank`.
    func hashtagID(_ rank: Int) -> (UInt64, UInt64) { (mix64(salt.hashtag ^ UInt64(rank)), mix64(salt.hashtag &+ UInt64(rank))) }
    func domainID(_ rank: Int) -> (UInt64, UInt64) { (mix64(salt.domain ^ UInt64(rank)), mix64(salt.domain &+ UInt64(rank))) }
    func languageID(_ index: Int) -> (UInt64, UInt64) { (mix64(salt.language ^ UInt64(index)), mix64(salt.language &+ UInt64(index))) }
    func linkID(tweet rank: Int, _ i: Int) -> (UInt64, UInt64) {
        let k = UInt64(rank) &* 8 &+ UInt64(i)
        return (mix64(salt.link ^ k), mix64(salt.link &+ k))
    }

    // MARK: Rows

    /// One generated row: its entities and per-type logits (without bias).
    struct Row {
        var tweet = Tweet()
        var author = User()
        var engager = User()
        var follows = false
        var logits: [Double] = Array(repeating: 0, count: PlantedEngagementModel.engagementCount)
        /// The part of every logit from the interaction terms.
        var interaction = 0.0
    }

    /// Draws the tweet, the engaging user and the logits of one row.
    func draw(_ rng: inout SplitMix64, into row: inout Row) {
        let r0 = engagerZipf.rank(rng.nextDouble()) - 1
        var e = (engagerMultiplier &* r0 &+ engagerOffset) % users + 1
        var t0 = tweetZipf.rank(rng.nextDouble())
        if rng.nextDouble() < Self.tasteExposure { t0 = Self.moved(t0, to: taste(ofUser: e), pool: tweets) }
        tweet(t0, into: &row.tweet, author: &row.author)
        if e == row.tweet.author { e = e % users + 1 }
        user(e, into: &row.engager)
        let t = row.tweet, a = row.author, g = row.engager
        let ea = UInt64(a.rank), ee = UInt64(e)

        var dot = 0.0
        for k in 1...Self.latentDim {
            dot += 3 * unit(salt.engagerVector, ee, UInt64(k)) * unit(salt.authorVector, ea, UInt64(k))
        }
        let affinity = dot / 2
        let followHash = Double(mix64(salt.follows ^ mix64(ea &* 0x9E37_79B9_7F4A_7C15 ^ ee)) >> 11) * (1.0 / 9_007_199_254_740_992.0)
        row.follows = followHash < logistic(-1.0 + 1.2 * affinity)

        var shared = 0.8 * normalish(salt.engagerEffect, ee) + 0.5 * normalish(salt.authorEffect, ea)
            + 0.5 * normalish(salt.tweetEffect, UInt64(t.rank))
        if !t.hashtags.isEmpty {
            var h = 0.0
            for tag in t.hashtags { h += normalish(salt.hashtagEffect, UInt64(tag)) }
            shared += 0.4 * h / Double(t.hashtags.count).squareRoot()
        }
        shared += -0.12 * (log1p(Double(a.followers)) - 6.5) + 0.06 * (log1p(Double(g.following)) - 5.5)
            - 0.05 * (log1p(Double(g.followers)) - 5.5)
        if a.verified { shared += 0.3 }
        if row.follows { shared += 0.9 }
        let interaction = 0.5 * normalish(salt.mediaLanguage, UInt64(t.media * Self.languageCount + t.language))
            + (t.language == g.language ? 0.7 : -0.2) + 0.6 * affinity
            + (topic(ofTweet: t.rank) == taste(ofUser: e) ? Self.tasteEffect : 0)
        row.interaction = interaction
        for k in 0..<Self.engagementCount {
            row.logits[k] = shared + interaction + 0.5 * normalish(salt.engagerType &+ UInt64(k), ee)
                + Self.typeEffect[k][t.type] + Self.mediaEffect[k][t.media]
        }
    }

    /// Biases giving `targetRates` on a 20k-row pilot sample (bisection per type; deterministic).
    private func calibrateBias() -> [Double] {
        var rng = SplitMix64(seed: mix64(seed ^ 0xB1A5_2021))
        var row = Row()
        var logits = [[Double]](repeating: [], count: Self.engagementCount)
        for _ in 0..<20000 {
            draw(&rng, into: &row)
            for k in 0..<Self.engagementCount { logits[k].append(row.logits[k]) }
        }
        return (0..<Self.engagementCount).map { k in
            var lo = -20.0, hi = 10.0
            for _ in 0..<60 {
                let mid = (lo + hi) / 2
                let rate = logits[k].reduce(0) { $0 + logistic($1 + mid) } / Double(logits[k].count)
                if rate < Self.targetRates[k] { lo = mid } else { hi = mid }
            }
            return (lo + hi) / 2
        }
    }
}

/// Inverse-CDF sampling of a rank in 1…n from a continuous Zipf–Mandelbrot law, density
/// ∝ (x + offset)^−exponent (exponent ≠ 1); the offset flattens the head so that the top rank
/// does not take a large share of all draws.
struct ZipfSampler: Sendable {
    let n: Int
    let offset: Double
    let low: Double
    let span: Double
    let inverse: Double

    init(n: Int, exponent s: Double, offset: Double = 0) {
        precondition(s != 1 && n >= 1 && offset >= 0)
        self.n = n
        self.offset = offset
        let a = 1 - s
        low = pow(1 + offset, a)
        span = pow(Double(n) + 1 + offset, a) - low
        inverse = 1 / a
    }

    /// The rank for a uniform `u` in [0, 1).
    @inline(__always)
    func rank(_ u: Double) -> Int { min(n, max(1, Int(pow(low + u * span, inverse) - offset))) }
}

/// A hash of `(salt, key)` with mean 0 and variance 1 (a sum of three uniforms; roughly normal).
@inline(__always)
func normalish(_ salt: UInt64, _ key: UInt64) -> Double {
    unit(salt, key, 1) + unit(salt, key, 2) + unit(salt, key, 3)
}

@inline(__always)
func logistic(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

private func gcd(_ a: Int, _ b: Int) -> Int {
    var (x, y) = (a, b)
    while y != 0 { (x, y) = (y, x % y) }
    return x
}
