import NIOCore
import NIOPosix
import RedisClient
import RedisTestServer
import XCTest

/// A real redis-server per test, and a client on one event loop: the store-backed admin tests'
/// shared setup.
class RedisServerTestCase: XCTestCase {
    var server: RedisServer!
    var group: MultiThreadedEventLoopGroup!
    var client: RedisClient!

    override func setUpWithError() throws {
        self.server = try RedisServer()
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.client = RedisClient(url: RedisURL(host: "127.0.0.1", port: self.server.port), group: self.group)
    }

    override func tearDownWithError() throws {
        try self.client.shutdown().wait()
        try self.group.syncShutdownGracefully()
        self.server.stop()
    }

    var loop: any EventLoop { self.group.next() }
}
