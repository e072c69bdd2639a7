import Foundation
import NIOCore
import NIOPosix
import RedisTestServer
import XCTest
@testable import RedisClient

/// `redis-sentinel://` against real Sentinels: a primary, a replica and three Sentinels
/// (`RedisTestSentinel`), two event loops so that every loop's connection has to move.
final class RedisSentinelTests: XCTestCase {
    var setup: RedisTestSentinel!
    var group: MultiThreadedEventLoopGroup!
    var loops: [any EventLoop] { Array(self.group.makeIterator()) }

    let fast = RedisClient.Configuration(
        connectTimeout: .seconds(2),
        responseTimeout: .seconds(5),
        backoff: .init(initialDelayNanoseconds: 10_000_000, maximumDelayNanoseconds: 200_000_000)
    )

    var url: RedisURL { get throws { try RedisURL(self.setup.url) } }

    override func setUpWithError() throws {
        try super.setUpWithError()
        self.setup = try RedisTestSentinel()
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    override func tearDownWithError() throws {
        if let setup = self.setup, (self.testRun?.totalFailureCount ?? 0) > 0 { print(setup.sentinelLogs) }
        self.setup?.stop()
        try self.group?.syncShutdownGracefully()
        try super.tearDownWithError()
    }

    /// The port of the server `loop`'s connection is on, as that server says.
    func serverPort(_ client: RedisClient, on loop: any EventLoop) throws -> Int? {
        let reply = try value(of: client.send(on: loop, ["CONFIG", "GET", "port"]))
        return reply.elements?.last?.int64.map(Int.init)
    }

    func testFindsThePrimaryThroughTheSentinels() throws {
        let client = RedisClient(url: try url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        let primary = try XCTUnwrap(setup.primary)
        for loop in loops {
            XCTAssertEqual(try value(of: client.send(on: loop, ["SET", "where", "primary"])), .simpleString("OK"))
            XCTAssertEqual(try serverPort(client, on: loop), primary.port)
        }
        XCTAssertEqual(RedisTestSentinel.command(port: primary.port, ["GET", "where"]), ["primary"])
    }

    func testAfterThePrimaryDiesCommandsFailFastThenRunOnThePromotedReplicaWithTheSameClient() throws {
        let client = RedisClient(url: try url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        let loop = loops[0]
        XCTAssertEqual(try value(of: client.send(on: loop, ["SET", "before", "1"])), .simpleString("OK"))
        // Replicated before the crash (asynchronous otherwise: see the failover test's docs).
        XCTAssertEqual(try value(of: client.send(on: loop, ["WAIT", "1", "2000"])), .integer(1))
        for other in loops { _ = try value(of: client.send(on: other, ["PING"])) }
        let old = try XCTUnwrap(setup.primary)

        let killed = Date()
        old.kill()
        // Probe until the client answers again: every probe in between fails with a typed error,
        // none waits on a timeout (the bound is only a hang guard).
        var failures: [RedisClientError: Int] = [:]
        var recoveredAfter: Double?
        while Date().timeIntervalSince(killed) < 20 {
            switch try result(of: client.send(on: loop, ["SET", "after", "1"]), within: 3) {
            case .success(let reply):
                XCTAssertEqual(reply, .simpleString("OK"))
                recoveredAfter = Date().timeIntervalSince(killed)
            case .failure(let error as RedisClientError):
                failures[error, default: 0] += 1
                usleep(20_000)
                continue
            case .failure(let error):
                XCTFail("untyped failure \(error)")
            }
            break
        }
        let after = try XCTUnwrap(recoveredAfter, "the client never reached the new primary")
        print(String(format: "sentinel failover: commands failed for %.2f s (%@), then ran on the new primary", after, "\(failures.mapKeys(\.slug))"))
        XCTAssertGreaterThan(failures[.unavailable] ?? 0, 0, "refused at once while no primary was reachable: \(failures)")
        let allowed: Set<RedisClientError> = [.unavailable, .connectionClosed, .connectionFailed, .notPrimary, .primaryUnknown]
        XCTAssertTrue(Set(failures.keys).isSubset(of: allowed), "\(failures)")

        let new = try XCTUnwrap(setup.primary)
        XCTAssertNotEqual(new.port, old.port)
        for loop in loops {
            try eventually("every loop reaches the new primary") { (try? serverPort(client, on: loop)) == new.port }
        }
        XCTAssertEqual(try value(of: client.send(on: loop, ["GET", "before"])), .bulk("1"), "written before the crash, replicated")
        XCTAssertTrue(try value(of: loop.submit { client.isAvailable(on: loop) }))
    }

    func testASubscriberMovesToTheNewPrimary() throws {
        let connections = Recorder<Int>()
        let messages = Recorder<String>()
        let subscriber = RedisSubscriber(
            url: try url, channels: ["tree-version"], eventLoop: loops[1], configuration: fast,
            onConnected: { connections.append(1) },
            onMessage: { _, payload in messages.append(String(decoding: payload, as: UTF8.self)) }
        )
        subscriber.start()
        defer { _ = try? value(of: subscriber.shutdown()) }
        try eventually("subscribed") { connections.count == 1 }
        let old = try XCTUnwrap(setup.primary)
        XCTAssertEqual(RedisTestSentinel.command(port: old.port, ["PUBLISH", "tree-version", "1"]), ["1"])
        try eventually("the first message") { messages.count == 1 }

        let (new, seconds) = try setup.killPrimaryAndAwaitFailover()
        print(String(format: "sentinel failover took %.2f s from the kill", seconds))
        try eventually("subscribed on the new primary") { connections.count == 2 }
        XCTAssertEqual(RedisTestSentinel.command(port: new.port, ["PUBLISH", "tree-version", "2"]), ["1"])
        try eventually("the message published on the new primary") { messages.count == 2 }
        XCTAssertEqual(messages.all, ["1", "2"])
    }

    func testASentinelThatIsDownIsSkippedForTheNext() throws {
        setup.killSentinel(0)
        let client = RedisClient(url: try url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        let loop = loops[0]
        XCTAssertEqual(try serverPort(client, on: loop), setup.primary?.port)
        XCTAssertEqual(try serverPort(client, on: loops[1]), setup.primary?.port)
    }

    func testNoSentinelReachableFailsTypedThenRecovers() throws {
        let url = try RedisURL("redis-sentinel://127.0.0.1:\(try freeLoopbackPort())/\(RedisTestSentinel.masterName)")
        let client = RedisClient(url: url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        let loop = loops[0]
        XCTAssertEqual(try redisError(of: client.send(on: loop, ["PING"])), .primaryUnknown)
        XCTAssertEqual(try redisError(of: client.send(on: loop, ["PING"]), within: 1), .unavailable)

        let unknownSet = try RedisURL("redis-sentinel://127.0.0.1:\(setup.sentinelPorts[0])/no-such-set")
        let other = RedisClient(url: unknownSet, group: group, configuration: fast)
        defer { _ = try? value(of: other.shutdown()) }
        XCTAssertEqual(try redisError(of: other.send(on: loop, ["PING"])), .primaryUnknown, "a Sentinel that monitors no such set names nothing")
    }

    func testAConnectionAnsweredReadOnlyLeavesTheDemotedServer() throws {
        let client = RedisClient(url: try url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        let loop = loops[0]
        XCTAssertEqual(try value(of: client.send(on: loop, ["SET", "k", "1"])), .simpleString("OK"))
        let primary = setup.servers[0], replica = setup.servers[1]
        // Swap the roles behind the Sentinels' back: no announcement, so only the READONLY
        // reply tells the client. (Undone before the Sentinels' next look at the servers.)
        XCTAssertEqual(RedisTestSentinel.command(port: replica.port, ["REPLICAOF", "NO", "ONE"]), ["OK"])
        XCTAssertEqual(RedisTestSentinel.command(port: primary.port, ["REPLICAOF", "127.0.0.1", "\(replica.port)"]), ["OK"])
        let refused = try value(of: client.send(on: loop, ["SET", "k", "2"]))
        XCTAssertTrue(refused.errorMessage?.hasPrefix("READONLY") == true, "\(refused)")
        // The connection is gone: what follows fails typed (the Sentinels still name the
        // demoted server, whose ROLE refuses it) instead of being answered READONLY again.
        for _ in 0..<5 {
            let next = try result(of: client.send(on: loop, ["SET", "k", "3"]))
            if case .success(let reply) = next { XCTAssertNil(reply.errorMessage.flatMap { $0.hasPrefix("READONLY") ? $0 : nil }, "sent to the read-only server again") }
            usleep(20_000)
        }
        XCTAssertEqual(RedisTestSentinel.command(port: primary.port, ["REPLICAOF", "NO", "ONE"]), ["OK"])
        XCTAssertEqual(RedisTestSentinel.command(port: replica.port, ["REPLICAOF", "127.0.0.1", "\(primary.port)"]), ["OK"])
        try eventually("writes again once the server is a primary again") {
            (try? value(of: client.send(on: loop, ["SET", "k", "4"]))) == .simpleString("OK")
        }
    }

    func testAPlannedFailoverMovesEveryConnectionOffTheDemotedPrimary() throws {
        let client = RedisClient(url: try url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        let old = try XCTUnwrap(setup.primary)
        for loop in loops { XCTAssertEqual(try serverPort(client, on: loop), old.port) }
        let subscribed = Recorder<Int>()
        let subscriber = RedisSubscriber(url: try url, channels: ["c"], eventLoop: loops[0], configuration: fast, onConnected: { subscribed.append(1) }, onMessage: { _, _ in })
        subscriber.start()
        defer { _ = try? value(of: subscriber.shutdown()) }
        try eventually("subscribed") { subscribed.count == 1 }

        let (_, new) = try setup.failOver()
        // The old primary is still up (the Sentinels demote it at their next look, up to 10 s
        // later): only the announcement can move the connections off it this soon.
        print("right after the switch the old primary says \(RedisTestSentinel.command(port: old.port, ["ROLE"]).first ?? "nothing")")
        for loop in loops {
            try eventually("\(loop) writes on the new primary") {
                (try? value(of: client.send(on: loop, ["SET", "moved", "yes"]))) == .simpleString("OK") && (try? serverPort(client, on: loop)) == new.port
            }
        }
        try eventually("the subscriber moved") {
            subscribed.count == 2 && RedisTestSentinel.command(port: new.port, ["PUBSUB", "NUMSUB", "c"]).last == "1"
        }
        // The Sentinels' connections have names; ours and redis-cli's have none, and a link to
        // the new primary (once the old one is demoted) has the flag M.
        let unnamed = RedisTestSentinel.command(port: old.port, ["CLIENT", "LIST"]).filter {
            $0.contains(" name= ") && !$0.contains("cmd=client|list") && !$0.contains("flags=M")
        }
        XCTAssertEqual(unnamed, [], "no connection of ours is left on the old primary")
    }
}

private extension Dictionary {
    func mapKeys<T: Hashable>(_ transform: (Key) -> T) -> [T: Value] {
        Dictionary<T, Value>(uniqueKeysWithValues: self.map { (transform($0.key), $0.value) })
    }
}
