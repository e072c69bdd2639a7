import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Every way a request may try to act for a tenant it should not, through the real binary: the
/// exact status and problem type, and proof that the upstream never saw a refused request.
final class SecurityMatrixTests: GatewayTestCase {
    static let tree = """
        catalog:
          features: [ledger, payroll]
          packages:
            basic: [ledger]
            full: [ledger, payroll]
          routes:
            - { path: /v1/ledger, feature: ledger }
            - { path: /v1/payroll, feature: payroll }
            - { path: /v1/reports, method: GET }
        tenants:
          - id: acme
            kind: oem
            placement: { tier: pooled, region: test }
            origins: [https://app.acme.test]
            branding: { displayName: Acme ERP, primaryColor: "#123456" }
            issuers:
              - iss: https://id.acme.test
                audience: erp-gateway
                keys:
                  - { kid: acme-1, alg: RS256, pemFile: \(TestIdentity.acmeOld.publicKey) }
                  - { kid: acme-2, alg: RS256, pemFile: \(TestIdentity.acmeNew.publicKey) }
          - id: p1
            kind: partner
            parent: acme
            issuers:
              - iss: https://id.p1.test
                audience: erp-gateway
                keys: [{ kid: p1-1, alg: RS256, pemFile: \(TestIdentity.partnerOne.publicKey) }]
          - { id: p2, kind: partner, parent: acme }
          - { id: p3, kind: partner, parent: acme, status: suspended }
          - { id: c1, kind: customer, parent: p1, package: full, branding: { primaryColor: "#abcdef" } }
          - { id: c1basic, kind: customer, parent: p1, package: basic }
          - { id: c2, kind: customer, parent: p2, package: full }
          - { id: c3, kind: customer, parent: p3, package: full }
          - id: globex
            kind: oem
            placement: { tier: pooled, region: test }
            issuers:
              - iss: https://id.globex.test
                audience: erp-gateway
                keys: [{ kid: g-1, alg: ES256, pemFile: \(TestIdentity.globex.publicKey) }]
          - { id: gp, kind: partner, parent: globex }
          - { id: g1, kind: customer, parent: gp, package: full }
        """

    static var platformIssuer: String {
        """
        platformIssuers:
          - iss: https://id.platform.test
            audience: erp-gateway
            keys: [{ kid: platform-1, alg: RS256, pemFile: \(TestIdentity.platform.publicKey) }]

        """
    }

    override func setUp() async throws {
        try await super.setUp()
        try await self.startBackends(1)
        // Header limit raised so that a 64 KiB token reaches the token verifier's own limit; h2c
        // on, for the same cases over HTTP/2.
        self.gateway = try GatewayProcess(
            settings: gatewaySettings(
                endpoints: self.backends.map(\.port), ["limits": ["maxHeaderBytes": "96KiB"], "listener": ["http2": "{ cleartext: true }"]],
                tenantTree: "tenants.yaml", extra: Self.platformIssuer
            ),
            files: ["tenants.yaml": Self.tree]
        )
    }

    // MARK: - Tokens

    func acme(_ tenant: String, kid: String = "acme-1", claims: [String] = [], ttl: Int = 600, audience: String = "erp-gateway") throws -> String {
        let key = kid == "acme-2" ? TestIdentity.acmeNew.privateKey : TestIdentity.acmeOld.privateKey
        return try TestIdentity.mint(issuer: "https://id.acme.test", key: key, kid: kid, tenant: tenant, audience: audience, ttl: ttl, claims: claims)
    }

    // MARK: - The matrix

    struct Case {
        var name: String
        var method = "GET"
        var target = "/v1/ledger"
        var headers: [(String, String)] = []
        var status: Int
        var slug: String?
    }

    func bearer(_ token: String) -> (String, String) { ("Authorization", "Bearer \(token)") }

    func testSecurityMatrix() throws {
        try self.check(self.matrix()) { try request(port: self.port, $0.method, $0.target, headers: $0.headers) }
    }

    /// The same cases through curl over HTTP/2 — but those whose header block exceeds 16 KiB:
    /// curl sends its first request before the gateway's SETTINGS reach it, and until the client
    /// acknowledges them swift-nio-http2 holds a header block to 16 KiB (configuration.md).
    func testSecurityMatrixOverHTTP2() throws {
        let cases = try self.matrix().filter { RequestHeadBytes.of($0.headers) <= 16 << 10 }
        try self.check(cases) { try curlRequest(.http2, port: self.port, $0.method, $0.target, headers: $0.headers) }
    }

