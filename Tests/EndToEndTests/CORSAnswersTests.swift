import Foundation
import XCTest

/// The CORS fields of every kind of answer, through the real binary, over HTTP/1.1 and HTTP/2:
/// forwarded answers and each problem the gateway answers itself carry
/// `Access-Control-Allow-Origin` (the request's origin, never `*`), the exposed fields and
/// `Vary: Origin` when the origin is allowed — any registered one before the tenant is known,
/// only the tenant's own after — and none of them otherwise.
final class CORSAnswersTests: GatewayTestCase {
    var redis: RedisProcess!

    static let app = "https://app.acme.test"
    static let erp = "https://erp.acme.test"
    static let globexApp = "https://app.globex.test"
    static let evil = "https://evil.test"
    static let exposed = "X-Request-Id, RateLimit, RateLimit-Policy, Retry-After, ETag"

    /// Acme registers `origins` and `erp`; its customer `narrow` only `erp`; globex its own app.
    /// `cdown` is placed on the cell `down`, `cgone` on `gone` (`cells`).
    static func tree(origins: [String]) -> String {
        """
        catalog:
          features: [ledger, payroll]
          packages: { basic: [ledger], full: [ledger, payroll] }
          routes:
            - { path: /v1/ledger, feature: ledger, exposeHeaders: [X-Ledger-Balance] }
            - { path: /v1/payroll, feature: payroll }
            - { path: /delay }
        tenants:
          - id: acme
            kind: oem
            placement: { tier: pooled, region: test }
            origins: [\((origins + [erp]).joined(separator: ", "))]
            branding: { displayName: Acme ERP }
            portalDomains: [erp.acme.test]
            issuers:
              - iss: https://id.acme.test
                audience: erp-gateway
                keys: [{ kid: acme-1, alg: RS256, pemFile: \(TestIdentity.acmeOld.publicKey) }]
          - { id: p1, kind: partner, parent: acme }
          - { id: c1, kind: customer, parent: p1, package: full, branding: { displayName: C1 Books } }
          - { id: basic, kind: customer, parent: p1, package: basic }
          - { id: narrow, kind: customer, parent: p1, package: full, origins: [\(erp)] }
          - { id: halted, kind: customer, parent: p1, package: full, status: suspended }
          - { id: slow, kind: customer, parent: p1, package: full, limits: { rate: 1, burst: 1 } }
          - { id: cdown, kind: customer, parent: p1, package: full, placement: { cell: down } }
          - { id: cgone, kind: customer, parent: p1, package: full, placement: { cell: gone } }
          - id: globex
            kind: oem
            placement: { tier: pooled, region: test }
            origins: [\(globexApp)]
            issuers:
              - iss: https://id.globex.test
                audience: erp-gateway
                keys: [{ kid: g-1, alg: ES256, pemFile: \(TestIdentity.globex.publicKey) }]
          - { id: gp, kind: partner, parent: globex }
          - { id: g1, kind: customer, parent: gp, package: full }
        """
    }

    /// The backend's cell, and two cells whose one endpoint is a closed port: `down`, taken out
    /// by its health check (503), and `gone`, without a check, so each attempt is refused (502).
    static func cells(backend: Int) throws -> String {
        let closed = try freePort()
        return """
            cells:
              - { id: test-cell, kind: pooled, region: test, endpoints: [127.0.0.1:\(backend)] }
              - id: down
                kind: pooled
                region: dead
                endpoints: [127.0.0.1:\(closed)]
                healthCheck: { path: /healthz, interval: 50ms, timeout: 50ms, unhealthyThreshold: 1 }
              - { id: gone, kind: pooled, region: dead, endpoints: [127.0.0.1:\(closed)] }
            defaultCell: test-cell

            """
    }

