import RedisTestServer
import NIOCore
import NIOPosix
import RedisClient
import XCTest

final class RedisSubscriberTests: RedisTestCase {
    struct Message: Sendable, Equatable {
        let channel: String
        let payload: [UInt8]
    }

    func testReceivesMessagesAndResubscribesAfterARestart() throws {
        let connections = Recorder<Int>()
        let messages = Recorder<Message>()
        let subscriber = RedisSubscriber(
            url: url, channels: ["revoked-tokens", "tree-version"], eventLoop: loop, configuration: fast,
            onConnected: { connections.append(1) },
            onMessage: { messages.append(Message(channel: $0, payload: $1)) }
        )
        subscriber.start()
        subscriber.start()
        defer { _ = try? value(of: subscriber.shutdown()) }
        try eventually("subscribed") { connections.count == 1 }
        XCTAssertTrue(try value(of: loop.submit { subscriber.isConnected }))

        var publisher = try connect()
        let jti: [UInt8] = Array("jti-1".utf8) + [0, 255]
        XCTAssertEqual(try value(of: publisher.send([Array("PUBLISH".utf8), Array("revoked-tokens".utf8), jti])), .integer(1))
        XCTAssertEqual(try value(of: publisher.send(["PUBLISH", "tree-version", "42"])), .integer(1))
        XCTAssertEqual(try value(of: publisher.send(["PUBLISH", "elsewhere", "x"])), .integer(0))
        try eventually("two messages") { messages.count == 2 }
        XCTAssertEqual(messages.all, [Message(channel: "revoked-tokens", payload: jti), Message(channel: "tree-version", payload: Array("42".utf8))])

        server.kill()
        try server.start()
        try eventually("subscribed again") { connections.count == 2 }

        publisher = try connect()
        defer { publisher.close() }
        XCTAssertEqual(try value(of: publisher.send(["PUBLISH", "tree-version", "43"])), .integer(1))
        try eventually("the message after the restart") { messages.count == 3 }
        XCTAssertEqual(messages.all.last, Message(channel: "tree-version", payload: Array("43".utf8)))
        XCTAssertEqual(connections.count, 2, "onConnected once per subscription")
    }

    func testShutdownUnsubscribes() throws {
        let connections = Recorder<Int>()
        let subscriber = RedisSubscriber(url: url, channels: ["c"], eventLoop: loop, configuration: fast, onConnected: { connections.append(1) }, onMessage: { _, _ in })
        subscriber.start()
        try eventually("subscribed") { connections.count == 1 }
        try value(of: subscriber.shutdown())
        let publisher = try connect()
        defer { publisher.close() }
        try eventually("no subscriber left") {
            try value(of: publisher.send(["PUBLISH", "c", "x"])) == .integer(0)
        }
    }
}
