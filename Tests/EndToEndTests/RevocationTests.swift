import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Revocations through the shared store: every gateway node refuses a revoked token within about
/// a second, including tokens it had cached, and a node started later knows them too.
final class RevocationTests: GatewayTestCase {
    var redis: RedisProcess!
    var secondGateway: GatewayProcess?

    func settings() -> String {
        gatewaySettings(
            endpoints: self.backends.map(\.port), tenantTree: "tenants.yaml",
            extra: SecurityMatrixTests.platformIssuer + self.redis.settings
        )
    }

    override func setUp() async throws {
        try await super.setUp()
        self.redis = try RedisProcess()
        try await self.startBackends(1)
        self.gateway = try GatewayProcess(settings: self.settings(), files: ["tenants.yaml": SecurityMatrixTests.tree])
        XCTAssertTrue(self.gateway.waitForLog("revocation feed started"))
    }

    override func tearDown() async throws {
        if let second = self.secondGateway {
            second.stop()
            if (self.testRun?.totalFailureCount ?? 0) > 0 { print("--- second gateway log ---\n\(second.log)") }
        }
        self.secondGateway = nil
        try await super.tearDown()
        self.redis.stop()
    }

    func token(_ tenant: String, jti: String) throws -> (token: String, expiresAt: Int64) {
        let expiresAt = Int64(Date().timeIntervalSince1970) + 600
        let token = try TestIdentity.mint(
            issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: tenant, claims: ["jti=\(jti)", "exp=\(expiresAt)"]
        )
        return (token, expiresAt)
    }

    func status(_ port: Int, _ token: String) -> (Int, String?) {
        guard let response = try? request(port: port, "GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")]) else { return (0, nil) }
        return (response.status, (try? response.json()["type"] as? String) ?? nil)
    }

    /// Polls until `port` refuses `token` as revoked; returns the seconds it took, or nil.
    func secondsUntilRefused(_ port: Int, _ token: String, within limit: Double = 10) -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < limit {
            if self.status(port, token) == (401, "urn:erp-gateway:problem:token-revoked") { return Date().timeIntervalSince(start) }
            usleep(20_000)
        }
        return nil
    }

    func revoke(_ arguments: [String]) throws {
        let (status, output) = try runCommand(GatewayProcess.binary, ["token", "revoke", "--config", self.gateway.configPath] + arguments)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("revoked"), output)
    }

    func testARevokedTokenIsRefusedByEveryNodeIncludingCachedCopies() async throws {
        self.secondGateway = try GatewayProcess(settings: self.settings(), files: ["tenants.yaml": SecurityMatrixTests.tree])
        let second = try XCTUnwrap(self.secondGateway)
        XCTAssertTrue(second.waitForLog("revocation feed started"))
        let (token, expiresAt) = try self.token("c1", jti: "session-7")
        let (other, _) = try self.token("c1", jti: "session-8")
        // Both nodes verify and cache the token.
        XCTAssertEqual(self.status(self.port, token).0, 200)
        XCTAssertEqual(self.status(second.port, token).0, 200)

        try self.revoke(["--jti", "session-7", "--expires-at", "\(expiresAt)"])
        let first = try XCTUnwrap(self.secondsUntilRefused(self.port, token), "node 1 never refused the revoked token")
        let secondNode = try XCTUnwrap(self.secondsUntilRefused(second.port, token), "node 2 never refused the revoked token")
        print(String(format: "revocation observed after %.2f s (node 1) and %.2f s (node 2)", first, secondNode))
        XCTAssertEqual(self.status(self.port, other).0, 200, "other tokens of the tenant are unaffected")
        XCTAssertEqual(self.backends[0].statistics.requests, 3, "refused requests never reached the upstream")

        // A node started after the revocation reads it from the store.
        second.stop()
        self.secondGateway = try GatewayProcess(settings: self.settings(), files: ["tenants.yaml": SecurityMatrixTests.tree])
        let third = try XCTUnwrap(self.secondGateway)
        XCTAssertNotNil(self.secondsUntilRefused(third.port, token), "a new node knows earlier revocations")
    }

    func testRevokingATenantRefusesItsTokensIssuedBefore() throws {
        let (old, _) = try self.token("c1basic", jti: "basic-1")
        XCTAssertEqual(self.status(self.port, old).0, 200)
        try self.revoke(["--tenant", "c1basic"])
        XCTAssertNotNil(self.secondsUntilRefused(self.port, old))
        // A token issued after the revocation works (iat is whole seconds: step past this one).
        usleep(1_100_000)
        let (fresh, _) = try self.token("c1basic", jti: "basic-2")
        XCTAssertEqual(self.status(self.port, fresh).0, 200)
        let (neighbour, _) = try self.token("c1", jti: "c1-1")
        XCTAssertEqual(self.status(self.port, neighbour).0, 200, "another tenant is unaffected")
    }

    func testRevokeNeedsRedisAndOneTarget() throws {
        let (status, output) = try runCommand(GatewayProcess.binary, ["token", "revoke", "--config", self.gateway.configPath, "--jti", "a", "--tenant", "b"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(output.contains("exactly one of --jti or --tenant"), output)
    }
}
