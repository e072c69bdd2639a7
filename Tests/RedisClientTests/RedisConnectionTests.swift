import RedisTestServer
import NIOCore
import NIOPosix
import RedisClient
import XCTest

final class RedisConnectionTests: RedisTestCase {
    func testReplyTypesRoundTrip() throws {
        let connection = try connect()
        defer { connection.close() }
        func send(_ arguments: [String]) throws -> RESPValue { try value(of: connection.send(arguments)) }

        let binary: [UInt8] = [0, 1, 0, 13, 10, 255, 0]
        XCTAssertEqual(try value(of: connection.send([Array("SET".utf8), Array("bin\0key".utf8), binary])), .simpleString("OK"))
        XCTAssertEqual(try value(of: connection.send([Array("GET".utf8), Array("bin\0key".utf8)])), .bulkString(binary))
        XCTAssertEqual(try value(of: connection.send([Array("STRLEN".utf8), Array("bin\0key".utf8)])), .integer(7))

        XCTAssertEqual(try send(["SET", "empty", ""]), .simpleString("OK"))
        XCTAssertEqual(try send(["GET", "empty"]), .bulkString([]))
        XCTAssertEqual(try send(["GET", "missing"]), .bulkString(nil))
        XCTAssertEqual(try send(["INCR", "n"]), .integer(1))
        XCTAssertEqual(try send(["INCRBY", "n", "-10"]), .integer(-9))
        XCTAssertEqual(try send(["MGET", "n", "missing", "empty"]), .array([.bulk("-9"), .bulkString(nil), .bulkString([])]))
        XCTAssertEqual(try send(["RPUSH", "list", "a", "b", "c"]), .integer(3))
        XCTAssertEqual(try send(["LRANGE", "list", "0", "-1"]), .array([.bulk("a"), .bulk("b"), .bulk("c")]))
        XCTAssertEqual(try send(["LRANGE", "nolist", "0", "-1"]), .array([]))
        XCTAssertEqual(try send(["EVAL", "return {1, {2, 'x'}, redis.status_reply('FINE')}", "0"]),
                       .array([.integer(1), .array([.integer(2), .bulk("x")]), .simpleString("FINE")]))

        // Error replies are values; the connection carries on.
        let wrongType = try send(["INCR", "list"])
        XCTAssertTrue(wrongType.errorMessage?.hasPrefix("WRONGTYPE") == true, "\(wrongType)")
        let unknown = try send(["NOSUCHCOMMAND"])
        XCTAssertTrue(unknown.errorMessage?.hasPrefix("ERR") == true, "\(unknown)")
        XCTAssertEqual(try send(["PING"]), .simpleString("PONG"))
    }

    func testAThousandPipelinedCommandsAreAnsweredInOrder() throws {
        let connection = try connect()
        defer { connection.close() }
        // All written on the connection's loop in one go, before any reply is read; echoes of
        // growing size make replies straddle reads.
        let futures = try value(of: self.loop.submit {
            (0..<1_000).map { index in
                index.isMultiple(of: 2)
                    ? connection.send(["INCR", "counter"])
                    : connection.send(["ECHO", String(repeating: "x", count: index) + "#\(index)"])
            }
        })
        let replies = try value(of: EventLoopFuture.whenAllSucceed(futures, on: self.loop))
        let expected: [RESPValue] = (0..<1_000).map { index in
            index.isMultiple(of: 2) ? .integer(Int64(index / 2 + 1)) : .bulk(String(repeating: "x", count: index) + "#\(index)")
        }
        XCTAssertEqual(replies, expected)
    }

    func testCommandsFromAnotherThreadArePipelinedToo() throws {
        let connection = try connect()
        defer { connection.close() }
        let futures = (1...200).map { _ in connection.send(["INCR", "c"]) }
        XCTAssertEqual(try value(of: EventLoopFuture.whenAllSucceed(futures, on: self.loop)), (1...200).map { RESPValue.integer(Int64($0)) })
    }

