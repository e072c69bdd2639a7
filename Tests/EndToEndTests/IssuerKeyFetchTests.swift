import Foundation
import NIOPosix
import TestCertificateAuthority
import UpstreamFixtures
import XCTest

/// Issuers whose keys come from their identity provider: a JWKS server over HTTPS on loopback
/// (test CA), and the real gateway fetching from it with ~1 s bounds.
final class IssuerKeyFetchTests: GatewayTestCase {
    static let issuer = "https://id.provider.test"
    var provider: IdentityProviderFixture!
    var authority: TestCertificateAuthority!

    override func setUp() async throws {
        try await super.setUp()
        self.authority = try TestCertificateAuthority()
        let issued = try self.authority.issueServer(domains: ["127.0.0.1"])
        self.provider = try await IdentityProviderFixture.start(
            certificateChainPEM: issued.chainPEM, keyPEM: issued.keyPEM, group: Self.upstreamGroup
        )
    }

    override func tearDown() async throws {
        try await super.tearDown()
        await self.provider?.stop()
    }

    /// A tree with one OEM whose issuer fetches its keys (`source` is `jwksUri: …` or
    /// `discovery: …`), and one customer under it.
    var opsPort = 0

    func startGateway(source: String, algorithms: String = "[RS256]", keyFetch: String = "") async throws {
        self.opsPort = try freePort()
        try await self.startBackends(1)
        let tree = """
            catalog:
              features: [ledger]
              packages:
                basic: [ledger]
              routes:
                - path: /orders
            tenants:
              - id: idp
                kind: oem
                placement: { tier: pooled, region: test }
                issuers:
                  - iss: \(Self.issuer)
                    audience: erp-gateway
                    \(source)
                    algorithms: \(algorithms)
              - id: idp-resell
                kind: partner
                parent: idp
              - id: idp-shop
                kind: customer
                parent: idp-resell
                package: basic
            """
        let extra = """
            authentication:
              keyFetch:
                caFile: \(self.authority.certificatePath)
                timeout: 2s
                minimumRefresh: 1s
                defaultRefresh: 1s
                maximumRefresh: 1h
            \(keyFetch)
            ops:
              address: 127.0.0.1
              port: \(self.opsPort)
            """
        self.gateway = try self.treeGateway(tree, extra: extra)
    }

    func token(_ key: TestIdentity.KeyPair, alg: String = "RS256", kid: String) throws -> String {
        try TestIdentity.mint(issuer: Self.issuer, key: key.privateKey, alg: alg, kid: kid, tenant: "idp-shop")
    }

    func get(_ token: String) throws -> RawHTTPConnection.Response {
        try request(port: self.port, "GET", "/orders/1", headers: [("Authorization", "Bearer \(token)")])
    }

