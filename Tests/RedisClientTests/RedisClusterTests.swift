import Foundation
import NIOCore
import NIOPosix
import RedisTestServer
import XCTest
@testable import RedisClient

/// The client against a real three-primary Redis Cluster (no replicas: nothing here fails
/// over), shared by the tests of this class; each test uses keys of its own.
final class RedisClusterTests: XCTestCase {
    nonisolated(unsafe) static var cluster: RedisTestCluster?
    var group: MultiThreadedEventLoopGroup!
    var client: RedisClient!

    var cluster: RedisTestCluster { Self.cluster! }

    static let configuration = RedisClient.Configuration(
        connectTimeout: .seconds(1), responseTimeout: .seconds(5),
        backoff: .init(initialDelayNanoseconds: 10_000_000, maximumDelayNanoseconds: 200_000_000)
    )

    override class func setUp() {
        super.setUp()
        Self.cluster = try? RedisTestCluster(primaries: 3, replicas: 0)
    }

    override class func tearDown() {
        Self.cluster?.stop()
        Self.cluster = nil
        super.tearDown()
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        if Self.cluster == nil {
            // The class's start failed: again, so that the test reports why.
            Self.cluster = try RedisTestCluster(primaries: 3, replicas: 0)
        }
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        self.client = RedisClient(url: try RedisURL(self.cluster.url), group: self.group, configuration: Self.configuration)
    }

    override func tearDownWithError() throws {
        _ = try? value(of: self.client.shutdown())
        try self.group?.syncShutdownGracefully()
        try super.tearDownWithError()
    }

