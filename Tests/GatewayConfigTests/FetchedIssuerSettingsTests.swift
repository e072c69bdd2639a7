import Foundation
import TokenAuth
import XCTest
import Yams
@testable import GatewayConfig

/// Issuers whose keys come from their identity provider (`jwksUri`, `discovery`, `algorithms`)
/// and `authentication.keyFetch`: what is read, what is refused, what the fetcher is given.
final class FetchedIssuerSettingsTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-fetched-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        try "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".write(to: self.directory.appendingPathComponent("ca.pem"), atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        if let directory { try FileManager.default.removeItem(at: directory) }
    }

    private func load(issuer: String, authentication: String = "") throws -> GatewayConfiguration {
        let settings = minimalSettingsYAML + """

            platformIssuers:
              - iss: https://id.platform.test
                audience: erp-gateway
            \(issuer)
            \(authentication)
            """
        let path = self.directory.appendingPathComponent("gateway.yaml").path
        try settings.write(toFile: path, atomically: true, encoding: .utf8)
        return try GatewayConfiguration.load(path: path)
    }

    private func error(issuer: String, authentication: String = "") throws -> String {
        do {
            _ = try self.load(issuer: issuer, authentication: authentication)
            XCTFail("expected a rejection")
            return ""
        } catch {
            return "\(error)"
        }
    }

    func testAnIssuerWithJWKSOrDiscoveryIsGivenToTheFetcherWithItsPinnedAlgorithms() throws {
        let jwks = try self.load(issuer: "    jwksUri: https://idp.test/jwks\n    algorithms: [RS256, EdDSA]")
        XCTAssertEqual(jwks.authentication?.fetchedIssuers, [
            FetchedIssuer(issuer: "https://id.platform.test", source: .jwks("https://idp.test/jwks"), algorithms: [.RS256, .EdDSA]),
        ])
        XCTAssertEqual(jwks.authentication?.verifier.fetchesKeys(of: "https://id.platform.test"), true)
        let discovery = try self.load(issuer: "    discovery: https://idp.test/.well-known/openid-configuration\n    algorithms: [PS256]")
        XCTAssertEqual(discovery.authentication?.fetchedIssuers.first?.source, .discovery("https://idp.test/.well-known/openid-configuration"))
    }

    func testFetchedIssuersAreRefusedWhenMisshapen() throws {
        XCTAssertTrue(try self.error(issuer: "    jwksUri: http://idp.test/jwks\n    algorithms: [RS256]").contains("must be an https:// URL"))
        XCTAssertTrue(try self.error(issuer: "    jwksUri: https://idp.test/jwks").contains("missing required key 'algorithms'"))
        XCTAssertTrue(try self.error(issuer: "    jwksUri: https://idp.test/jwks\n    algorithms: [HS256]").contains("unknown algorithm 'HS256' for fetched keys"))
        XCTAssertTrue(try self.error(issuer: "    jwksUri: https://idp.test/jwks\n    algorithms: [RS256]\n    keys: []").contains("give one of keys, jwksUri or discovery"))
        XCTAssertTrue(try self.error(issuer: "    jwksUri: https://idp.test/jwks\n    discovery: https://idp.test/d\n    algorithms: [RS256]").contains("give one of keys, jwksUri or discovery"))
        XCTAssertTrue(try self.error(issuer: "").contains("missing required key 'keys'"))
    }

    func testKeyFetchSettingsAndTheirBounds() throws {
        let fetched = "    jwksUri: https://idp.test/jwks\n    algorithms: [RS256]"
        let loaded = try self.load(issuer: fetched, authentication: """
            authentication:
              keyFetch:
                caFile: ca.pem
                timeout: 2s
                minimumRefresh: 1s
                defaultRefresh: 5s
                maximumRefresh: 1h
                staleKeysFor: 2s
            """)
        let keyFetch = loaded.settings.authentication.keyFetch
        XCTAssertEqual(keyFetch.caFile, self.directory.appendingPathComponent("ca.pem").path)
        XCTAssertEqual([keyFetch.timeout, keyFetch.minimumRefresh, keyFetch.defaultRefresh, keyFetch.maximumRefresh, keyFetch.staleKeysFor],
                       [.seconds(2), .seconds(1), .seconds(5), .seconds(3600), .seconds(2)])
        XCTAssertTrue(try self.error(issuer: fetched, authentication: "authentication:\n  keyFetch:\n    caFile: missing.pem").contains("cannot read a PEM certificate bundle"))
        XCTAssertTrue(try self.error(issuer: fetched, authentication: "authentication:\n  keyFetch:\n    minimumRefresh: 2h\n    maximumRefresh: 1h")
            .contains("minimumRefresh must not be above maximumRefresh"))
        XCTAssertTrue(try self.error(issuer: fetched, authentication: "authentication:\n  keyFetch:\n    defaultRefresh: 30s")
            .contains("defaultRefresh must lie between minimumRefresh and maximumRefresh"))
    }

    func testAllowedHostsMatchNamesExactlyAndWildcardsBelowTheirDomain() throws {
        let fetched = "    jwksUri: https://idp.test/jwks\n    algorithms: [RS256]"
        XCTAssertNil(try self.load(issuer: fetched).settings.authentication.keyFetch.allowedHosts, "no list: any host")
        let loaded = try self.load(issuer: fetched, authentication: """
            authentication:
              keyFetch:
                allowedHosts: [login.microsoftonline.com, "*.okta.com", ID.Acme.Example.]
            """)
        let hosts = try XCTUnwrap(loaded.settings.authentication.keyFetch.allowedHosts)
        for allowed in ["login.microsoftonline.com", "acme.okta.com", "a.b.okta.com", "ACME.OKTA.COM", "id.acme.example", "id.acme.example."] {
            XCTAssertTrue(hosts.allows(host: allowed), allowed)
        }
        for refused in ["okta.com", "evilokta.com", "okta.com.evil.test", "microsoftonline.com", "x.login.microsoftonline.com", "127.0.0.1", ""] {
            XCTAssertFalse(hosts.allows(host: refused), refused)
        }
        XCTAssertTrue(try self.error(issuer: fetched, authentication: "authentication:\n  keyFetch:\n    allowedHosts: [\"id.*.test\"]")
            .contains("'*' only as a whole first label"))
        XCTAssertTrue(try self.error(issuer: fetched, authentication: "authentication:\n  keyFetch:\n    allowedHosts: [\"https://idp.test/\"]")
            .contains("not a host name"))
    }

    func testTheTreeWriterKeepsTheProviderAndTheAlgorithms() throws {
        let issuer = IssuerDefinition(
            issuer: "https://idp.test", audience: "erp-gateway", maxLifetime: .seconds(3600), clockSkew: .seconds(30), tenantClaim: "tenant",
            keys: [], keySource: .discovery("https://idp.test/.well-known/openid-configuration"), algorithms: ["RS256", "PS256"], node: "acme", path: "x"
        )
        let text = try Yams.serialize(node: TenantTreeWriter.issuer(issuer))
        XCTAssertTrue(text.contains("discovery: https://idp.test/.well-known/openid-configuration"), text)
        XCTAssertTrue(text.contains("algorithms:"), text)
        XCTAssertTrue(text.contains("PS256"), text)
        XCTAssertFalse(text.contains("keys:"), text)
    }
}

extension FetchedIssuerSettingsTests {
    func testAdminIssuersTakeConfiguredKeysOnly() throws {
        let issuer = IssuerDefinition(
            issuer: "https://admin.test", audience: "erp-admin", maxLifetime: .seconds(600), clockSkew: .seconds(30), tenantClaim: "role",
            keys: [], keySource: .jwks("https://admin.test/jwks"), algorithms: ["RS256"], node: nil, path: "admin.issuers[0]"
        )
        XCTAssertThrowsError(try AuthenticationConfiguration.checkAdminKeySources([issuer], settingsPath: "gateway.yaml")) { error in
            XCTAssertTrue("\(error)".contains("admin issuers take configured keys"), "\(error)")
        }
        var configured = issuer
        configured.keySource = .configured
        XCTAssertNoThrow(try AuthenticationConfiguration.checkAdminKeySources([configured], settingsPath: "gateway.yaml"))
    }
}
