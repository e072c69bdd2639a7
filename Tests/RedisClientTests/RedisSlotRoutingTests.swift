import XCTest
@testable import RedisClient

/// The pure parts of cluster routing: key slots, which argument is the key, the slot map read
/// from `CLUSTER SLOTS`, and the redirects read from error replies.
final class RedisSlotRoutingTests: XCTestCase {
    func testSlotsAreCRC16OfTheKeyModulo16384() {
        // The cluster specification's CRC16 check value, and slots redis-server computes
        // (`CLUSTER KEYSLOT`).
        XCTAssertEqual(RedisKeySlot.crc16(Array("123456789".utf8).withUnsafeBufferPointer { $0[...] }), 0x31C3)
        XCTAssertEqual(RedisKeySlot.slot(of: "123456789"), 0x31C3 & 0x3FFF)
        XCTAssertEqual(RedisKeySlot.slot(of: "foo"), 12182)
        XCTAssertEqual(RedisKeySlot.slot(of: "bar"), 5061)
        XCTAssertEqual(RedisKeySlot.slot(of: ""), 0)
        XCTAssertEqual(RedisKeySlot.slot(of: Array("foo".utf8)), 12182)
    }

    func testAHashTagChoosesTheSlot() {
        let tagged = RedisKeySlot.slot(of: "acme")
        XCTAssertEqual(RedisKeySlot.slot(of: "erp:q:{acme}:solo:day:20260101"), tagged)
        XCTAssertEqual(RedisKeySlot.slot(of: "erp:usage:{acme}:solo:20260101"), tagged)
        XCTAssertEqual(RedisKeySlot.slot(of: "{acme}"), tagged)
        // Only the first {…}; an empty tag or no closing brace hashes the whole key.
        XCTAssertEqual(RedisKeySlot.slot(of: "x{acme}{other}"), tagged)
        XCTAssertEqual(RedisKeySlot.slot(of: "x{}{acme}"), RedisKeySlot.crc16Slot("x{}{acme}"))
        XCTAssertEqual(RedisKeySlot.slot(of: "x{acme"), RedisKeySlot.crc16Slot("x{acme"))
        XCTAssertEqual(RedisKeySlot.slot(of: "x}acme{"), RedisKeySlot.crc16Slot("x}acme{"))
        XCTAssertEqual(RedisKeySlot.slot(of: "{{acme}}"), RedisKeySlot.slot(of: "{acme"))
    }

    func testTheRoutingKeyOfEachCommandTheGatewaySends() {
        XCTAssertEqual(RedisCommandKeys.routingKeyIndex(["GET", "k"]), 1)
        XCTAssertEqual(RedisCommandKeys.routingKeyIndex(["set", "k", "v", "EX", "10"]), 1)
        XCTAssertEqual(RedisCommandKeys.routingKeyIndex(["MGET", "a", "b"]), 1)
        XCTAssertEqual(RedisCommandKeys.routingKeyIndex(["HSET", "k", "f", "v"]), 1)
        XCTAssertEqual(RedisCommandKeys.routingKeyIndex(["XREVRANGE", "k", "+", "-"]), 1)
        XCTAssertEqual(RedisCommandKeys.routingKeyIndex(["EVAL", "return 1", "2", "k1", "k2", "a"]), 3)
        XCTAssertEqual(RedisCommandKeys.routingKeyIndex(["EVALSHA", "abc", "1", "k1"]), 3)
        XCTAssertNil(RedisCommandKeys.routingKeyIndex(["EVAL", "return 1", "0", "a"]))
        XCTAssertEqual(RedisCommandKeys.routingKeyIndex(["OBJECT", "ENCODING", "k"]), 2)
        for keyless in [["PING"], ["PUBLISH", "channel", "m"], ["SCRIPT", "LOAD", "return 1"], ["SCAN", "0"], ["CLUSTER", "SLOTS"], ["INFO", "x"]] {
            XCTAssertNil(RedisCommandKeys.routingKeyIndex(keyless), "\(keyless)")
        }
        XCTAssertEqual(RedisCommandKeys.slot(of: ["GET", "foo"]), 12182)
        XCTAssertEqual(RedisCommandKeys.slot(of: [Array("GET".utf8), Array("foo".utf8)]), 12182)
    }

    /// A `CLUSTER SLOTS` reply as Redis 7 sends it: ranges in any order, a primary per range
    /// first, then its replicas, with ids and metadata after host and port.
    static func clusterSlots(_ ranges: [(Int, Int, [(String, Int)])]) -> RESPValue {
        .array(ranges.map { start, end, nodes in
            .array([.integer(Int64(start)), .integer(Int64(end))] + nodes.map { host, port in
                .array([.bulk(host), .integer(Int64(port)), .bulk("id-\(port)"), .array([])])
            })
        })
    }