    func matrix() throws -> [Case] {
        let now = Int64(Date().timeIntervalSince1970)
        let c1 = try self.acme("c1")
        let basic = try self.acme("c1basic")
        let hmacWithPublicKey = try self.hmacTokenSignedWithThePublicKeyPEM()

        let cases: [Case] = [
            // Issuers act only inside their subtree; the platform anywhere.
            Case(name: "OEM's key, own customer", headers: [self.bearer(c1)], status: 200),
            Case(name: "rotation: the new kid during the overlap", headers: [self.bearer(try self.acme("c1", kid: "acme-2"))], status: 200),
            Case(name: "OEM A's key for OEM B's customer", headers: [self.bearer(try self.acme("g1"))], status: 403, slug: "tenant-not-permitted"),
            Case(name: "an unknown tenant looks the same as a foreign one", headers: [self.bearer(try self.acme("nobody"))], status: 403, slug: "tenant-not-permitted"),
            Case(
                name: "partner P1's key for its own customer",
                headers: [self.bearer(try TestIdentity.mint(issuer: "https://id.p1.test", key: TestIdentity.partnerOne.privateKey, kid: "p1-1", tenant: "c1"))],
                status: 200
            ),
            Case(
                name: "partner P1's key for sibling P2's customer",
                headers: [self.bearer(try TestIdentity.mint(issuer: "https://id.p1.test", key: TestIdentity.partnerOne.privateKey, kid: "p1-1", tenant: "c2"))],
                status: 403, slug: "tenant-not-permitted"
            ),
            Case(
                name: "platform key for any customer",
                headers: [self.bearer(try TestIdentity.mint(issuer: "https://id.platform.test", key: TestIdentity.platform.privateKey, kid: "platform-1", tenant: "g1"))],
                status: 200
            ),
            Case(
                name: "ES256 issuer",
                headers: [self.bearer(try TestIdentity.mint(issuer: "https://id.globex.test", key: TestIdentity.globex.privateKey, alg: "ES256", kid: "g-1", tenant: "g1"))],
                status: 200
            ),

            // The token itself.
            Case(name: "no token", status: 401, slug: "token-missing"),
            Case(name: "token in the query", target: "/v1/ledger?access_token=\(c1)", status: 400, slug: "token-in-query"),
            Case(name: "alg none", headers: [self.bearer(Self.unsignedToken(tenant: "c1", now: now))], status: 401, slug: "algorithm-not-allowed"),
            Case(name: "HS256 signed with the RSA public key's PEM", headers: [self.bearer(hmacWithPublicKey)], status: 401, slug: "algorithm-not-allowed"),
            Case(name: "64 KiB token", headers: [self.bearer(String(repeating: "a", count: 65536))], status: 401, slug: "token-too-large"),
            Case(name: "garbage", headers: [self.bearer("not-a-jwt")], status: 401, slug: "malformed-token"),
            Case(name: "not a bearer token", headers: [("Authorization", "Basic YWxpY2U6c2VjcmV0")], status: 401, slug: "token-missing"),
            Case(name: "tampered signature", headers: [self.bearer(String(c1.dropLast(4)) + "AAAA")], status: 401, slug: "bad-signature"),
            Case(name: "unknown issuer", headers: [self.bearer(try TestIdentity.mint(issuer: "https://id.nobody.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1"))], status: 401, slug: "unknown-issuer"),
            Case(name: "unknown kid", headers: [self.bearer(try self.acme("c1", kid: "acme-9"))], status: 401, slug: "unknown-key"),
            Case(name: "wrong audience", headers: [self.bearer(try self.acme("c1", audience: "another-api"))], status: 401, slug: "wrong-audience"),
            Case(name: "expired 1 s beyond the 30 s skew", headers: [self.bearer(try self.acme("c1", claims: ["iat=\(now - 100)", "exp=\(now - 31)"]))], status: 401, slug: "token-expired"),
            Case(name: "expired within the skew", headers: [self.bearer(try self.acme("c1", claims: ["iat=\(now - 100)", "exp=\(now - 5)"]))], status: 200),
            Case(name: "lifetime above the issuer's maximum", headers: [self.bearer(try self.acme("c1", ttl: 7200))], status: 401, slug: "token-lifetime-too-long"),

            // Tenant status, features, methods, origins.
            Case(name: "suspended partner's customer", headers: [self.bearer(try self.acme("c3"))], status: 403, slug: "tenant-suspended"),
            Case(name: "feature not in the package", target: "/v1/payroll", headers: [self.bearer(basic)], status: 403, slug: "feature-not-enabled"),
            Case(name: "bypass: dot segments", target: "/v1/ledger/../payroll", headers: [self.bearer(basic)], status: 403, slug: "feature-not-enabled"),
            Case(name: "bypass: encoded letters", target: "/v1/%70ayroll", headers: [self.bearer(basic)], status: 403, slug: "feature-not-enabled"),
            Case(name: "bypass: encoded dot segments", target: "/v1/ledger/%2e%2e/payroll", headers: [self.bearer(basic)], status: 403, slug: "feature-not-enabled"),
            Case(name: "bypass: doubled slashes", target: "//v1//payroll", headers: [self.bearer(basic)], status: 403, slug: "feature-not-enabled"),
            Case(name: "bypass: encoded slash", target: "/v1/ledger%2f..%2fpayroll", headers: [self.bearer(basic)], status: 400, slug: "ambiguous-path"),
            Case(name: "bypass: backslash", target: "/v1/ledger\\..\\payroll", headers: [self.bearer(basic)], status: 400, slug: "ambiguous-path"),
            Case(name: "bypass: above the root", target: "/../v1/payroll", headers: [self.bearer(basic)], status: 400, slug: "ambiguous-path"),
            Case(name: "allowed feature for the basic package", headers: [self.bearer(basic)], status: 200),
            Case(name: "method the route does not serve", method: "POST", target: "/v1/reports", headers: [self.bearer(c1)], status: 405, slug: "method-not-allowed"),
            Case(name: "no route", target: "/v1/admin", headers: [self.bearer(c1)], status: 404, slug: "route-not-found"),
            Case(name: "origin not allowed", headers: [self.bearer(c1), ("Origin", "https://evil.test")], status: 403, slug: "origin-not-allowed"),
            Case(name: "origin allowed", headers: [self.bearer(c1), ("Origin", "https://app.acme.test")], status: 200),
            Case(
                name: "preflight from an unregistered origin", method: "OPTIONS",
                headers: [("Origin", "https://evil.test"), ("Access-Control-Request-Method", "GET")], status: 403, slug: "origin-not-allowed"
            ),
        ]
        return cases
    }

