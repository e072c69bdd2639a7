import XCTest
@testable import GatewayConfig

/// `redis.url` takes the Sentinel form besides one server; other schemes are refused at load.
final class RedisSentinelSettingsTests: XCTestCase {
    func testASentinelURLIsAccepted() throws {
        let url = "redis-sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3/erp/2"
        let settings = try SettingsLoader.parse(minimalSettingsYAML + "\nredis: { url: \"\(url)\" }\n", source: "test.yaml", baseDirectory: nil)
        XCTAssertEqual(settings.redis?.url, url)
    }

    func testAnotherSchemeIsRefused() {
        let issue = singleIssue(of: minimalSettingsYAML + "\nredis: { url: \"memcached://10.0.0.1\" }\n")
        assertIssue(issue, path: "redis.url", line: 10, mentioning: "redis-sentinel://")
    }
}
