import RedisTestServer
import NIOCore
import NIOPosix
import RedisClient
import XCTest

/// A real redis-server and a one-loop group per test; both gone after it.
class RedisTestCase: XCTestCase {
    var server: RedisServer!
    var group: MultiThreadedEventLoopGroup!
    var loop: any EventLoop { self.group.next() }

    var url: RedisURL { RedisURL(host: "127.0.0.1", port: self.server.port) }

    /// Backoff short enough that reconnect tests finish quickly.
    let fast = RedisClient.Configuration(
        connectTimeout: .seconds(2),
        responseTimeout: .seconds(30),
        backoff: .init(initialDelayNanoseconds: 10_000_000, maximumDelayNanoseconds: 200_000_000)
    )

    override func setUpWithError() throws {
        try super.setUpWithError()
        self.server = try RedisServer()
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDownWithError() throws {
        self.server?.stop()
        try self.group?.syncShutdownGracefully()
        try super.tearDownWithError()
    }

    func connect(_ url: RedisURL? = nil) throws -> RedisConnection {
        try value(of: RedisConnection.connect(to: url ?? self.url, on: self.loop), "connect")
    }

    /// Waits until Redis reports `count` clients blocked (BLPOP), so a test knows its command
    /// reached the server before it pulls the plug.
    func waitForBlockedClients(_ count: Int, port: Int) throws {
        try eventually("\(count) blocked client(s)") {
            rawExchange(port: port, send: "INFO clients\r\n")?.contains("blocked_clients:\(count)") ?? false
        }
    }
}
