import Foundation
import GRPCCore
import HerdFeatures
import HerdGRPC
import HerdServing
import HerdTestSupport
import HerdTraining
import XCTest

/// Each service over a real HTTP/2 loopback connection answers what the in-process pieces answer.
final class GRPCServicesTests: XCTestCase {
    nonisolated(unsafe) static var fixture: RecommenderFixture?

    func shared() throws -> RecommenderFixture {
        if let f = Self.fixture { return f }
        let f = try RecommenderFixture.make()
        Self.fixture = f
        return f
    }

    override class func tearDown() {
        fixture?.remove()
        fixture = nil
        super.tearDown()
    }

    func testRecommendOverGRPCEqualsInProcess() async throws {
        let f = try shared()
        let rec = try Recommender.load(workspace: f.workspace)
        let s = try await GRPCTestServer(services: LocalServices.all(recommender: rec, admin: AdminToken(nil)))
        let client = Herd_V1_Recommender.Client(wrapping: s.client)
        for user in f.userIDs.prefix(4) {
            var request = Herd_V1_RecommendRequest()
            request.userID = user
            request.k = 7
            request.canK = 40
            let remote = try await client.recommend(request)
            let local = try await onThread { try rec.recommend(userID: user, k: 7, canK: 40) }
            XCTAssertEqual(remote.ids, local.ids)
            XCTAssertEqual(remote.probs, local.probs)
            XCTAssertEqual(remote.source, .ranked)
            XCTAssertFalse(remote.coldStart || remote.degraded)
            XCTAssertEqual(remote.candidates, 40)
            XCTAssertGreaterThan(remote.timings.totalMs, 0)
        }
        // Defaults: k 10, can_k 50.
        var d = Herd_V1_RecommendRequest()
        d.userID = f.userIDs[0]
        let defaults = try await client.recommend(d)
        let first = f.userIDs[0]
        let local = try await onThread { try rec.recommend(userID: first, k: 10, canK: 50) }
        XCTAssertEqual(defaults.ids, local.ids)

        var unknown = Herd_V1_RecommendRequest()
        unknown.userID = 987_654_321
        unknown.k = 3
        let cold = try await client.recommend(unknown)
        XCTAssertTrue(cold.coldStart)
        XCTAssertEqual(cold.source, .popular)
        let localCold = try await onThread { try rec.recommend(userID: 987_654_321, k: 3, canK: 50) }
        XCTAssertEqual(cold.ids, localCold.ids)
        XCTAssertEqual(cold.probs, localCold.probs)
        XCTAssertEqual(cold.probs, cold.probs.sorted(by: >))

        for (k, canK) in [(-1, 10), (5000, 6000), (20, 10), (5, 20_000)] as [(Int32, Int32)] {
            var bad = Herd_V1_RecommendRequest()
            bad.userID = f.userIDs[0]
            bad.k = k
            bad.canK = canK
            let code = await statusCode { try await client.recommend(bad) }
            XCTAssertEqual(code, .invalidArgument, "k \(k) canK \(canK)")
        }
        await s.stop()
    }

