import NIOCore
import NIOPosix
import RedisClient
import RedisTestServer
@testable import Revocations
import TokenAuth
import XCTest

/// The revocation keyspace against a real redis-server: one expiring key per revocation under
/// the deployment's prefix, announced on one channel.
final class RevocationStoreTests: XCTestCase {
    private var server: RedisServer!
    private var group: MultiThreadedEventLoopGroup!
    private var redis: RedisClient!
    private var loop: any EventLoop { self.group.next() }
    private let store = RevocationStore(keyPrefix: "erp")
    private let now: Int64 = 1_764_000_000

    override func setUpWithError() throws {
        try super.setUpWithError()
        self.server = try RedisServer()
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.redis = RedisClient(url: RedisURL(host: "127.0.0.1", port: self.server.port), group: self.group)
    }

    override func tearDownWithError() throws {
        try? self.redis?.shutdown().wait()
        try? self.group?.syncShutdownGracefully()
        self.server?.stop()
        try super.tearDownWithError()
    }

    func testEveryKeyAndTheChannelLieUnderThePrefix() {
        XCTAssertEqual(self.store.channel, "erp:revocations")
        XCTAssertEqual(self.store.keyPattern, "erp:revoked:*")
        XCTAssertEqual(self.store.key(for: .token(jwtID: "abc-1", expiresAt: 0)), "erp:revoked:jti:abc-1")
        XCTAssertEqual(self.store.key(for: .tenant("contoso", issuedBefore: 0, until: 0)), "erp:revoked:tenant:contoso")
    }

    func testARevocationIsKeptAMinutePastTheLastTokenItCovers() throws {
        let message = RevocationMessage.token(jwtID: "abc-1", expiresAt: self.now + 3_600)
        XCTAssertEqual(try self.store.revoke(message, using: self.redis, on: self.loop, now: self.now).wait(), 0, "no gateway node listening")
        let key = self.store.key(for: message)
        XCTAssertEqual(try self.redis.send(on: self.loop, ["GET", key]).wait().string, message.text)
        // An hour to go, plus the minute; Redis may round the TTL it reports a second down.
        let ttl = try XCTUnwrap(try self.redis.send(on: self.loop, ["TTL", key]).wait().int64)
        XCTAssertTrue((3_659...3_660).contains(ttl), "\(ttl)")
    }
}