    /// Sends every case with `send` and checks its answer, and that only the cases answered 200
    /// reached the upstream (once each).
    func check(_ cases: [Case], send: (Case) throws -> RawHTTPConnection.Response) throws {
        var failures: [String] = []
        for testCase in cases {
            let before = self.backends[0].statistics.requests
            let response: RawHTTPConnection.Response
            do { response = try send(testCase) } catch {
                failures.append("\(testCase.name): \(error)")
                continue
            }
            let forwarded = self.backends[0].statistics.requests - before
            var problems: [String] = []
            if response.status != testCase.status { problems.append("status \(response.status), expected \(testCase.status)") }
            if let slug = testCase.slug {
                let type = (try? response.json()["type"] as? String) ?? nil
                if type != "urn:erp-gateway:problem:\(slug)" { problems.append("type \(type ?? "none"), expected \(slug)") }
                if forwarded != 0 { problems.append("the upstream saw a refused request") }
                if response.status == 401, !(response.header("www-authenticate")?.hasPrefix("Bearer") ?? false) {
                    problems.append("401 without a Bearer challenge")
                }
            } else if testCase.status == 200, forwarded != 1 {
                problems.append("expected exactly one forwarded request, saw \(forwarded)")
            }
            if !problems.isEmpty { failures.append("\(testCase.name): \(problems.joined(separator: "; "))") }
        }
        XCTAssertTrue(failures.isEmpty, "\n" + failures.joined(separator: "\n"))
    }

    func testForwardedRequestsCarryASignedContextAndNoClientCopies() throws {
        for wire in WireProtocol.allCases {
            try self.assertSignedContext(over: wire)
        }
    }