    /// `id_type = ID_TYPE_RAW`: raw user in → the encoded user's answer, with raw item ids out
    /// (Recommender, Recall, Feature, Ranking candidates), as HTTP's `idType=raw`.
    func testRawIDsMapThroughThePipeline() async throws {
        let f = try shared()
        let rec = try Recommender.load(workspace: f.workspace)
        let ids = try XCTUnwrap(try RawIDs.load(workspace: f.workspace))
        let s = try await GRPCTestServer(services: LocalServices.all(recommender: rec, admin: AdminToken(nil), rawIDs: { ids }))
        let recommender = Herd_V1_Recommender.Client(wrapping: s.client)
        let recall = Herd_V1_Recall.Client(wrapping: s.client)
        let feature = Herd_V1_Feature.Client(wrapping: s.client)
        for user in f.userIDs.prefix(3) {
            let raw = try XCTUnwrap(ids.rawUser(user))
            XCTAssertNotEqual(raw, String(user))
            var request = Herd_V1_RecommendRequest()
            request.idType = .raw
            request.rawUserID = raw
            request.userID = 987_654_321  // ignored for a raw request
            request.k = 6
            request.canK = 30
            let answer = try await recommender.recommend(request)
            let local = try await onThread { try rec.recommend(userID: user, k: 6, canK: 30) }
            XCTAssertEqual(answer.ids, local.ids)
            XCTAssertEqual(answer.probs, local.probs)
            XCTAssertEqual(answer.encodedUserID, user)
            XCTAssertEqual(answer.rawIds.count, answer.ids.count)
            for (raw, id) in zip(answer.rawIds, answer.ids) {
                XCTAssertEqual(ids.itemID(raw: raw), id, "raw item id \(raw) maps back to \(id)")
                XCTAssertNotEqual(raw, String(id))
            }

            var search = Herd_V1_SearchRequest()
            search.idType = .raw
            search.rawUserID = raw
            search.k = 12
            var byEncoded = Herd_V1_SearchRequest()
            byEncoded.userID = user
            byEncoded.k = 12
            let found = try await recall.search(search), expected = try await recall.search(byEncoded)
            XCTAssertEqual(found.ids, expected.ids)
            XCTAssertEqual(found.rawIds, ids.rawItems(expected.ids))
            XCTAssertTrue(expected.rawIds.isEmpty, "encoded requests get no raw ids")
        }
        // Encoded stays the default: no raw ids in the answer.
        var plain = Herd_V1_RecommendRequest()
        plain.userID = f.userIDs[0]
        let plainAnswer = try await recommender.recommend(plain)
        XCTAssertTrue(plainAnswer.rawIds.isEmpty)
        XCTAssertEqual(plainAnswer.encodedUserID, f.userIDs[0])

        // A raw id the pipeline does not know: a new user (cold start), NOT_FOUND for recall.
        var unknown = Herd_V1_RecommendRequest()
        unknown.idType = .raw
        unknown.rawUserID = "not-a-known-user-id"
        let cold = try await recommender.recommend(unknown)
        XCTAssertTrue(cold.coldStart)
        XCTAssertEqual(cold.encodedUserID, 0)
        XCTAssertEqual(cold.rawIds.count, cold.ids.count)
        var unknownSearch = Herd_V1_SearchRequest()
        unknownSearch.idType = .raw
        unknownSearch.rawUserID = "not-a-known-user-id"
        unknownSearch.k = 3
        let notFound = await statusCode { try await recall.search(unknownSearch) }
        XCTAssertEqual(notFound, .notFound)
        var empty = unknown
        empty.rawUserID = ""
        let emptyCode = await statusCode { try await recommender.recommend(empty) }
        XCTAssertEqual(emptyCode, .invalidArgument)
        var strange = plain
        strange.idType = .UNRECOGNIZED(7)
        let strangeCode = await statusCode { try await recommender.recommend(strange) }
        XCTAssertEqual(strangeCode, .invalidArgument)

        // Feature rows by raw ids equal the rows by encoded ids; an unknown raw id is a miss.
        for kind in [EntityKind.user, .item] {
            let encoded = kind == .user ? Array(f.userIDs.prefix(4)) : Array(f.itemIDs.prefix(4))
            var byRaw = Herd_V1_FeatureIDs()
            byRaw.idType = .raw
            byRaw.rawIds = encoded.map { (kind == .user ? ids.rawUser($0) : ids.rawItem($0))! } + ["not-known"]
            var byEncoded = Herd_V1_FeatureIDs()
            byEncoded.ids = encoded + [0]
            let a = kind == .user ? try await feature.getUserFeatures(byRaw) : try await feature.getItemFeatures(byRaw)
            let b = kind == .user ? try await feature.getUserFeatures(byEncoded) : try await feature.getItemFeatures(byEncoded)
            XCTAssertEqual(a.ids, encoded + [0], "\(kind)")
            XCTAssertEqual(a.found, [true, true, true, true, false], "\(kind)")
            XCTAssertEqual(a.table, b.table, "\(kind)")
            XCTAssertEqual(a.rawIds, byRaw.rawIds, "\(kind)")
        }

        // Ranking.Score(candidates) by raw ids equals the scores by encoded ids; unknown raw ids
        // are encoded 0 (a new user, an item without a row), as the Feature service reads them.
        let ranking = Herd_V1_Ranking.Client(wrapping: s.client)
        let items = Array(f.itemIDs.prefix(9))
        for (rawUser, rawItems, user, encodedItems) in [
            (ids.rawUser(f.userIDs[2])!, items.map { ids.rawItem($0)! }, f.userIDs[2], items),
            ("not-a-known-user-id", items.map { ids.rawItem($0)! } + ["not-known"], Int64(0), items + [0]),
        ] {
            var byRaw = Herd_V1_ScoreRequest(), byEncoded = Herd_V1_ScoreRequest()
            var c = Herd_V1_Candidates()
            c.idType = .raw
            c.rawUserID = rawUser
            c.rawItemIds = rawItems
            c.userID = 987_654_321  // ignored for a raw request
            byRaw.candidates = c
            var e = Herd_V1_Candidates()
            e.userID = user
            e.itemIds = encodedItems
            byEncoded.candidates = e
            let a = try await ranking.score(byRaw), b = try await ranking.score(byEncoded)
            XCTAssertEqual(a.probs.count, rawItems.count)
            XCTAssertEqual(a.probs, b.probs, "raw user \(rawUser)")
        }
        var emptyRaw = Herd_V1_ScoreRequest()
        var ec = Herd_V1_Candidates()
        ec.idType = .raw
        ec.rawItemIds = [ids.rawItem(items[0])!]
        emptyRaw.candidates = ec
        let emptyRawCode = await statusCode { try await ranking.score(emptyRaw) }
        XCTAssertEqual(emptyRawCode, .invalidArgument, "an empty raw user id")
        await s.stop()

        // Without a mapping, raw requests are refused with a clear INVALID_ARGUMENT.
        let bare = try await GRPCTestServer(services: LocalServices.all(recommender: rec, admin: AdminToken(nil)))
        var raw = Herd_V1_RecommendRequest()
        raw.idType = .raw
        raw.rawUserID = try XCTUnwrap(ids.rawUser(f.userIDs[0]))
        let refused = await statusCode { try await Herd_V1_Recommender.Client(wrapping: bare.client).recommend(raw) }
        XCTAssertEqual(refused, .invalidArgument)
        var rawScore = Herd_V1_ScoreRequest()
        var rc = Herd_V1_Candidates()
        rc.idType = .raw
        rc.rawUserID = raw.rawUserID
        rc.rawItemIds = [try XCTUnwrap(ids.rawItem(f.itemIDs[0]))]
        rawScore.candidates = rc
        let refusedScore = await statusCode { try await Herd_V1_Ranking.Client(wrapping: bare.client).score(rawScore) }
        XCTAssertEqual(refusedScore, .invalidArgument, "raw candidates without a mapping")
        await bare.stop()
    }