    override func setUp() async throws {
        try await super.setUp()
        self.redis = try RedisProcess()
        try await self.startBackends(1)
        let cells = try Self.cells(backend: self.backends[0].port)
        let settings = gatewaySettings(
            endpoints: [], ["listener": ["http2": "{ cleartext: true }"], "limits": ["maxRequestBodyBytes": "1KiB"], "timeouts": ["upstreamResponse": "300ms"]],
            tenantTree: "tenants.yaml", cells: cells, extra: self.redis.settings + "cors:\n  exposeHeaders: [ETag]\n"
        )
        self.gateway = try GatewayProcess(settings: settings, files: ["tenants.yaml": Self.tree(origins: [Self.app])])
    }

    override func tearDown() async throws {
        try await super.tearDown()
        self.redis.stop()
    }

    func acme(_ tenant: String) throws -> String {
        try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: tenant)
    }

    struct Case {
        var name: String
        var method = "GET"
        var target = "/v1/ledger"
        var origin: String?
        var token: String?
        var host: String?
        var status: Int
        var slug: String?
        /// The origin the answer must allow; nil: no CORS fields at all.
        var allowed: String?
        /// Problem body members beyond type, title, status and requestId.
        var extensions: Set<String> = []
    }

    func cases() throws -> [Case] {
        let c1 = try self.acme("c1")
        let basic = try self.acme("basic")
        let halted = try self.acme("halted")
        let narrow = try self.acme("narrow")
        // Another OEM's token for this OEM's customer: its issuer may not speak for it.
        let globexForC1 = try TestIdentity.mint(issuer: "https://id.globex.test", key: TestIdentity.globex.privateKey, alg: "ES256", kid: "g-1", tenant: "c1")
        let g1 = try TestIdentity.mint(issuer: "https://id.globex.test", key: TestIdentity.globex.privateKey, alg: "ES256", kid: "g-1", tenant: "g1")
        let app = Self.app
        return [
            // Before the tenant is known: any registered origin.
            Case(name: "no token", origin: app, status: 401, slug: "token-missing", allowed: app),
            Case(name: "no token, another OEM's registered origin", origin: Self.globexApp, status: 401, slug: "token-missing", allowed: Self.globexApp),
            Case(name: "no token, unregistered origin", origin: Self.evil, status: 401, slug: "token-missing", allowed: nil),
            Case(name: "no token, no origin", status: 401, slug: "token-missing", allowed: nil),
            Case(name: "bad token", origin: app, token: String(c1.dropLast(4)) + "AAAA", status: 401, slug: "bad-signature", allowed: app),
            Case(name: "malformed token", origin: app, token: "not+a+token", status: 401, slug: "malformed-token", allowed: app),
            Case(name: "token in the query", target: "/v1/ledger?access_token=x", origin: app, status: 400, slug: "token-in-query", allowed: app),
            Case(name: "no route", target: "/v1/nowhere", origin: app, token: c1, status: 404, slug: "route-not-found", allowed: app),
            Case(name: "another OEM's issuer", origin: app, token: globexForC1, status: 403, slug: "tenant-not-permitted", allowed: app),
            // The tenant known: its own origins.
            Case(name: "feature", target: "/v1/payroll", origin: app, token: basic, status: 403, slug: "feature-not-enabled", allowed: app, extensions: ["feature"]),
            Case(name: "feature, no origin", target: "/v1/payroll", token: basic, status: 403, slug: "feature-not-enabled", allowed: nil, extensions: ["feature"]),
            Case(name: "suspended", origin: app, token: halted, status: 403, slug: "tenant-suspended", allowed: app),
            // An origin that is not the tenant's learns that, and nothing of the tenant.
            Case(name: "another OEM's origin", origin: Self.globexApp, token: c1, status: 403, slug: "origin-not-allowed", allowed: Self.globexApp),
            Case(name: "another OEM's origin, suspended tenant", origin: Self.globexApp, token: halted, status: 403, slug: "origin-not-allowed", allowed: Self.globexApp),
            Case(name: "another OEM's origin, no feature", target: "/v1/payroll", origin: Self.globexApp, token: basic, status: 403, slug: "origin-not-allowed", allowed: Self.globexApp),
            Case(name: "this OEM's origin, another OEM's customer", origin: app, token: g1, status: 403, slug: "origin-not-allowed", allowed: app),
            Case(name: "a sibling's origin", origin: app, token: narrow, status: 403, slug: "origin-not-allowed", allowed: app),
            Case(name: "unregistered origin", origin: Self.evil, token: c1, status: 403, slug: "origin-not-allowed", allowed: nil),
            Case(name: "the tenant's narrower origin", origin: Self.erp, token: narrow, status: 200, allowed: Self.erp),
            // Cells and upstreams.
            Case(name: "cell down", origin: app, token: try self.acme("cdown"), status: 503, slug: "no-healthy-upstream", allowed: app),
            Case(name: "endpoint refusing", origin: app, token: try self.acme("cgone"), status: 502, slug: "upstream-unreachable", allowed: app),
            Case(name: "upstream too slow", target: "/delay/2000", origin: app, token: c1, status: 504, slug: "upstream-timeout", allowed: app),
            // Forwarded and local answers.
            Case(name: "forwarded", origin: app, token: c1, status: 200, allowed: app),
            Case(name: "forwarded, no origin", token: c1, status: 200, allowed: nil),
            Case(name: "branding", target: "/v1/branding", origin: app, token: c1, status: 200, allowed: app),
            Case(name: "portal branding", target: "/v1/branding", origin: app, host: "erp.acme.test", status: 200, allowed: app),
            Case(name: "portal branding, unregistered origin", target: "/v1/branding", origin: Self.evil, host: "erp.acme.test", status: 200, allowed: nil),
            Case(name: "branding, another OEM's origin", target: "/v1/branding", origin: Self.globexApp, token: c1, status: 403, slug: "origin-not-allowed", allowed: Self.globexApp),
        ]
    }

    func headers(_ testCase: Case) -> [(String, String)] {
        var headers: [(String, String)] = []
        if let origin = testCase.origin { headers.append(("Origin", origin)) }
        if let token = testCase.token { headers.append(("Authorization", "Bearer \(token)")) }
        if let host = testCase.host { headers.append(("Host", host)) }
        return headers
    }

    func testEveryKindOfAnswerCarriesTheCORSFieldsForAnAllowedOrigin() throws {
        try self.check(over: nil)
    }

    func testEveryKindOfAnswerCarriesTheCORSFieldsForAnAllowedOriginOverHTTP2() throws {
        try self.check(over: .http2)
    }

    func send(_ method: String, _ target: String, headers: [(String, String)], body: String? = nil, over wire: WireProtocol?) throws -> RawHTTPConnection.Response {
        guard let wire else { return try request(port: self.port, method, target, headers: headers, body: body) }
        return try curlRequest(wire, port: self.port, method, target, headers: headers, body: body)
    }

    func check(over wire: WireProtocol?) throws {
        // The health check takes `down`'s endpoint out within a few probes.
        let down = try self.acme("cdown")
        XCTAssertTrue(try self.eventually(5) {
            try self.send("GET", "/v1/ledger", headers: [("Authorization", "Bearer \(down)")], over: wire).status == 503
        })
        for testCase in try self.cases() {
            let response = try self.send(testCase.method, testCase.target, headers: self.headers(testCase), over: wire)
            try self.assertAnswer(response, testCase)
        }

        // A backend's own CORS fields give way to the gateway's; the route's fields are exposed.
        let c1 = try self.acme("c1")
        let target = "/v1/ledger/7?header=Access-Control-Allow-Origin:*&header=X-Ledger-Balance:42&header=Access-Control-Expose-Headers:*"
        let forwarded = try self.send("GET", target, headers: [("Origin", Self.app), ("Authorization", "Bearer \(c1)")], over: wire)
        XCTAssertEqual(forwarded.status, 200)
        XCTAssertEqual(forwarded.headerValues("access-control-allow-origin"), [Self.app])
        XCTAssertEqual(forwarded.headerValues("access-control-expose-headers"), [Self.exposed, "X-Ledger-Balance"])
        XCTAssertEqual(forwarded.header("x-ledger-balance"), "42")
        let plain = try self.send("GET", target, headers: [("Authorization", "Bearer \(c1)")], over: wire)
        XCTAssertEqual(plain.headerValues("access-control-allow-origin"), ["*"], "without an Origin the gateway leaves the backend's fields alone")

        // A quota refusal: what an app paces itself with is exposed.
        let slow = try self.acme("slow")
        var refused: RawHTTPConnection.Response?
        for _ in 0..<3 {
            let answer = try self.send("GET", "/v1/ledger", headers: [("Origin", Self.app), ("Authorization", "Bearer \(slow)")], over: wire)
            if answer.status == 429 {
                refused = answer
                break
            }
            try self.assertAnswer(answer, Case(name: "admitted", origin: Self.app, status: 200, allowed: Self.app))
            XCTAssertNotNil(answer.header("ratelimit"))
        }
        guard let refused else { return XCTFail("the second request within a second is refused") }
        try self.assertAnswer(refused, Case(name: "quota", origin: Self.app, status: 429, slug: "quota-exceeded", allowed: Self.app))
        XCTAssertNotNil(refused.header("retry-after"))
        XCTAssertNotNil(refused.header("ratelimit"))
        XCTAssertNotNil(refused.header("ratelimit-policy"))

        // The branding endpoint's preflight, like a route's.
        let preflight = try self.send(
            "OPTIONS", "/v1/branding", headers: [("Origin", Self.app), ("Access-Control-Request-Method", "GET"), ("Access-Control-Request-Headers", "authorization")],
            over: wire
        )
        XCTAssertEqual(preflight.status, 204, preflight.text)
        XCTAssertEqual(preflight.header("access-control-allow-origin"), Self.app)
        XCTAssertEqual(preflight.header("access-control-allow-headers"), "authorization")
    }

    func testAnAnswerToARequestRefusedAtDecodeIsReadableFromARegisteredOrigin() throws {
        let c1 = try self.acme("c1")
        let body = String(repeating: "x", count: 2048)
        let tooLarge = try request(port: self.port, "POST", "/v1/ledger", headers: [("Origin", Self.app), ("Authorization", "Bearer \(c1)")], body: body)
        try self.assertAnswer(tooLarge, Case(name: "body too large", origin: Self.app, status: 413, slug: "body-too-large", allowed: Self.app))
        let foreign = try request(port: self.port, "POST", "/v1/ledger", headers: [("Origin", Self.evil), ("Authorization", "Bearer \(c1)")], body: body)
        try self.assertAnswer(foreign, Case(name: "body too large, unregistered origin", origin: Self.evil, status: 413, slug: "body-too-large", allowed: nil))
    }

    func assertAnswer(_ response: RawHTTPConnection.Response, _ testCase: Case, file: StaticString = #filePath, line: UInt = #line) throws {
        let name = testCase.name
        if let slug = testCase.slug {
            try self.assertProblem(response, status: testCase.status, slug: slug, file: file, line: line)
            let members = Set(try response.json().keys)
            XCTAssertEqual(members, Set(["type", "title", "status", "requestId"]).union(testCase.extensions), "\(name): \(response.text)", file: file, line: line)
        } else {
            XCTAssertEqual(response.status, testCase.status, "\(name): \(response.text)", file: file, line: line)
        }
        if let allowed = testCase.allowed {
            XCTAssertEqual(response.headerValues("access-control-allow-origin"), [allowed], name, file: file, line: line)
            XCTAssertEqual(response.headerValues("access-control-expose-headers").first, Self.exposed, name, file: file, line: line)
            XCTAssertTrue(response.headerValues("vary").contains("Origin"), "\(name): \(response.headerValues("vary"))", file: file, line: line)
        } else {
            XCTAssertEqual(response.headerValues("access-control-allow-origin"), [], name, file: file, line: line)
            XCTAssertEqual(response.headerValues("access-control-expose-headers"), [], name, file: file, line: line)
            XCTAssertFalse(response.headerValues("vary").contains("Origin"), name, file: file, line: line)
        }
    }
}