    func assertSignedContext(over wire: WireProtocol) throws {
        let token = try self.acme("c1")
        let response = try curlRequest(wire, port: self.port, "GET", "/v1/ledger/../ledger/7?from=2026-11-01", headers: [
            self.bearer(token), ("X-ERP-Tenant", "c2"), ("X-ERP-Features", "everything"), ("X-Request-Id", "sig-check-1"),
            // Underscore twins, which CGI- and WSGI-style backends fold into the real names.
            ("X_ERP_Tenant", "c2"), ("x_erp_partner", "p2"), ("X_Forwarded_For", "203.0.113.9"), ("X_Request_Id", "forged"),
            ("X_Custom_Field", "kept"),
        ])
        XCTAssertEqual(response.status, 200, wire.rawValue)
        let seen = try SeenRequest(response)
        XCTAssertEqual(seen.uri, "/v1/ledger/7?from=2026-11-01", "the normalized target is what is forwarded")
        XCTAssertEqual(seen.values("x-erp-tenant"), ["c1"], "the client's copy is removed")
        XCTAssertEqual(seen.values("x-erp-partner"), ["p1"])
        XCTAssertEqual(seen.values("x-erp-oem"), ["acme"])
        XCTAssertEqual(seen.values("x-erp-tenant-path"), ["acme/p1/c1"])
        XCTAssertEqual(seen.values("x-erp-features"), ["ledger,payroll"])
        XCTAssertEqual(seen.values("x-erp-tier"), ["pooled"])
        XCTAssertTrue(seen.values("authorization").isEmpty, "the caller's credential stays at the gateway")
        let names = seen.headers.map { $0.0.lowercased() }
        for twin in ["x_erp_tenant", "x_erp_partner", "x_forwarded_for", "x_request_id"] {
            XCTAssertFalse(names.contains(twin), "\(twin) is removed")
        }
        XCTAssertEqual(seen.values("x_custom_field"), ["kept"], "other names with underscores pass")

        // Verify the signature the way docs/backend-contract.md tells a backend to, in Python.
        let signature = try XCTUnwrap(seen.value("x-erp-context-signature"))
        let lines = [
            "v1", "GET", seen.uri, "c1", "p1", "acme", "acme/p1/c1", "ledger,payroll", "pooled", "sig-check-1", try XCTUnwrap(seen.value("x-erp-context-time")),
        ]
        let script = """
            import base64, hashlib, hmac, sys
            secret = base64.b64decode(sys.argv[1])
            canonical = "".join(line + "\\n" for line in sys.argv[2:]).encode()
            print("v1;key=\(TestIdentity.contextKeyID);sig=" + base64.urlsafe_b64encode(hmac.new(secret, canonical, hashlib.sha256).digest()).rstrip(b"=").decode())
            """
        let (status, output) = try runCommand(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script, TestIdentity.contextSecretBase64] + lines)
        XCTAssertEqual(status, 0, output)
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), signature)
    }

    /// CONNECT never reaches the tenant phases: refused before the token is read, framed, and the
    /// connection closed, so no upstream connection, cell slot or quota is held.
    func testConnectIsRefusedBeforeAnyPhase() throws {
        let token = try self.acme("c1")
        for target in ["/v1/ledger", "/v1/payroll", "/v1/unknown"] {
            try assertConnectRefused(
                "CONNECT \(target) HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer \(token)\r\nContent-Length: 7\r\n\r\npayload", port: self.port
            )
        }
        try assertConnectRefused("CONNECT /v1/ledger HTTP/1.1\r\nHost: gateway.test\r\n\r\n", port: self.port)
        XCTAssertTrue(self.gateway.waitForLog("phase=decode problem=method-not-implemented"), "the log names the phase:\n" + self.gateway.log)
        XCTAssertEqual(self.backends[0].statistics.requests, 0)
        XCTAssertEqual(self.backends[0].statistics.connectionsAccepted, 0)
    }

    func testCORSPreflightAndResponseHeaders() throws {
        let preflight = try request(port: self.port, "OPTIONS", "/v1/ledger", headers: [
            ("Origin", "https://app.acme.test"), ("Access-Control-Request-Method", "GET"), ("Access-Control-Request-Headers", "authorization, content-type"),
        ])
        XCTAssertEqual(preflight.status, 204)
        XCTAssertNil(preflight.header("content-length"), "a 204 has no Content-Length")
        XCTAssertNil(preflight.header("transfer-encoding"))
        XCTAssertEqual(preflight.header("access-control-allow-origin"), "https://app.acme.test")
        XCTAssertEqual(preflight.header("access-control-allow-methods"), "GET")
        XCTAssertEqual(preflight.header("access-control-allow-headers"), "authorization, content-type")
        XCTAssertNil(preflight.header("access-control-allow-credentials"))
        XCTAssertTrue(preflight.header("vary")?.contains("Origin") ?? false)

        let real = try request(port: self.port, "GET", "/v1/ledger", headers: [self.bearer(try self.acme("c1")), ("Origin", "https://app.acme.test")])
        XCTAssertEqual(real.status, 200)
        XCTAssertEqual(real.header("access-control-allow-origin"), "https://app.acme.test", "the one origin, never *")
        XCTAssertEqual(real.header("vary"), "Origin")
        XCTAssertEqual(self.backends[0].statistics.requests, 1, "the preflight is answered by the gateway")
    }

    func testHotTokensAreVerifiedOnceAndARefusalIsLoggedWithItsReason() throws {
        let token = try self.acme("c1")
        let client = try RawHTTPConnection(port: self.port)
        for _ in 0..<200 {
            try client.send(requestText("GET", "/v1/ledger", headers: [self.bearer(token)]))
            XCTAssertEqual(try client.readResponse().status, 200)
        }
        _ = try request(port: self.port, "GET", "/v1/ledger", headers: [self.bearer(try TestIdentity.mint(issuer: "https://id.p1.test", key: TestIdentity.partnerOne.privateKey, kid: "p1-1", tenant: "c2"))])
        XCTAssertTrue(self.gateway.waitForLog("reason=tenant outside the issuer's subtree"), "the log has the precise reason")
    }

    func testBrandingOfTheCallersOwnTenant() throws {
        let own = try request(port: self.port, "GET", "/v1/branding", headers: [self.bearer(try self.acme("c1"))])
        XCTAssertEqual(own.status, 200)
        XCTAssertEqual(try own.json()["displayName"] as? String, "Acme ERP")
        XCTAssertEqual(try own.json()["primaryColor"] as? String, "#abcdef")
        XCTAssertEqual(own.header("cache-control"), "private, max-age=60", "never kept by a shared cache")
        let sibling = try request(port: self.port, "GET", "/v1/branding", headers: [self.bearer(try self.acme("c1basic"))])
        XCTAssertEqual(try sibling.json()["primaryColor"] as? String, "#123456")
        try self.assertProblem(
            request(port: self.port, "GET", "/v1/branding", headers: [self.bearer("not-a-jwt")]), status: 401, slug: "malformed-token"
        )
        XCTAssertEqual(self.backends[0].statistics.requests, 0)
    }

    // MARK: - Hand-made hostile tokens

    /// `{"alg":"none"}` with valid claims and a junk signature.
    static func unsignedToken(tenant: String, now: Int64) -> String {
        func encode(_ json: String) -> String {
            Data(json.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let header = encode(#"{"alg":"none","kid":"acme-1","typ":"JWT"}"#)
        let claims = encode(#"{"iss":"https://id.acme.test","sub":"u","aud":"erp-gateway","iat":\#(now),"exp":\#(now + 600),"tenant":"\#(tenant)"}"#)
        return "\(header).\(claims).c2lnbmF0dXJl"
    }

    /// The classic confusion: HS256 keyed with the text of the issuer's RSA public key.
    func hmacTokenSignedWithThePublicKeyPEM() throws -> String {
        let pem = try String(contentsOfFile: TestIdentity.acmeOld.publicKey, encoding: .utf8)
        let secretFile = self.gateway.directory.appendingPathComponent("public-as-secret.b64")
        try Data(pem.utf8).base64EncodedString().write(to: secretFile, atomically: true, encoding: .utf8)
        return try TestIdentity.mint(issuer: "https://id.acme.test", key: secretFile.path, alg: "HS256", kid: "acme-1", tenant: "c1")
    }
}

enum RequestHeadBytes {
    /// Names and values, as a header list counts them.
    static func of(_ headers: [(String, String)]) -> Int {
        headers.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 32 }
    }
}