    /// `errorstat_<kind>` of a node's `INFO errorstats`: the redirects it answered.
    func redirectsAnswered(_ kind: String, port: Int) throws -> Int {
        let stats = try self.cluster.cli(port, ["INFO", "errorstats"])
        guard let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("errorstat_\(kind):") }) else { return 0 }
        return Int(line.split(separator: "=").last ?? "") ?? 0
    }


    func totalRedirects(_ kind: String) throws -> Int {
        try self.cluster.ports.map { try self.redirectsAnswered(kind, port: $0) }.reduce(0, +)
    }

    func testEachCommandGoesToThePrimaryOfItsKeysSlot() throws {
        let loop = self.group.next()
        let keys = (0..<60).map { "route:\($0)" }
        let primaries = try self.cluster.primaries()
        XCTAssertEqual(Set(keys.map { ownerPort($0, primaries) }).count, 3, "the keys spread over every shard")
        XCTAssertEqual(try self.cluster.slot(of: keys[0]), RedisKeySlot.slot(of: keys[0]))
        // The first command reads the map; nothing is redirected after that.
        XCTAssertEqual(try value(of: self.client.send(on: loop, ["PING"])), .simpleString("PONG"))
        let movedBefore = try self.totalRedirects("MOVED")
        let writes = keys.map { self.client.send(on: loop, ["SET", $0, "v-\($0)"]) }
        XCTAssertEqual(Set(try value(of: EventLoopFuture.whenAllSucceed(writes, on: loop))), [.simpleString("OK")])
        XCTAssertEqual(try self.totalRedirects("MOVED"), movedBefore, "every command went where its slot lives")
        for primary in primaries {
            // Each owner holds exactly its keys (`KEYS` sees one node's).
            let owned = keys.filter { ownerPort($0, primaries) == primary.port }
            let stored = try self.cluster.cli(primary.port, ["KEYS", "route:*"]).split(separator: "\n").map(String.init)
            XCTAssertEqual(Set(stored), Set(owned))
            XCTAssertEqual(try self.cluster.cli(primary.port, ["GET", owned[0]]), "v-\(owned[0])")
        }
        // Binary arguments route alike; a keyless command goes to some primary.
        XCTAssertEqual(try value(of: self.client.send(on: loop, [Array("GET".utf8), Array("route:7".utf8)])), .bulk("v-route:7"))
        XCTAssertEqual(try value(of: self.client.send(on: loop, ["PUBLISH", "nobody", "x"])), .integer(0))
        let client = self.client!
        XCTAssertTrue(try value(of: loop.submit { client.isAvailable(on: loop) }))
    }

    func testASlotMigrationIsFollowedByAskThenByMovedWithOneMapRead() throws {
        let loop = self.group.next()
        let (first, second) = ("{migrating}:a", "{migrating}:b")
        XCTAssertEqual(try value(of: self.client.send(on: loop, ["SET", first, "1"])), .simpleString("OK"))
        XCTAssertEqual(try value(of: self.client.send(on: loop, ["SET", second, "2"])), .simpleString("OK"))
        let slot = try self.cluster.slot(of: first)
        let source = try self.cluster.primary(forSlot: slot)
        let target = try self.cluster.primaries().first { $0.id != source.id }!

        // Half-way: one key moved. The source answers ASK for it, the client asks the target.
        try self.cluster.beginMigration(slot: slot, from: source, to: target)
        try self.cluster.migrate(key: first, from: source, to: target)
        let asksBefore = try self.redirectsAnswered("ASK", port: source.port)
        XCTAssertEqual(try value(of: self.client.send(on: loop, ["GET", first])), .bulk("1"))
        XCTAssertEqual(try value(of: self.client.send(on: loop, ["GET", second])), .bulk("2"), "the key not moved yet stays where it was")
        XCTAssertEqual(try self.redirectsAnswered("ASK", port: source.port), asksBefore + 1)

        // Done: the source answers MOVED; the client reads the map once for a burst of them.
        try self.cluster.migrate(key: second, from: source, to: target)
        try self.cluster.finishMigration(slot: slot, to: target)
        // Past the client's cool-down between map reads (100 ms after the last one started, the
        // start-up read included): a burst inside it follows MOVED without reading the map.
        usleep(UInt32(RedisClusterClient.minimumRefreshInterval.nanoseconds / 1000) + 50_000)
        let mapsBefore = self.client.cluster!.mapsRead
        let movedBefore = try self.redirectsAnswered("MOVED", port: source.port)
        let client = self.client!
        let burst = try value(of: loop.submit { (0..<50).map { index in client.send(on: loop, ["GET", index.isMultiple(of: 2) ? first : second]) } })
        let replies = try value(of: EventLoopFuture.whenAllSucceed(burst, on: loop))
        XCTAssertEqual(replies, (0..<50).map { $0.isMultiple(of: 2) ? .bulk("1") : .bulk("2") })
        // The map is read beside the burst, which follows each MOVED without waiting for it:
        // its replies can all be in before the read completes.
        let readBy = Date().addingTimeInterval(2)
        while self.client.cluster!.mapsRead == mapsBefore, Date() < readBy { usleep(10_000) }
        let mapsRead = self.client.cluster!.mapsRead - mapsBefore
        XCTAssertGreaterThanOrEqual(mapsRead, 1)
        XCTAssertLessThanOrEqual(mapsRead, 2, "one map read for a burst of MOVED, not one per reply")
        // The new map routes straight to the target.
        let moved = try self.redirectsAnswered("MOVED", port: source.port)
        XCTAssertEqual(try value(of: self.client.send(on: loop, ["GET", first])), .bulk("1"))
        XCTAssertEqual(try self.redirectsAnswered("MOVED", port: source.port), moved)
        XCTAssertGreaterThan(moved, movedBefore)
    }

    func testAScriptIsLoadedOnEachShardThatRunsIt() throws {
        let loop = self.group.next()
        let script = "return redis.call('INCR', KEYS[1])"
        let sha = try XCTUnwrap(try self.cluster.cli(self.cluster.ports[0], ["SCRIPT", "LOAD", script]))
        for port in self.cluster.ports { try self.cluster.cli(port, ["SCRIPT", "FLUSH"]) }
        // A key on each shard.
        let primaries = try self.cluster.primaries()
        var keyByShard: [Int: String] = [:]
        for index in 0..<100 where keyByShard.count < 3 {
            let key = "script:\(index)"
            keyByShard[ownerPort(key, primaries)] = keyByShard[ownerPort(key, primaries)] ?? key
        }
        for (port, key) in keyByShard {
            XCTAssertEqual(try self.cluster.cli(port, ["SCRIPT", "EXISTS", sha]), "0")
            XCTAssertEqual(try value(of: self.client.evalSHA(on: loop, sha: sha, script: script, keys: [key], args: [])), .integer(1))
            XCTAssertEqual(try self.cluster.cli(port, ["SCRIPT", "EXISTS", sha]), "1", "loaded where it ran")
        }
        // One shard forgets it: only that shard loads it again.
        let (port, key) = keyByShard.first!
        try self.cluster.cli(port, ["SCRIPT", "FLUSH"])
        XCTAssertEqual(try value(of: self.client.evalSHA(on: loop, sha: sha, script: script, keys: [key], args: [])), .integer(2))
    }

    func testScanAndMGetCoverEveryShard() throws {
        let loop = self.group.next()
        let keys = (0..<40).map { "scanned:\($0)" }
        let primaries = try self.cluster.primaries()
        XCTAssertEqual(Set(keys.map { ownerPort($0, primaries) }).count, 3)
        let writes = keys.map { self.client.send(on: loop, ["SET", $0, "value \($0)"]) }
        _ = try value(of: EventLoopFuture.whenAllSucceed(writes, on: loop))
        XCTAssertEqual(Set(try value(of: self.client.scanKeys(on: loop, matching: "scanned:*", count: 7))), Set(keys))
        XCTAssertEqual(
            try value(of: self.client.mget(on: loop, ["scanned:3", "missing", "scanned:30", "scanned:3"])),
            [.bulk("value scanned:3"), .bulkString(nil), .bulk("value scanned:30"), .bulk("value scanned:3")]
        )
        // Plain MGET over several slots is Redis's own refusal, passed on as the reply.
        XCTAssertEqual(try value(of: self.client.send(on: loop, ["MGET", "scanned:3", "scanned:30"])).errorMessage?.hasPrefix("CROSSSLOT"), true)
        XCTAssertEqual(try value(of: self.client.mget(on: loop, [])), [])
    }

    func testASlotNoShardServesFailsLikeAShardDownAndOnlyItsKeys() throws {
        let loop = self.group.next()
        let (key, elsewhere) = ("{unserved}:k", "{elsewhere}:k")
        XCTAssertEqual(try value(of: self.client.send(on: loop, ["SET", elsewhere, "here"])), .simpleString("OK"))
        XCTAssertEqual(try value(of: self.client.send(on: loop, ["GET", key])), .bulkString(nil))
        let slot = RedisKeySlot.slot(of: key)
        XCTAssertNotEqual(slot, RedisKeySlot.slot(of: elsewhere))
        let owner = try self.cluster.primary(forSlot: slot)
        // The owner gives the slot up: it answers CLUSTERDOWN for it.
        try self.cluster.cli(owner.port, ["CLUSTER", "DELSLOTS", "\(slot)"])
        defer { _ = try? self.cluster.cli(owner.port, ["CLUSTER", "ADDSLOTS", "\(slot)"]) }
        XCTAssertEqual(try redisError(of: self.client.send(on: loop, ["GET", key])), .unavailable)
        XCTAssertEqual(try value(of: self.client.send(on: loop, ["GET", elsewhere])), .bulk("here"))
    }

    func testALoopOutsideTheGroupIsServedAndAnsweredOnItsOwnLoop() throws {
        let other = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? other.syncShutdownGracefully() }
        let outside = other.next()
        let reply = self.client.send(on: outside, ["SET", "outside", "1"])
        XCTAssertEqual(try value(of: reply), .simpleString("OK"))
        XCTAssertTrue(try value(of: reply.map { _ in outside.inEventLoop }))
    }
}