    func testPasswordAndUsernameAuthentication() throws {
        let secured = try RedisServer(arguments: ["--requirepass", "p@ss word", "--user", "gateway", "on", ">gw-secret", "~*", "&*", "+@all"])
        defer { secured.stop() }
        func url(_ text: String) throws -> RedisURL { try RedisURL(text.replacingOccurrences(of: "PORT", with: "\(secured.port)")) }

        let withPassword = try connect(url("redis://:p%40ss%20word@127.0.0.1:PORT"))
        XCTAssertEqual(try value(of: withPassword.send(["SET", "k", "v"])), .simpleString("OK"))
        withPassword.close()

        let asUser = try connect(url("redis://gateway:gw-secret@127.0.0.1:PORT"))
        XCTAssertEqual(try value(of: asUser.send(["ACL", "WHOAMI"])), .bulk("gateway"))
        asUser.close()

        for bad in ["redis://:wrong@127.0.0.1:PORT", "redis://gateway:wrong@127.0.0.1:PORT", "redis://127.0.0.1:PORT"] {
            let attempt = RedisConnection.connect(to: try url(bad), on: self.loop)
            XCTAssertEqual(try redisError(of: attempt), .authenticationFailed, bad)
        }
    }

    func testSelectsTheDatabaseOfTheURL() throws {
        let db0 = try connect()
        let db3 = try connect(RedisURL(host: "127.0.0.1", port: server.port, database: 3))
        defer { db0.close(); db3.close() }
        XCTAssertEqual(try value(of: db3.send(["SET", "where", "three"])), .simpleString("OK"))
        XCTAssertEqual(try value(of: db3.send(["GET", "where"])), .bulk("three"))
        XCTAssertEqual(try value(of: db0.send(["GET", "where"])), .bulkString(nil))
        XCTAssertEqual(try value(of: db0.send(["SELECT", "3"])), .simpleString("OK"))
        XCTAssertEqual(try value(of: db0.send(["GET", "where"])), .bulk("three"))

        let outOfRange = RedisConnection.connect(to: RedisURL(host: "127.0.0.1", port: server.port, database: 999), on: self.loop)
        XCTAssertEqual(try redisError(of: outOfRange), .handshakeFailed)
    }

    func testConnectingWhereNothingListensFailsTyped() throws {
        let port = try freeLoopbackPort()
        let attempt = RedisConnection.connect(to: RedisURL(host: "127.0.0.1", port: port), on: self.loop)
        XCTAssertEqual(try redisError(of: attempt), .connectionFailed)
    }

    func testLosingRedisFailsEveryPendingCommandPromptly() throws {
        let connection = try connect()
        let blocked = connection.send(["BLPOP", "never-pushed", "0"])
        let queuedBehind = (0..<50).map { _ in connection.send(["PING"]) }
        try waitForBlockedClients(1, port: server.port)

        server.kill()
        // Bounded waits, far above the milliseconds this takes: nothing waits on a timeout.
        XCTAssertEqual(try redisError(of: blocked, within: 5), .connectionClosed)
        for pending in queuedBehind {
            XCTAssertEqual(try redisError(of: pending, within: 5), .connectionClosed)
        }
        try value(of: connection.closeFuture, within: 5)
        XCTAssertEqual(try redisError(of: connection.send(["PING"])), .connectionClosed)
    }

    func testAStalledRedisTimesOutThePendingCommands() throws {
        let connection = try value(of: RedisConnection.connect(to: url, on: loop, responseTimeout: .milliseconds(200)))
        XCTAssertEqual(try value(of: connection.send(["PING"])), .simpleString("PONG"))
        server.signal(SIGSTOP)
        defer { server.signal(SIGCONT) }
        let first = connection.send(["PING"])
        let second = connection.send(["PING"])
        XCTAssertEqual(try redisError(of: first, within: 5), .responseTimeout)
        XCTAssertEqual(try redisError(of: second, within: 5), .responseTimeout)
        try value(of: connection.closeFuture, within: 5)
    }

    func testClosingFailsWhatIsPendingAndIsIdempotent() throws {
        let connection = try connect()
        let blocked = connection.send(["BLPOP", "never-pushed", "0"])
        try waitForBlockedClients(1, port: server.port)
        try value(of: connection.close())
        XCTAssertEqual(try redisError(of: blocked), .connectionClosed)
        try value(of: connection.close())
    }

    func testAnEmptyCommandFailsWithoutDisturbingTheConnection() throws {
        let connection = try connect()
        defer { connection.close() }
        XCTAssertEqual(try redisError(of: connection.send([String]())), .emptyCommand)
        XCTAssertEqual(try value(of: connection.send(["PING"])), .simpleString("PONG"))
    }
}
