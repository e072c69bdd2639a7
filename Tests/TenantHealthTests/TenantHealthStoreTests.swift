import Hierarchy
import NIOCore
import NIOPosix
import RedisClient
import RedisTestServer
import TenantHealth
import TenantHealthStore
import XCTest

/// Publishing to and reading from a real redis-server: one field per node, replaced by each
/// publication, expiring after the retention.
final class TenantHealthStoreTests: XCTestCase {
    func testNodesPublishTheirOwnFieldAndAReaderGetsAllOfThem() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let client = RedisClient(url: RedisURL(host: "127.0.0.1", port: server.port), group: group)
        defer { try? client.shutdown().wait() }
        let loop = group.next()
        let store = TenantHealthStore(redis: client, prefix: "t", retentionMinutes: 5)
        let p1 = try NodePath(parsing: "acme/p1")

        var first = MinuteFigures(minute: 1000)
        first.record(try NodePath(parsing: "acme/p1/c1"), status: 200, gatewayMicroseconds: 10, upstreamMicroseconds: 20)
        try store.publish([first], node: "node-a", on: loop).wait()
        // Node A publishes the same minute again with more figures: its field is replaced.
        first.record(try NodePath(parsing: "acme/p1/c1"), status: 500, gatewayMicroseconds: 10, upstreamMicroseconds: 20)
        try store.publish([first], node: "node-a", on: loop).wait()
        var second = MinuteFigures(minute: 1000)
        second.record(try NodePath(parsing: "acme/p1/c2"), status: 429, gatewayMicroseconds: 10, upstreamMicroseconds: nil)
        try store.publish([second], node: "node-b", on: loop).wait()

        let read = try store.read(p1, minutes: [999, 1000], on: loop).wait()
        XCTAssertEqual(read[999], [])
        XCTAssertEqual(read[1000]?.count, 2)
        let window = HealthWindow(minutes: [999, 1000], published: read)
        XCTAssertEqual([window.total.requests, window.total.serverErrors, window.total.tooManyRequests], [3, 1, 1])
        XCTAssertEqual(window.minutes[1].nodes, 2)

        let key = TenantHealthStore.key(prefix: "t", tenant: p1, minute: 1000)
        XCTAssertEqual(key, "t:health:{acme}:acme/p1:1000")
        let ttl = try client.send(on: loop, ["TTL", key]).wait().int64 ?? -1
        XCTAssertTrue((1...300).contains(ttl), "expires after the retention: \(ttl)")
    }
}
