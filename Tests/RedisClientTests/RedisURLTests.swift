import RedisClient
import XCTest

final class RedisURLTests: XCTestCase {
    func testDefaults() throws {
        let url = try RedisURL("redis://cache.internal")
        XCTAssertEqual(url, RedisURL(host: "cache.internal", port: 6379, database: 0))
        XCTAssertNil(url.username)
        XCTAssertNil(url.password)
    }

    func testEveryPart() throws {
        let url = try RedisURL("redis://gateway:s3cret@10.0.0.7:6380/4")
        XCTAssertEqual(url.host, "10.0.0.7")
        XCTAssertEqual(url.port, 6380)
        XCTAssertEqual(url.username, "gateway")
        XCTAssertEqual(url.password, "s3cret")
        XCTAssertEqual(url.database, 4)
    }

    func testPasswordWithoutUsername() throws {
        let url = try RedisURL("redis://:pw@localhost/")
        XCTAssertNil(url.username)
        XCTAssertEqual(url.password, "pw")
        XCTAssertEqual(url.database, 0)
    }

    func testPercentDecodingOfUserAndPassword() throws {
        let url = try RedisURL("redis://us%65r:p%40ss%3Aw%2Fo%25rd%C3%A9@h:1")
        XCTAssertEqual(url.username, "user")
        XCTAssertEqual(url.password, "p@ss:w/o%rdé")
    }

    func testUnencodedAtInPasswordSplitsAtTheLastAt() throws {
        XCTAssertEqual(try RedisURL("redis://:a@b@host").password, "a@b")
    }

    func testIPv6Host() throws {
        let url = try RedisURL("redis://[::1]:7000/2")
        XCTAssertEqual(url.host, "::1")
        XCTAssertEqual(url.port, 7000)
        XCTAssertEqual(url.database, 2)
        XCTAssertEqual(url.description, "redis://[::1]:7000/2")
    }

    func testSchemeIsCaseInsensitive() throws {
        XCTAssertEqual(try RedisURL("REDIS://h").host, "h")
    }

    func testOtherSchemesAreRefused() {
        for text in ["http://h", "unix:///tmp/redis.sock"] {
            XCTAssertThrowsError(try RedisURL(text), text) { XCTAssertEqual($0 as? RedisClientError, .unsupportedURLScheme) }
        }
    }

    func testMalformedURLsAreRefused() {
        let bad = [
            "h:6379", "redis://", "redis://:6379", "redis://h:0", "redis://h:65536", "redis://h:-1",
            "redis://h:63a", "redis://h/x", "redis://h/-1", "redis://h/1/2", "redis://h?db=1",
            "redis://h#f", "redis://user@h", "redis://:p%4@h", "redis://:p%zz@h", "redis://:%FF@h",
            "redis://[::1", "redis://[::1]x",
        ]
        for text in bad {
            XCTAssertThrowsError(try RedisURL(text), text) { XCTAssertEqual($0 as? RedisClientError, .invalidURL, text) }
        }
    }

    func testDescriptionAndMirrorNeverShowThePassword() throws {
        let url = try RedisURL("redis://gateway:hunter2@h:6380/1")
        XCTAssertEqual(url.description, "redis://gateway:***@h:6380/1")
        XCTAssertEqual("\(url)", "redis://gateway:***@h:6380/1")
        XCTAssertFalse(String(reflecting: url).contains("hunter2"))
        var dumped = ""
        dump(url, to: &dumped)
        XCTAssertFalse(dumped.contains("hunter2"), dumped)
        XCTAssertEqual(try RedisURL("redis://:hunter2@h").description, "redis://:***@h:6379/0")
    }

    func testClusterURLsListTheirSeeds() throws {
        let url = try RedisURL("redis-cluster://:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002")
        XCTAssertEqual(url.topology, .cluster)
        XCTAssertEqual(url.nodes, [.init(host: "10.0.0.1", port: 7000), .init(host: "10.0.0.2", port: 6379), .init(host: "::1", port: 7002)])
        XCTAssertEqual(url.password, "pw")
        XCTAssertEqual(url.database, 0)
        XCTAssertEqual(url.description, "redis-cluster://:***@10.0.0.1:7000,10.0.0.2:6379,[::1]:7002")
        XCTAssertEqual(url.standalone(at: url.nodes[2]), RedisURL(host: "::1", port: 7002, password: "pw"))
    }

    func testSentinelURLsNameTheMasterSet() throws {
        let url = try RedisURL("redis-sentinel://gw:s3cret@s1,s2:26380,s3/orders-primary/2")
        XCTAssertEqual(url.topology, .sentinel(masterName: "orders-primary"))
        XCTAssertEqual(url.nodes.map(\.description), ["s1:26379", "s2:26380", "s3:26379"])
        XCTAssertEqual(url.username, "gw")
        XCTAssertEqual(url.database, 2)
        XCTAssertEqual(url.description, "redis-sentinel://gw:***@s1:26379,s2:26380,s3:26379/orders-primary/2")
        XCTAssertEqual(try RedisURL("redis-sentinel://s1/mymaster").database, 0)
        XCTAssertEqual(try RedisURL("REDIS-SENTINEL://s1/mymaster/").database, 0)
    }

    func testMalformedTopologyURLsAreRefused() {
        let bad = [
            "redis://a,b", "redis-cluster://a/0", "redis-cluster://a,", "redis-cluster://,a", "redis-sentinel://s1",
            "redis-sentinel://s1/", "redis-sentinel://s1/m/x", "redis-sentinel://s1/m/1/2", "redis-sentinel://s1,s2:0/m",
        ]
        for text in bad {
            XCTAssertThrowsError(try RedisURL(text), text) { XCTAssertEqual($0 as? RedisClientError, .invalidURL, text) }
        }
    }
}
