@testable import Hierarchy
import NIOCore
import NIOPosix
import Quotas
import RedisClient
import RedisTestServer
import XCTest

/// The quota scripts' tests against a real redis-server: a server per test, a one-thread loop
/// group with a client on it, and the nodes and instant the tests share (injected `now`, no
/// sleeps).
class RedisQuotaTestCase: XCTestCase {
    var server: RedisServer!
    var group: MultiThreadedEventLoopGroup!
    var redis: RedisClient!
    var quotas: QuotaAdmission!
    var loop: any EventLoop { self.group.next() }

    let acme = try! NodeID("acme")
    let northwind = try! NodeID("northwind")
    let contoso = try! NodeID("contoso")
    /// 2025-11-24T16:00:00Z: 8 h to the end of the UTC day.
    let start: Int64 = 1_764_000_000_000_000

    /// Days of usage the admissions meter; nil: they do not.
    var usageRetentionDays: Int? { nil }

    override func setUpWithError() throws {
        try super.setUpWithError()
        self.server = try RedisServer()
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.redis = RedisClient(url: RedisURL(host: "127.0.0.1", port: self.server.port), group: self.group)
        self.quotas = QuotaAdmission(redis: self.redis, usageRetentionDays: self.usageRetentionDays)
    }

    override func tearDownWithError() throws {
        try? self.redis?.shutdown().wait()
        try? self.group?.syncShutdownGracefully()
        self.server?.stop()
        try super.tearDownWithError()
    }

    /// A counter or TAT as stored; nil when the key is absent.
    func get(_ key: String) throws -> Int64? {
        let reply = try self.redis.send(on: self.loop, ["GET", key]).wait()
        return reply.isNull ? nil : reply.int64
    }
}