/// A shard lost with a replica to take over: a three-primary cluster with one replica each, for
/// one test.
final class RedisClusterFailoverTests: XCTestCase {

    func testAPrimaryLostFailsItsKeysFastServesTheOthersAndFollowsItsReplicaAsDoesTheSubscriber() throws {
        let cluster = try RedisTestCluster(primaries: 3, replicas: 1)
        defer { cluster.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let url = try RedisURL(cluster.url)
        let client = RedisClient(url: url, group: group, configuration: RedisClusterTests.configuration)
        defer { _ = try? value(of: client.shutdown()) }

        // The subscriber's first node is the first seed: the primary about to die.
        let doomed = cluster.ports[0]
        let subscriptions = Recorder<Int>()
        let messages = Recorder<String>()
        let subscriber = RedisSubscriber(
            url: url, channels: ["news"], eventLoop: loop, configuration: RedisClusterTests.configuration,
            onConnected: { subscriptions.append(1) }, onMessage: { messages.append(String(decoding: $1, as: UTF8.self)) }
        )
        subscriber.start()
        defer { _ = try? value(of: subscriber.shutdown()) }
        try eventually("subscribed") { subscriptions.count == 1 }
        XCTAssertEqual(try cluster.cli(doomed, ["PUBSUB", "NUMSUB", "news"]), "news\n1", "subscribed on the first seed")

        var lost: String?
        var kept: String?
        let primaries = try cluster.primaries()
        for index in 0..<100 where lost == nil || kept == nil {
            let key = "failover:\(index)"
            if ownerPort(key, primaries) == doomed { lost = lost ?? key } else { kept = kept ?? key }
        }
        let (lostKey, keptKey) = (try XCTUnwrap(lost), try XCTUnwrap(kept))
        XCTAssertEqual(try value(of: client.send(on: loop, ["SET", lostKey, "lost"])), .simpleString("OK"))
        XCTAssertEqual(try value(of: client.send(on: loop, ["SET", keptKey, "kept"])), .simpleString("OK"))
        // A cluster node counts only its own subscribers; the message reaches every node's.
        XCTAssertNotNil(try value(of: client.send(on: loop, ["PUBLISH", "news", "before"])).int64)
        try eventually("the message before") { messages.all == ["before"] }
        let old = try cluster.nodes().first { $0.port == doomed }!
        try cluster.waitUntilReplicated(primaryPort: doomed)

        cluster.kill(doomed)
        // Until a replica takes over, the lost shard's keys fail at once; the others serve.
        try eventually("the lost shard is known to be down") {
            (try? redisError(of: client.send(on: loop, ["GET", lostKey]), within: 2)) == .unavailable
        }
        XCTAssertFalse(try value(of: loop.submit { client.isAvailable(on: loop, key: lostKey) }))
        XCTAssertTrue(try value(of: loop.submit { client.isAvailable(on: loop, key: keptKey) }))
        XCTAssertTrue(try value(of: loop.submit { client.isAvailable(on: loop) }), "one shard down is not the whole store down")
        XCTAssertEqual(try value(of: client.send(on: loop, ["GET", keptKey])), .bulk("kept"))

        // The subscriber moves to another node by itself.
        try eventually("subscribed again elsewhere") { subscriptions.count == 2 }

        let promoted = try cluster.waitForPromotion(of: old)
        try eventually("the client follows the promoted replica") {
            (try? value(of: client.send(on: loop, ["GET", lostKey]))) == .bulk("lost")
        }
        XCTAssertTrue(try value(of: loop.submit { client.isAvailable(on: loop, key: lostKey) }))
        XCTAssertEqual(try value(of: client.send(on: loop, ["SET", lostKey, "after"])), .simpleString("OK"))
        XCTAssertEqual(try cluster.cli(promoted.port, ["GET", lostKey]), "after")
        XCTAssertNotNil(try value(of: client.send(on: loop, ["PUBLISH", "news", "after"])).int64)
        try eventually("the message after") { messages.all == ["before", "after"] }
    }

    func testNoSeedAnsweringFailsFastUntilOneDoes() throws {
        let port = try freeLoopbackPort()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let client = RedisClient(url: try RedisURL("redis-cluster://127.0.0.1:\(port)"), group: group, configuration: RedisClusterTests.configuration)
        defer { _ = try? value(of: client.shutdown()) }
        XCTAssertEqual(try redisError(of: client.send(on: loop, ["GET", "k"])), .unavailable, "the first command waits for the map, then fails")
        XCTAssertFalse(try value(of: loop.submit { client.isAvailable(on: loop) }))
        XCTAssertEqual(try redisError(of: client.send(on: loop, ["GET", "k"]), within: 1), .unavailable)
    }
}

/// The port of the primary serving `key`, computed here from one `CLUSTER NODES` (`primaries`).
private func ownerPort(_ key: String, _ primaries: [RedisTestCluster.Node]) -> Int {
    RedisTestCluster.primary(forSlot: RedisKeySlot.slot(of: key), among: primaries)!.port
}
