import XCTest
@testable import RedisClient

final class SentinelRepliesTests: XCTestCase {
    func testPrimaryAddressReadsTheIPAndPortAndNothingElse() {
        XCTAssertEqual(SentinelReplies.primaryAddress(.array([.bulk("10.0.0.7"), .bulk("6380")])), RedisURL.Node(host: "10.0.0.7", port: 6380))
        XCTAssertEqual(SentinelReplies.primaryAddress(.array([.bulk("::1"), .bulk("6379")])), RedisURL.Node(host: "::1", port: 6379))
        XCTAssertNil(SentinelReplies.primaryAddress(.bulkString(nil)), "no master set of that name")
        XCTAssertNil(SentinelReplies.primaryAddress(.array([.bulk("10.0.0.7"), .bulk("0")])))
        XCTAssertNil(SentinelReplies.primaryAddress(.array([.bulk("10.0.0.7")])))
        XCTAssertNil(SentinelReplies.primaryAddress(.error("ERR unknown command")))
    }

    func testOnlyAMasterRoleCountsAsPrimary() {
        XCTAssertTrue(SentinelReplies.isPrimary(.array([.bulk("master"), .integer(0), .array([])])))
        XCTAssertFalse(SentinelReplies.isPrimary(.array([.bulk("slave"), .bulk("127.0.0.1"), .integer(6379), .bulk("connected"), .integer(0)])))
        XCTAssertFalse(SentinelReplies.isPrimary(.array([.bulk("sentinel"), .array([])])))
        XCTAssertFalse(SentinelReplies.isPrimary(.error("NOPERM")))
    }

    func testSwitchAnnouncementsParse() {
        let announced = SentinelReplies.Switch(payload: Array("erp 127.0.0.1 6379 127.0.0.1 6380".utf8))
        XCTAssertEqual(announced?.masterName, "erp")
        XCTAssertEqual(announced?.old, RedisURL.Node(host: "127.0.0.1", port: 6379))
        XCTAssertEqual(announced?.new, RedisURL.Node(host: "127.0.0.1", port: 6380))
        XCTAssertNil(SentinelReplies.Switch(payload: Array("erp 127.0.0.1 6379 127.0.0.1".utf8)))
        XCTAssertNil(SentinelReplies.Switch(payload: Array("erp 127.0.0.1 x 127.0.0.1 6380".utf8)))
        XCTAssertNil(SentinelReplies.Switch(payload: [0xFF]))
    }

    func testTheSentinelThatAnsweredIsAskedFirst() {
        let a = RedisURL.Node(host: "a", port: 26379), b = RedisURL.Node(host: "b", port: 26379), c = RedisURL.Node(host: "c", port: 26379)
        var list = SentinelList([a, b, c])
        list.answered(c)
        XCTAssertEqual(list.nodes, [c, a, b])
        list.answered(c)
        XCTAssertEqual(list.nodes, [c, a, b])
        list.answered(b)
        XCTAssertEqual(list.nodes, [b, c, a])
    }
}