    func testRecallSearchEqualsTheIndex() async throws {
        let f = try shared()
        let rec = try Recommender.load(workspace: f.workspace)
        let context = try XCTUnwrap(rec.context)
        let s = try await GRPCTestServer(services: LocalServices.all(recommender: rec, admin: AdminToken(nil)))
        let client = Herd_V1_Recall.Client(wrapping: s.client)
        let user = f.userIDs[3]
        let query = Array(try XCTUnwrap(context.userEmbeddings.vector(of: user)))
        let expected = try context.index.search(query, k: 25)

        var byUser = Herd_V1_SearchRequest()
        byUser.userID = user
        byUser.k = 25
        let r1 = try await client.search(byUser)
        XCTAssertEqual(r1.ids, expected.ids)
        XCTAssertEqual(r1.scores, expected.scores)
        XCTAssertEqual(r1.metric, .innerProduct)

        var byVector = Herd_V1_SearchRequest()
        var v = Herd_V1_Vector()
        v.values = query
        byVector.vector = v
        byVector.k = 25
        let r2 = try await client.search(byVector)
        XCTAssertEqual(r2.ids, expected.ids)

        let info = try await client.info(Herd_V1_RecallInfoRequest())
        XCTAssertEqual(Int(info.dimension), f.dimension)
        XCTAssertEqual(Int(info.count), context.index.count)
        XCTAssertEqual(Int(info.users), context.userEmbeddings.count)

        var unknown = Herd_V1_SearchRequest()
        unknown.userID = 987_654_321
        unknown.k = 5
        let notFound = await statusCode { try await client.search(unknown) }
        XCTAssertEqual(notFound, .notFound)
        var zeroK = byUser
        zeroK.k = 0
        var hugeK = byUser
        hugeK.k = 1_000_000
        var shortVector = byVector
        shortVector.vector.values = [1, 2]
        var nanVector = byVector
        nanVector.vector.values[0] = .nan
        var noQuery = Herd_V1_SearchRequest()
        noQuery.k = 5
        for bad in [zeroK, hugeK, shortVector, nanVector, noQuery] {
            let code = await statusCode { try await client.search(bad) }
            XCTAssertEqual(code, .invalidArgument, "\(bad)")
        }
        await s.stop()
    }

