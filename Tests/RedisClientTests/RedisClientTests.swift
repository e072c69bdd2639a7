import RedisTestServer
import NIOCore
import NIOPosix
import RedisClient
import XCTest

final class RedisClientTests: RedisTestCase {
    private let script = "return redis.call('INCRBY', KEYS[1], ARGV[1])"

    func testEvalSHALoadsTheScriptAgainAfterNoScript() throws {
        let client = RedisClient(url: url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        let sha = try XCTUnwrap(value(of: client.send(on: loop, ["SCRIPT", "LOAD", script])).string)

        XCTAssertEqual(try value(of: client.evalSHA(on: loop, sha: sha, script: script, keys: ["{oem-1}:n"], args: ["5"])), .integer(5))
        XCTAssertEqual(try value(of: client.send(on: loop, ["SCRIPT", "FLUSH"])), .simpleString("OK"))
        XCTAssertEqual(try value(of: client.send(on: loop, ["SCRIPT", "EXISTS", sha])), .array([.integer(0)]))

        XCTAssertEqual(try value(of: client.evalSHA(on: loop, sha: sha, script: script, keys: ["{oem-1}:n"], args: ["5"])), .integer(10))
        XCTAssertEqual(try value(of: client.send(on: loop, ["SCRIPT", "EXISTS", sha])), .array([.integer(1)]))
    }

    func testEvalSHAWithTheWrongSHARetriesOnlyOnce() throws {
        let client = RedisClient(url: url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        let wrongSHA = String(repeating: "0", count: 40)
        let reply = try value(of: client.evalSHA(on: loop, sha: wrongSHA, script: script, keys: ["k"], args: ["1"]))
        XCTAssertTrue(reply.errorMessage?.hasPrefix("NOSCRIPT") == true, "\(reply)")
        XCTAssertEqual(try value(of: client.send(on: loop, ["GET", "k"])), .bulkString(nil), "the script never ran")
    }

    func testAWrongPasswordFailsTyped() throws {
        let secured = try RedisServer(arguments: ["--requirepass", "right"])
        defer { secured.stop() }
        let client = RedisClient(url: RedisURL(host: "127.0.0.1", port: secured.port, password: "wrong"), group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        XCTAssertEqual(try redisError(of: client.send(on: loop, ["PING"])), .authenticationFailed)
    }

    func testOneConnectionPerLoopSharedByItsCommands() throws {
        let client = RedisClient(url: url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        let loop = self.loop
        let futures = try value(of: loop.submit { (0..<100).map { _ in client.send(on: loop, ["CLIENT", "ID"]) } })
        let ids = Set(try value(of: EventLoopFuture.whenAllSucceed(futures, on: loop)))
        XCTAssertEqual(ids.count, 1, "every command of the loop went over one connection")
    }

    func testAfterRedisIsLostCommandsFailAtOnceUntilItReturnsAndTheClientReconnectsByItself() throws {
        let client = RedisClient(url: url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        XCTAssertEqual(try value(of: client.send(on: loop, ["SET", "k", "before"])), .simpleString("OK"))
        let blocked = client.send(on: loop, ["BLPOP", "never-pushed", "0"])
        try waitForBlockedClients(1, port: server.port)

        server.kill()
        XCTAssertEqual(try redisError(of: blocked, within: 5), .connectionClosed)
        let loop = self.loop
        XCTAssertFalse(try value(of: loop.submit { client.isAvailable(on: loop) }), "the loss is known at once")
        // Down: refused without waiting on any timeout (the bound is only a hang guard).
        XCTAssertEqual(try redisError(of: client.send(on: loop, ["GET", "k"]), within: 1), .unavailable)

        try server.start()
        try eventually("the client reconnects") {
            (try? value(of: client.send(on: loop, ["PING"]))) == .simpleString("PONG")
        }
        XCTAssertTrue(try value(of: loop.submit { client.isAvailable(on: loop) }))
        XCTAssertEqual(try value(of: client.send(on: loop, ["GET", "k"])), .bulkString(nil), "a new, empty redis")
    }

    func testRedisDownAtStartFailsTheFirstCommandsThenRecovers() throws {
        server.kill()
        let loop = self.loop
        let client = RedisClient(url: url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        XCTAssertEqual(try redisError(of: client.send(on: loop, ["PING"])), .connectionFailed)
        XCTAssertEqual(try redisError(of: client.send(on: loop, ["PING"]), within: 1), .unavailable)
        try server.start()
        try eventually("the client connects") {
            (try? value(of: client.send(on: loop, ["PING"]))) == .simpleString("PONG")
        }
    }

    func testConnectingAtStartTellsAnIdleLoopThatRedisIsDown() throws {
        server.kill()
        let loop = self.loop
        let client = RedisClient(url: url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        XCTAssertTrue(try value(of: loop.submit { client.isAvailable(on: loop) }), "nothing sent, nothing known")
        client.connect()
        try eventually("the failed connect is known without a command") {
            try !value(of: loop.submit { client.isAvailable(on: loop) })
        }
        try server.start()
        try eventually("and the client reconnects by itself") {
            try value(of: loop.submit { client.isAvailable(on: loop) })
        }
        XCTAssertEqual(try value(of: client.send(on: loop, ["PING"])), .simpleString("PONG"))
    }

    func testAfterShutdownCommandsFail() throws {
        let client = RedisClient(url: url, group: group, configuration: fast)
        XCTAssertEqual(try value(of: client.send(on: loop, ["PING"])), .simpleString("PONG"))
        try value(of: client.shutdown())
        XCTAssertEqual(try redisError(of: client.send(on: loop, ["PING"])), .shutDown)
    }

    func testALoopOutsideTheGroupIsServedAndAnsweredOnItsOwnLoop() throws {
        let other = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? other.syncShutdownGracefully() }
        let client = RedisClient(url: url, group: group, configuration: fast)
        defer { _ = try? value(of: client.shutdown()) }
        let outsider = other.next()
        let reply = client.send(on: outsider, ["PING"])
        XCTAssertTrue(reply.eventLoop === outsider)
        XCTAssertEqual(try value(of: reply), .simpleString("PONG"))
    }
}
