import Logging
import NIOCore
import NIOPosix
import RedisClient
import RedisTestServer
import Synchronization
@testable import Revocations
import TokenAuth
import XCTest

/// The revocation feed on a real three-primary Redis Cluster: the revocation keys spread over
/// every shard, and the feed's full read (at subscription) finds every one of them.
final class RevocationFeedClusterTests: XCTestCase {
    func testTheFeedReadsTheRevocationsOfEveryShard() throws {
        let cluster = try RedisTestCluster(primaries: 3, replicas: 0)
        defer { cluster.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let url = try RedisURL(cluster.url)
        let redis = RedisClient(url: url, group: group)
        defer { try? redis.shutdown().wait() }
        let store = RevocationStore(keyPrefix: "erp")
        let now: Int64 = 1_764_000_000

        let messages = (0..<30).map { RevocationMessage.token(jwtID: "session-\($0)", expiresAt: now + 3_600) }
        for message in messages {
            _ = try store.revoke(message, using: redis, on: loop, now: now).wait()
        }
        let primaries = try cluster.primaries()
        let shards = Set(messages.map { RedisTestCluster.primary(forSlot: RedisKeySlot.slot(of: store.key(for: $0)), among: primaries)!.port })
        XCTAssertEqual(shards.count, 3, "the keys spread over every shard")

        let merged = Mutex<RevocationList?>(nil)
        let feed = RevocationFeed(
            client: redis, url: url, store: store, loop: loop, logger: Logger(label: "test"),
            revoke: { _ in }, merge: { list, _ in merged.withLock { $0 = list } }
        )
        feed.start()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, merged.withLock({ $0 == nil }) { usleep(20_000) }
        var expected = RevocationList()
        for message in messages { message.apply(to: &expected) }
        XCTAssertEqual(merged.withLock { $0 }, expected)
        let done = DispatchSemaphore(value: 0)
        Task {
            await feed.shutdown()
            done.signal()
        }
        done.wait()
    }
}
