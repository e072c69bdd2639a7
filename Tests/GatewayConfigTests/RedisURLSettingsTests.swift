import Foundation
import TestCertificateAuthority
import XCTest
@testable import GatewayConfig

/// `redis.url` takes the Sentinel form and the TLS forms besides one server; `redis.tls` (a
/// cell's `tls` keys) only with a TLS form. Other schemes are refused at load.
final class RedisURLSettingsTests: XCTestCase {
    func testASentinelURLIsAccepted() throws {
        let url = "redis-sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3/erp/2"
        let settings = try SettingsLoader.parse(minimalSettingsYAML + "\nredis: { url: \"\(url)\" }\n", source: "test.yaml", baseDirectory: nil)
        XCTAssertEqual(settings.redis?.url, url)
        XCTAssertNil(settings.redis?.tls)
    }

    func testAnotherSchemeIsRefused() {
        let issue = singleIssue(of: minimalSettingsYAML + "\nredis: { url: \"memcached://10.0.0.1\" }\n")
        assertIssue(issue, path: "redis.url", line: 10, mentioning: "redis-sentinel://")
    }

    func testATLSURLReadsItsTLSBlockAndBuildsAContext() throws {
        let authority = try TestCertificateAuthority()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-redis-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try authority.certificatePEM.write(to: directory.appendingPathComponent("redis-ca.pem"), atomically: true, encoding: .utf8)
        for url in ["rediss://10.0.0.1:6380/0", "rediss-sentinel://10.0.0.1,10.0.0.2/erp"] {
            let settings = try SettingsLoader.parse(
                minimalSettingsYAML + "\nredis:\n  url: \(url)\n  tls: { caBundle: redis-ca.pem, serverName: redis.internal }\n",
                source: "test.yaml", baseDirectory: directory.path
            )
            let tls = try XCTUnwrap(settings.redis?.tls)
            XCTAssertEqual(tls.caBundle?.path, directory.appendingPathComponent("redis-ca.pem").path)
            XCTAssertEqual(tls.serverName, "redis.internal")
            XCTAssertNoThrow(try tls.makeRedisClientContext())
        }
        let withoutBlock = try SettingsLoader.parse(minimalSettingsYAML + "\nredis: { url: \"rediss://10.0.0.1\" }\n", source: "test.yaml", baseDirectory: nil)
        XCTAssertNil(withoutBlock.redis?.tls, "the system's trust store and the URL's host")
    }

    func testATLSBlockNeedsATLSURLAndReadableFiles() {
        let plain = singleIssue(of: minimalSettingsYAML + "\nredis:\n  url: redis://10.0.0.1\n  tls: { serverName: redis.internal }\n")
        assertIssue(plain, path: "redis.tls", line: 12, mentioning: "rediss://")
        let missing = singleIssue(of: minimalSettingsYAML + "\nredis:\n  url: rediss://10.0.0.1\n  tls: { caBundle: /nonexistent/redis-ca.pem }\n")
        assertIssue(missing, path: "redis.tls.caBundle", line: 12, mentioning: "/nonexistent/redis-ca.pem")
    }
}