    func testTheSlotMapNamesTheShardOfEverySlot() throws {
        let reply = Self.clusterSlots([
            (10923, 16383, [("127.0.0.1", 7002), ("127.0.0.1", 7005)]),
            (0, 5460, [("127.0.0.1", 7000), ("127.0.0.1", 7003)]),
            (5461, 10000, [("127.0.0.1", 7001), ("127.0.0.1", 7004)]),
            (10001, 10922, [("127.0.0.1", 7001), ("127.0.0.1", 7004)]),
        ])
        let map = try RedisSlotMap(clusterSlots: reply, askedHost: "127.0.0.1")
        XCTAssertEqual(map.shards.map(\.primary.port), [7000, 7001, 7002])
        XCTAssertEqual(map.shards.map { $0.replicas.map(\.port) }, [[7003], [7004], [7005]])
        XCTAssertEqual(map.shardIndex(forSlot: 0), 0)
        XCTAssertEqual(map.shardIndex(forSlot: 5460), 0)
        XCTAssertEqual(map.shardIndex(forSlot: 5461), 1)
        XCTAssertEqual(map.shardIndex(forSlot: 10922), 1)
        XCTAssertEqual(map.shardIndex(forSlot: 16383), 2)
        XCTAssertEqual(map.assignedSlots, 16384)
        XCTAssertEqual(map.nodes.map(\.port), [7000, 7001, 7002, 7003, 7004, 7005])
        // The same cluster listed in another order is the same map.
        let reordered = Self.clusterSlots([
            (0, 5460, [("127.0.0.1", 7000), ("127.0.0.1", 7003)]),
            (10001, 10922, [("127.0.0.1", 7001), ("127.0.0.1", 7004)]),
            (5461, 10000, [("127.0.0.1", 7001), ("127.0.0.1", 7004)]),
            (10923, 16383, [("127.0.0.1", 7002), ("127.0.0.1", 7005)]),
        ])
        XCTAssertEqual(try RedisSlotMap(clusterSlots: reordered, askedHost: "127.0.0.1"), map)
    }

    func testUnservedSlotsAndUnknownAddresses() throws {
        let map = try RedisSlotMap(clusterSlots: Self.clusterSlots([(0, 99, [("", 7000)])]), askedHost: "10.0.0.9")
        XCTAssertEqual(map.shards.map(\.primary), [RedisURL.Node(host: "10.0.0.9", port: 7000)], "an empty host is the one asked")
        XCTAssertEqual(map.shardIndex(forSlot: 99), 0)
        XCTAssertNil(map.shardIndex(forSlot: 100))
        XCTAssertEqual(map.assignedSlots, 100)
    }

    func testMalformedSlotRepliesAreRefused() {
        for reply: RESPValue in [
            .error("ERR This instance has cluster support disabled"), .integer(1),
            .array([.array([.integer(0), .integer(16384), .array([.bulk("h"), .integer(1)])])]),
            .array([.array([.integer(5), .integer(4), .array([.bulk("h"), .integer(1)])])]),
            .array([.array([.integer(0), .integer(1)])]),
            .array([.array([.integer(0), .integer(1), .array([.bulk("h"), .integer(0)])])]),
        ] {
            XCTAssertThrowsError(try RedisSlotMap(clusterSlots: reply, askedHost: "h"), "\(reply)")
        }
    }

    func testRedirectsAreReadFromErrorReplies() {
        XCTAssertEqual(RedisClusterRedirect(errorReply: "MOVED 3999 127.0.0.1:6381", askedHost: "x"), .moved(slot: 3999, to: .init(host: "127.0.0.1", port: 6381)))
        XCTAssertEqual(RedisClusterRedirect(errorReply: "ASK 3999 10.1.2.3:7000", askedHost: "x"), .ask(slot: 3999, to: .init(host: "10.1.2.3", port: 7000)))
        XCTAssertEqual(RedisClusterRedirect(errorReply: "MOVED 1 :6381", askedHost: "10.0.0.9"), .moved(slot: 1, to: .init(host: "10.0.0.9", port: 6381)))
        XCTAssertEqual(RedisClusterRedirect(errorReply: "MOVED 1 [::1]:6381", askedHost: "x"), .moved(slot: 1, to: .init(host: "::1", port: 6381)))
        XCTAssertEqual(RedisClusterRedirect(errorReply: "CLUSTERDOWN The cluster is down", askedHost: "x"), .unavailable)
        XCTAssertEqual(RedisClusterRedirect(errorReply: "TRYAGAIN Multiple keys request during rehashing of slot", askedHost: "x"), .unavailable)
        for other in ["ERR wrong number of arguments", "NOSCRIPT No matching script", "MOVED x 1.2.3.4:5", "MOVED 99999 h:1", "ASK 1 h", "MOVEDX 1 h:1"] {
            XCTAssertNil(RedisClusterRedirect(errorReply: other, askedHost: "x"), other)
        }
    }
}

extension RedisKeySlot {
    /// The slot of the whole key, no hash tag considered.
    static func crc16Slot(_ key: String) -> Int {
        Int(Array(key.utf8).withUnsafeBufferPointer { Self.crc16($0[...]) } & 0x3FFF)
    }
}