    func testFeatureRowsEqualTheStore() async throws {
        let f = try shared()
        let rec = try Recommender.load(workspace: f.workspace)
        let store = try XCTUnwrap(rec.context).store
        let s = try await GRPCTestServer(services: LocalServices.all(recommender: rec, admin: AdminToken(nil)))
        let client = Herd_V1_Feature.Client(wrapping: s.client)
        let schemas = try await client.getSchemas(Herd_V1_SchemasRequest())
        XCTAssertTrue(schemas.healthy)
        XCTAssertEqual(schemas.user.keyColumn, rec.userSchema.keyColumn)
        XCTAssertEqual(schemas.item.fields.map(\.name), rec.itemSchema.fields.map(\.name))

        for (kind, ids) in [(EntityKind.user, Array(f.userIDs.prefix(5)) + [987_654_321]), (.item, [987_654_321] + Array(f.itemIDs.suffix(30)))] {
            var request = Herd_V1_FeatureIDs()
            request.ids = ids
            let remote = kind == .user ? try await client.getUserFeatures(request) : try await client.getItemFeatures(request)
            let local = try store.get(kind: kind, ids: ids)
            XCTAssertEqual(remote.ids, ids)
            XCTAssertEqual(remote.found, local.found)
            XCTAssertEqual(local.missCount, 1)
            XCTAssertEqual(remote.table.columns.map(\.name), local.schema.fields.map(\.name))
            // Every value, typed: the table of the message equals the store's rows as a table.
            let table = try local.table()
            for column in remote.table.columns {
                let expected = try table.column(column.name)
                switch expected.type {
                case .int64: XCTAssertEqual(column.int64Values, expected.int64Values, column.name)
                case .double: XCTAssertEqual(column.doubleValues, expected.doubleValues, column.name)
                default: XCTAssertFalse(column.int64Values.isEmpty && column.doubleValues.isEmpty && column.stringValues.isEmpty && column.listOffsets.isEmpty, column.name)
                }
                XCTAssertEqual(column.nulls.isEmpty ? [Bool](repeating: false, count: ids.count) : column.nulls,
                               (0..<ids.count).map(expected.isNull), column.name)
            }
        }
        let empty = await statusCode { try await client.getItemFeatures(Herd_V1_FeatureIDs()) }
        XCTAssertEqual(empty, .invalidArgument)
        var tooMany = Herd_V1_FeatureIDs()
        tooMany.ids = [Int64](repeating: 1, count: FeatureService.maxIDs + 1)
        let many = await statusCode { try await client.getItemFeatures(tooMany) }
        XCTAssertEqual(many, .invalidArgument)
        await s.stop()
    }

