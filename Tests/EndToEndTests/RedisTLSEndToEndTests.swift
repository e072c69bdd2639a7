import Foundation
import NIOPosix
import RedisTestServer
import TestCertificateAuthority
import XCTest

/// A gateway whose Redis is `rediss://` with `redis.tls` (a test CA, the server name the
/// certificate carries): its revocation feed subscribes and reads over TLS, and
/// `erp-gateway token revoke` writes over TLS, so a revoked token is refused.
final class RedisTLSEndToEndTests: GatewayTestCase {
    var redis: RedisProcess!
    var terminator: RedisTLSTerminator?
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    override func tearDown() async throws {
        try await super.tearDown()
        try self.terminator?.close()
        self.redis?.stop()
        try await self.group.shutdownGracefully()
    }

    func testRevocationsTravelOverTLS() async throws {
        self.redis = try RedisProcess()
        let authority = try TestCertificateAuthority()
        let issued = try authority.issueServer(domains: ["redis.test"])
        let terminator = try RedisTLSTerminator(certificateChainPath: issued.chainPath, keyPath: issued.keyPath, forwardingTo: self.redis.port, group: self.group)
        self.terminator = terminator
        try await self.startBackends(1)
        let redisSettings = """
            redis:
              url: rediss://127.0.0.1:\(terminator.port)/0
              keyPrefix: erp-test
              tls: { caBundle: \(authority.certificatePath), serverName: redis.test }

            """
        self.gateway = try GatewayProcess(
            settings: gatewaySettings(endpoints: self.backends.map(\.port), tenantTree: "tenants.yaml", extra: SecurityMatrixTests.platformIssuer + redisSettings),
            files: ["tenants.yaml": SecurityMatrixTests.tree]
        )
        XCTAssertTrue(self.gateway.waitForLog("revocation feed started"), self.gateway.log)
        let expiresAt = Int(Date().timeIntervalSince1970) + 600
        let token = try TestIdentity.mint(
            issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1", claims: ["jti=tls-1", "exp=\(expiresAt)"]
        )
        func status() -> Int { (try? request(port: self.port, "GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")]).status) ?? 0 }
        XCTAssertEqual(status(), 200)

        let (exit, output) = try runCommand(GatewayProcess.binary, ["token", "revoke", "--config", self.gateway.configPath, "--jti", "tls-1", "--expires-at", "\(expiresAt)"])
        XCTAssertEqual(exit, 0, output)
        XCTAssertTrue(output.contains("1 gateway node notified"), output)
        XCTAssertTrue(self.eventually(5) { status() == 401 }, "the node never refused the token revoked over TLS")
        XCTAssertFalse(try self.redis.cli(["KEYS", "erp-test:revoked:*"]).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "written through the TLS port")
    }
}
