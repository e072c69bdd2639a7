import Foundation
import TestCertificateAuthority
import UpstreamFixtures
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// An OEM admin points its issuer at its identity provider through the admin API: the change is
/// validated by a fetch, a dry run shows the keys it would use, and nothing is stored when the
/// provider cannot be reached.
final class AdminIssuerKeyFetchTests: AdminTestCase {
    func testAnOEMAdminSetsJWKSValidatedByAFetchWithADryRunThatShowsTheKeys() async throws {
        let authority = try TestCertificateAuthority()
        let issued = try authority.issueServer(domains: ["127.0.0.1"])
        let provider = try await IdentityProviderFixture.start(certificateChainPEM: issued.chainPEM, keyPEM: issued.keyPEM, group: Self.upstreamGroup)
        defer { Task { await provider.stop() } }
        provider.serve(jwks: JWKText.set([try JWKText.rsa(TestIdentity.acmeOld, kid: "idp-1", alg: "RS256")]), cacheControl: "max-age=60")

        self.gateway = try GatewayProcess(
            settings: self.adminSettings(adminPort: self.adminPort, extra: """
                authentication:
                  keyFetch: { caFile: \(authority.certificatePath), minimumRefresh: 1s, defaultRefresh: 1s, allowedHosts: [127.0.0.1] }

                """),
            files: ["tenants.yaml": AdminTestCase.tree]
        )
        try waitUntilAccepting(port: self.adminPort, process: self.gateway.process)
        let oem = try self.token("oem-admin", "acme")
        let iss = "https://idp.acme.test"
        let body = #"{"issuers":[{"iss":"\#(iss)","audience":"erp-gateway","jwksUri":"\#(provider.jwksURL)","algorithms":["RS256"]}]}"#
        func put(_ query: String = "") throws -> RawHTTPConnection.Response {
            let read = try self.admin("GET", "/admin/v1/nodes/acme/issuers", token: oem)
            return try self.admin("PUT", "/admin/v1/nodes/acme/issuers\(query)", token: oem, ifMatch: read.header("etag") ?? "*", body: body)
        }
        let token = try TestIdentity.mint(issuer: iss, key: TestIdentity.acmeOld.privateKey, kid: "idp-1", tenant: "c1")
        func status() throws -> Int {
            try request(port: self.port, "GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")]).status
        }

        // A dry run fetches and shows the keys the gateway would verify with; nothing is stored.
        let dryRun = try put("?dryRun=true")
        XCTAssertEqual(dryRun.status, 200, dryRun.text)
        let node = try XCTUnwrap(try dryRun.json()["node"] as? [String: Any], dryRun.text)
        XCTAssertEqual((node["fetchedKeys"] as? [String: [String]])?[iss], ["idp-1 (RS256)"], dryRun.text)
        XCTAssertEqual(provider.fetches(IdentityProviderFixture.jwksPath), 1)
        XCTAssertEqual(try status(), 401, "a dry run stores nothing")

        // The provider unreachable: the change is refused, naming the field.
        provider.setDown(true)
        let refused = try put()
        XCTAssertEqual(refused.status, 422, refused.text)
        XCTAssertTrue(refused.text.contains("issuers[0].jwksUri"), refused.text)
        XCTAssertTrue(refused.text.contains("could not be reached"), refused.text)

        // A provider outside the operator's allowed hosts is refused without being asked.
        provider.setDown(false)
        let fetchesBefore = provider.fetches(IdentityProviderFixture.jwksPath)
        let elsewhere = #"{"issuers":[{"iss":"\#(iss)","audience":"erp-gateway","jwksUri":"https://localhost:\#(provider.port)\#(IdentityProviderFixture.jwksPath)","algorithms":["RS256"]}]}"#
        let read = try self.admin("GET", "/admin/v1/nodes/acme/issuers", token: oem)
        let outside = try self.admin("PUT", "/admin/v1/nodes/acme/issuers", token: oem, ifMatch: read.header("etag") ?? "*", body: elsewhere)
        XCTAssertEqual(outside.status, 422, outside.text)
        XCTAssertTrue(outside.text.contains("issuers[0].jwksUri"), outside.text)
        XCTAssertTrue(outside.text.contains("allowedHosts"), outside.text)
        XCTAssertEqual(provider.fetches(IdentityProviderFixture.jwksPath), fetchesBefore)

        // Up again: stored, and the provider's tokens verify on the data plane.
        provider.setDown(false)
        let stored = try put()
        XCTAssertEqual(stored.status, 200, stored.text)
        XCTAssertTrue(stored.text.contains(provider.jwksURL), stored.text)
        XCTAssertTrue(try self.eventually(5) { try status() == 200 })
    }
}