    /// A token no key signed, with the given `kid`: the verifier refuses an unknown `kid` before
    /// it looks at the signature.
    static func unsigned(kid: String) -> String {
        func segment(_ text: String) -> String {
            Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let now = Int(Date().timeIntervalSince1970)
        return segment(#"{"alg":"RS256","kid":"\#(kid)"}"#) + "."
            + segment(#"{"iss":"\#(issuer)","aud":"erp-gateway","sub":"u","tenant":"idp-shop","exp":\#(now + 300)}"#) + ".AAAA"
    }

    func testATokenFromARotatedProviderKeyIsAcceptedWithinOneRefresh() async throws {
        self.provider.serve(jwks: JWKText.set([try JWKText.rsa(TestIdentity.acmeOld, kid: "k1")]), cacheControl: "max-age=1")
        try await self.startGateway(source: "jwksUri: \(self.provider.jwksURL)")
        let old = try self.token(TestIdentity.acmeOld, kid: "k1")
        XCTAssertTrue(try self.eventually(5) { try self.get(old).status == 200 }, "the first fetch's key verifies")

        // The provider rotates: k2 published, k1 withdrawn. No restart, no admin action.
        self.provider.serve(jwks: JWKText.set([try JWKText.rsa(TestIdentity.acmeNew, kid: "k2")]), cacheControl: "max-age=1")
        let new = try self.token(TestIdentity.acmeNew, kid: "k2")
        XCTAssertTrue(try self.eventually(4) { try self.get(new).status == 200 }, "the rotated key verifies after one refresh")
        try self.assertProblem(self.get(old), status: 401, slug: "unknown-key")
        XCTAssertTrue(self.gateway.waitForLog("issuer keys fetched"))

        // Fetches, failures and the key set's age per issuer.
        self.provider.setDown(true)
        XCTAssertTrue(self.gateway.waitForLog("issuer keys not fetched", timeout: 5))
        let metrics = try request(port: self.opsPort, "GET", "/metrics").text
        XCTAssertTrue(metrics.contains(#"erp_gateway_issuer_key_fetches_total{issuer="\#(Self.issuer)",result="success"}"#), metrics)
        XCTAssertTrue(metrics.contains(#"erp_gateway_issuer_key_fetches_total{issuer="\#(Self.issuer)",result="unreachable"}"#), metrics)
        XCTAssertTrue(metrics.contains(#"erp_gateway_issuer_key_set_age_seconds{issuer="\#(Self.issuer)"}"#), metrics)
        XCTAssertTrue(metrics.contains(#"erp_gateway_issuer_keys{issuer="\#(Self.issuer)"} 1"#), metrics)
    }

    func testAnUnknownKidFloodFetchesAtMostOncePerMinimumRefresh() async throws {
        // max-age of an hour: every fetch after the first is an early one.
        self.provider.serve(jwks: JWKText.set([try JWKText.rsa(TestIdentity.acmeOld, kid: "k1")]), cacheControl: "max-age=3600")
        try await self.startGateway(source: "jwksUri: \(self.provider.jwksURL)")
        let good = try self.token(TestIdentity.acmeOld, kid: "k1")
        XCTAssertTrue(try self.eventually(5) { try self.get(good).status == 200 })
        let before = self.provider.fetches(IdentityProviderFixture.jwksPath)

        let started = Date()
        let connection = try RawHTTPConnection(port: self.port)
        var sent = 0
        // Bounded in count and time: 400 made-up kids, at most 2.5 s.
        while sent < 400, Date().timeIntervalSince(started) < 2.5 {
            try connection.send(requestText("GET", "/orders/1", headers: [("Authorization", "Bearer \(Self.unsigned(kid: "random-\(sent)"))")]))
            XCTAssertEqual(try connection.readResponse().status, 401)
            sent += 1
            usleep(5_000)
        }
        let elapsed = Date().timeIntervalSince(started)
        usleep(300_000)
        let early = self.provider.fetches(IdentityProviderFixture.jwksPath) - before
        XCTAssertGreaterThanOrEqual(early, 1, "an unknown kid refreshes early")
        XCTAssertLessThanOrEqual(early, Int(elapsed.rounded(.up)) + 1, "\(sent) unknown kids in \(elapsed) s")
        XCTAssertLessThan(early, sent / 10)
    }

    func testTheLastGoodKeysServeForTheBoundWhileTheProviderIsDownThenTheDocumentedProblem() async throws {
        self.provider.serve(jwks: JWKText.set([try JWKText.rsa(TestIdentity.acmeOld, kid: "k1")]), cacheControl: "max-age=1")
        try await self.startGateway(source: "jwksUri: \(self.provider.jwksURL)", keyFetch: "    staleKeysFor: 2s")
        let token = try self.token(TestIdentity.acmeOld, kid: "k1")
        XCTAssertTrue(try self.eventually(5) { try self.get(token).status == 200 })

        self.provider.setDown(true)
        let down = Date()
        XCTAssertEqual(try self.get(token).status, 200, "the last good keys keep working")
        var refused: RawHTTPConnection.Response?
        _ = try self.eventually(8) {
            let response = try self.get(token)
            if response.status == 503 { refused = response }
            return refused != nil
        }
        let response = try XCTUnwrap(refused, "refused once the bound is over")
        try self.assertProblem(response, status: 503, slug: "issuer-keys-unavailable")
        // The refresh was due 1 s after the last fetch; the keys served 2 s past that.
        XCTAssertGreaterThan(Date().timeIntervalSince(down), 1.0)
        XCTAssertTrue(self.gateway.waitForLog("issuer keys not fetched"))

        // Back up: keys again, without a restart.
        self.provider.setDown(false)
        XCTAssertTrue(try self.eventually(5) { try self.get(token).status == 200 })
    }

    func testAPublishedKeyWhoseAlgWidensThePinnedSetIsIgnored() async throws {
        let widening = try JWKText.rsa(TestIdentity.acmeNew, kid: "wide", alg: "RS512")
        self.provider.serve(jwks: JWKText.set([try JWKText.rsa(TestIdentity.acmeOld, kid: "k1"), widening]), cacheControl: "max-age=60")
        try await self.startGateway(source: "jwksUri: \(self.provider.jwksURL)", algorithms: "[RS256]")
        let good = try self.token(TestIdentity.acmeOld, kid: "k1")
        XCTAssertTrue(try self.eventually(5) { try self.get(good).status == 200 })
        // Signed correctly with the published key, under the algorithm it was published for.
        let wide = try self.token(TestIdentity.acmeNew, alg: "RS512", kid: "wide")
        try self.assertProblem(self.get(wide), status: 401, slug: "unknown-key")
        XCTAssertTrue(self.gateway.waitForLog("published key ignored"))
        XCTAssertTrue(self.gateway.waitForLog("not one the issuer's configuration allows"))
    }

    func testDiscoveryNamingAnotherIssuerIsRefusedAndTheMatchingOneIsUsed() async throws {
        self.provider.serve(jwks: JWKText.set([try JWKText.rsa(TestIdentity.acmeOld, kid: "k1")]), cacheControl: "max-age=60")
        self.provider.serveDiscovery(issuer: "https://someone-else.test")
        try await self.startGateway(source: "discovery: \(self.provider.discoveryURL)")
        let token = try self.token(TestIdentity.acmeOld, kid: "k1")
        XCTAssertTrue(self.gateway.waitForLog("the discovery document's issuer is not the configured iss"))
        try self.assertProblem(self.get(token), status: 503, slug: "issuer-keys-unavailable")
        XCTAssertEqual(self.provider.fetches(IdentityProviderFixture.jwksPath), 0, "keys are not read from a provider that names another issuer")

        self.provider.serveDiscovery(issuer: Self.issuer)
        XCTAssertTrue(try self.eventually(5) { try self.get(token).status == 200 }, "retried after minimumRefresh, then used")
    }

    func testAProviderOutsideTheAllowedHostsIsNeverAskedUntilTheListNamesIt() async throws {
        self.provider.serve(jwks: JWKText.set([try JWKText.rsa(TestIdentity.acmeOld, kid: "k1")]), cacheControl: "max-age=60")
        self.provider.serveDiscovery(issuer: Self.issuer)
        try await self.startGateway(source: "discovery: \(self.provider.discoveryURL)", keyFetch: "    allowedHosts: [localhost, \"*.idp.test\"]")
        let token = try self.token(TestIdentity.acmeOld, kid: "k1")
        XCTAssertTrue(self.gateway.waitForLog("not in the gateway's authentication.keyFetch.allowedHosts"))
        try self.assertProblem(self.get(token), status: 503, slug: "issuer-keys-unavailable")
        XCTAssertEqual(self.provider.fetches(IdentityProviderFixture.discoveryPath), 0, "nothing is requested from a host outside the list")
        XCTAssertEqual(self.provider.fetches(IdentityProviderFixture.jwksPath), 0)

        // The operator adds the provider's host; the next fetch after the reload is made.
        let settingsFile = self.gateway.directory.appendingPathComponent("gateway.yaml")
        let settings = try String(contentsOf: settingsFile, encoding: .utf8)
        try self.gateway.replaceFile("gateway.yaml", with: settings.replacingOccurrences(of: "allowedHosts: [localhost,", with: "allowedHosts: [127.0.0.1,"))
        self.gateway.signal(SIGHUP)
        XCTAssertTrue(try self.eventually(5) { try self.get(token).status == 200 }, "fetched once the list names the host")
        XCTAssertEqual(self.provider.fetches(IdentityProviderFixture.discoveryPath), 1)
    }

    func testPS256AndEdDSATokensVerifyAndEachPinRefusesTheOther() async throws {
        self.provider.serve(jwks: JWKText.set([
            try JWKText.rsa(TestIdentity.acmeOld, kid: "ps", alg: "PS256"),
            try JWKText.ed25519(TestIdentity.edOne, kid: "ed"),
            try JWKText.rsa(TestIdentity.acmeNew, kid: "rs", alg: "RS256"),
        ]), cacheControl: "max-age=60")
        try await self.startGateway(source: "jwksUri: \(self.provider.jwksURL)", algorithms: "[RS256, PS256, EdDSA]")
        let ps = try self.token(TestIdentity.acmeOld, alg: "PS256", kid: "ps")
        XCTAssertTrue(try self.eventually(5) { try self.get(ps).status == 200 }, "PS256")
        XCTAssertEqual(try self.get(self.token(TestIdentity.edOne, alg: "EdDSA", kid: "ed")).status, 200, "EdDSA")
        // An EdDSA-pinned key refuses RS256, and an RS256-pinned key refuses EdDSA.
        try self.assertProblem(self.get(self.token(TestIdentity.acmeNew, alg: "RS256", kid: "ed")), status: 401, slug: "algorithm-not-allowed")
        try self.assertProblem(self.get(self.token(TestIdentity.edOne, alg: "EdDSA", kid: "rs")), status: 401, slug: "algorithm-not-allowed")
        // The PS256 key's RSA numbers do not make RS256 tokens acceptable.
        try self.assertProblem(self.get(self.token(TestIdentity.acmeOld, alg: "RS256", kid: "ps")), status: 401, slug: "algorithm-not-allowed")
    }
}

/// JWKs of the tests' PEM keys, read with the `openssl` command.
enum JWKText {
    static func base64URL(_ bytes: Data) -> String {
        bytes.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func rsa(_ key: TestIdentity.KeyPair, kid: String, alg: String? = nil) throws -> String {
        let (_, output) = try runCommand(URL(fileURLWithPath: "/usr/bin/openssl"), ["rsa", "-pubin", "-in", key.publicKey, "-noout", "-modulus"])
        let hex = output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "=").last.map(String.init) ?? ""
        var modulus = Data()
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            modulus.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        let algMember = alg.map { #","alg":"\#($0)""# } ?? ""
        return #"{"kty":"RSA","kid":"\#(kid)","use":"sig"\#(algMember),"n":"\#(base64URL(modulus))","e":"AQAB"}"#
    }

    static func ed25519(_ key: TestIdentity.KeyPair, kid: String) throws -> String {
        let text = try String(contentsOfFile: key.publicKey, encoding: .utf8)
        let body = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        let der = try XCTUnwrap(Data(base64Encoded: body))
        return #"{"kty":"OKP","crv":"Ed25519","kid":"\#(kid)","alg":"EdDSA","x":"\#(base64URL(der.suffix(32)))"}"#
    }

    static func set(_ keys: [String]) -> String {
        #"{"keys":[\#(keys.joined(separator: ","))]}"#
    }
}