    func testRankingScoresEqualTheInProcessModel() async throws {
        let f = try shared()
        let rec = try Recommender.load(workspace: f.workspace)
        let context = try XCTUnwrap(rec.context)
        let s = try await GRPCTestServer(services: LocalServices.all(recommender: rec, admin: AdminToken(nil)))
        let client = Herd_V1_Ranking.Client(wrapping: s.client)
        let user = f.userIDs[5]
        let items = Array(f.itemIDs.prefix(70))
        let reference = try f.referenceProbabilities(user: user, items: items)
        let rows = try await onThread { try LocalFeatures(store: context.store).rows(userID: user, items: items, deadline: .now + .seconds(5)) }
        let table = try rec.rankingInput.table(userID: user, user: rows.user, items: rows.items)

        var byRows = Herd_V1_ScoreRequest()
        byRows.rows = Herd_V1_Table(table)
        let scored = try await client.score(byRows)
        XCTAssertEqual(scored.probs.count, items.count)
        for (id, p) in zip(items, scored.probs) { XCTAssertEqual(p, reference[id]!, accuracy: 1e-5, "item \(id)") }

        var byCandidates = Herd_V1_ScoreRequest()
        var c = Herd_V1_Candidates()
        c.userID = user
        c.itemIds = items
        byCandidates.candidates = c
        let scored2 = try await client.score(byCandidates)
        XCTAssertEqual(scored2.probs, scored.probs)

        let info = try await client.info(Herd_V1_RankingInfoRequest())
        XCTAssertEqual(info.kind, "wnd")
        XCTAssertEqual(info.sparse.map(\.name) + info.dense, rec.rankingSpec.columns)
        XCTAssertFalse(info.labels.isEmpty)

        // A missing column, a column of the wrong type, values that do not match the row count,
        // a list column without offsets, no input.
        var missing = byRows
        missing.rows.columns.removeLast()
        var wrongType = byRows
        let sparseName = rec.rankingSpec.sparse[0].name
        let i = try XCTUnwrap(wrongType.rows.columns.firstIndex { $0.name == sparseName })
        wrongType.rows.columns[i] = Herd_V1_Column(name: sparseName, Column(strings: [String?](repeating: "x", count: items.count)))
        var short = byRows
        short.rows.columns[0].int64Values.removeLast()
        short.rows.columns[0].doubleValues.removeLast(short.rows.columns[0].doubleValues.isEmpty ? 0 : 1)
        var badRows = byRows
        badRows.rows.rows = -4
        var untyped = byRows
        untyped.rows.columns[0].type = .unspecified
        for (name, bad) in [("missing", missing), ("wrong type", wrongType), ("short", short), ("rows", badRows), ("untyped", untyped),
                            ("empty", Herd_V1_ScoreRequest())] {
            let code = await statusCode { try await client.score(bad) }
            XCTAssertEqual(code, .invalidArgument, name)
        }
        await s.stop()
    }

    /// Split mode: a ranking service given `ranking.feature_address` scores candidates (a user and
    /// item ids) with rows it fetches from the Feature service; without one, the clear
    /// FAILED_PRECONDITION.
    func testSplitRankingWithAFeatureAddressScoresCandidates() async throws {
        let f = try shared()
        let rec = try Recommender.load(workspace: f.workspace)
        let features = try await GRPCTestServer(services: [FeatureService(store: try XCTUnwrap(rec.context).store)])
        var config = SplitConfig(workspace: f.workspace.root.path)
        config.ranking = .init(featureAddress: "127.0.0.1:\(features.port)")
        try config.validate()
        let client = features.client, frozen = config
        let (service, lines) = try await onThread { () -> (RankingService, [String]) in
            var lines: [String] = []
            let s = try SplitServices.ranking(frozen, features: client, log: { lines.append($0) })
            return (s, lines)
        }
        XCTAssertTrue(lines.contains { $0.contains("feature service at 127.0.0.1:\(features.port)") }, "\(lines)")
        let ranking = try await GRPCTestServer(services: [service])
        let scorer = Herd_V1_Ranking.Client(wrapping: ranking.client)
        for user in f.userIDs.prefix(3) {
            let items = Array(f.itemIDs.shuffled().prefix(25))
            var request = Herd_V1_ScoreRequest()
            var c = Herd_V1_Candidates()
            c.userID = user
            c.itemIds = items
            request.candidates = c
            let scored = try await scorer.score(request)
            let reference = try f.referenceProbabilities(user: user, items: items)
            XCTAssertEqual(scored.probs.count, items.count)
            for (id, p) in zip(items, scored.probs) { XCTAssertEqual(p, reference[id]!, accuracy: 1e-5, "user \(user) item \(id)") }
        }
        await ranking.stop()
        await features.stop()

        // No feature address: candidates are refused, saying how to enable them.
        let root = f.workspace.root.path
        let bare = try await onThread { try SplitServices.ranking(SplitConfig(workspace: root), log: { _ in }) }
        let plain = try await GRPCTestServer(services: [bare])
        var candidates = Herd_V1_ScoreRequest()
        var c = Herd_V1_Candidates()
        c.userID = f.userIDs[0]
        c.itemIds = Array(f.itemIDs.prefix(3))
        candidates.candidates = c
        do {
            _ = try await Herd_V1_Ranking.Client(wrapping: plain.client).score(candidates)
            XCTFail("candidates scored without a feature backend")
        } catch let e as RPCError {
            XCTAssertEqual(e.code, .failedPrecondition)
            XCTAssertTrue(e.message.contains("feature_address"), e.message)
        }
        await plain.stop()

        // Only the ranking section takes a feature address; a bad address is refused at load.
        var misplaced = SplitConfig(workspace: f.workspace.root.path)
        misplaced.recall = .init(featureAddress: "127.0.0.1:1")
        XCTAssertThrowsError(try misplaced.validate())
        var bad = SplitConfig(workspace: f.workspace.root.path)
        bad.ranking = .init(featureAddress: "nowhere")
        XCTAssertThrowsError(try bad.validate())
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("herd-split-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(#"{"workspace": "/w", "feature": {"feature_address": "127.0.0.1:1"}}"#.utf8).write(to: file)
        XCTAssertThrowsError(try SplitConfig.load(path: file.path)) { XCTAssertTrue("\($0)".contains("feature.feature_address"), "\($0)") }
        try Data(#"{"workspace": "/w", "ranking": {"port": 0, "feature_address": "127.0.0.1:8982"}}"#.utf8).write(to: file)
        XCTAssertEqual(try SplitConfig.load(path: file.path).ranking?.featureAddress, "127.0.0.1:8982")
    }

    func testAddItemNeedsTheAdminToken() async throws {
        let f = try shared()
        // NOTE: its own recommender: the add changes the live index.
        let rec = try Recommender.load(workspace: f.workspace)
        let index = try XCTUnwrap(rec.context).index
        let saved = FileManager.default.temporaryDirectory.appendingPathComponent("herd-grpc-\(UUID().uuidString).index")
        defer { try? FileManager.default.removeItem(at: saved) }
        let s = try await GRPCTestServer(services: LocalServices.all(recommender: rec, admin: AdminToken("s3cret"), indexFile: saved))
        let client = Herd_V1_Recall.Client(wrapping: s.client)
        var add = Herd_V1_AddItemRequest()
        add.itemID = 424_242
        add.embedding = (0..<f.dimension).map { $0 == 0 ? 1 : 0 }
        let before = index.count

        let none = await statusCode { try await client.addItem(add) }
        XCTAssertEqual(none, .unauthenticated)
        let basic = await statusCode { try await client.addItem(add, metadata: ["authorization": "Basic s3cret"]) }
        XCTAssertEqual(basic, .unauthenticated)
        let wrong = await statusCode { try await client.addItem(add, metadata: ["authorization": "Bearer nope"]) }
        XCTAssertEqual(wrong, .permissionDenied)
        XCTAssertEqual(index.count, before, "refused adds change nothing")
        XCTAssertFalse(FileManager.default.fileExists(atPath: saved.path), "refused adds save nothing")

        var short = add
        short.embedding = [1]
        let badShape = await statusCode { try await client.addItem(short, metadata: ["authorization": "Bearer s3cret"]) }
        XCTAssertEqual(badShape, .invalidArgument)

        let added = try await client.addItem(add, metadata: ["authorization": "Bearer s3cret"])
        XCTAssertEqual(Int(added.indexCount), before + 1)
        var search = Herd_V1_SearchRequest()
        var v = Herd_V1_Vector()
        v.values = add.embedding
        search.vector = v
        search.k = 3
        let found = try await client.search(search)
        XCTAssertEqual(found.ids.first, 424_242)
        let reloaded = try loadIndex(from: saved)
        XCTAssertEqual(reloaded.count, before + 1, "the add is saved")
        XCTAssertEqual(try reloaded.search(add.embedding, k: 1).ids, [424_242])
        await s.stop()

        // A service without a token refuses every admin call.
        let open = try await GRPCTestServer(services: LocalServices.all(recommender: rec, admin: AdminToken(nil)))
        let refused = await statusCode { try await Herd_V1_Recall.Client(wrapping: open.client).addItem(add, metadata: ["authorization": "Bearer s3cret"]) }
        XCTAssertEqual(refused, .permissionDenied)
        await open.stop()
    }

    /// The split recommender (gRPC clients of Recall, Feature, Ranking) answers what the
    /// in-process one answers.
    func testRecommenderOverGRPCBackendsEqualsInProcess() async throws {
        let f = try shared()
        let rec = try Recommender.load(workspace: f.workspace)
        let s = try await GRPCTestServer(services: LocalServices.all(recommender: rec, admin: AdminToken(nil)))
        var config = SplitConfig(workspace: f.workspace.root.path)
        for role in [SplitRole.recall, .feature, .ranking] {
            switch role {
            case .recall: config.recall = .init(address: "127.0.0.1:\(s.port)")
            case .feature: config.feature = .init(address: "127.0.0.1:\(s.port)")
            default: config.ranking = .init(address: "127.0.0.1:\(s.port)")
            }
        }
        let client = s.client, frozen = config
        let remote = try await onThread {
            try SplitServices.recommender(frozen, recall: client, features: client, ranking: client, log: { _ in })
        }
        XCTAssertNil(remote.context)
        XCTAssertEqual(remote.missingRankingColumns, rec.missingRankingColumns)
        XCTAssertEqual(remote.popular.ids, rec.popular.ids)
        for user in f.userIDs.prefix(5) + [987_654_321] {
            let a = try await onThread { try remote.recommend(userID: user, k: 10, canK: 60) }
            let b = try await onThread { try rec.recommend(userID: user, k: 10, canK: 60) }
            XCTAssertEqual(a.ids, b.ids, "user \(user)")
            XCTAssertEqual(a.probs, b.probs, "user \(user)")
            XCTAssertEqual(a.source, b.source)
            XCTAssertEqual(a.coldStart, b.coldStart)
            XCTAssertFalse(a.degraded, a.reason ?? "")
        }
        XCTAssertEqual(remote.readiness, .ready)
        await s.stop()

        // The services gone: degraded or popular answers within the deadline, never a crash.
        let t0 = ContinuousClock.now
        let first = f.userIDs[0]
        let after = try await onThread { try remote.recommend(userID: first, k: 5, canK: 20, deadline: .now + .milliseconds(300)) }
        XCTAssertTrue(after.degraded, "\(after)")
        XCTAssertLessThan(ContinuousClock.now - t0, .seconds(3))
    }
}
