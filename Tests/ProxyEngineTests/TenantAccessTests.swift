import Foundation
import GatewayConfig
import Hierarchy
import NIOHTTP1
import TokenAuth
import XCTest
@testable import ProxyEngine

/// The authenticate → resolve → authorize phase as a value: a request head in, a decision out,
/// with an injected clock and no socket.
final class TenantAccessTests: XCTestCase {
    static let secret = Array("a-test-secret-of-at-least-32-bytes!!".utf8)
    static let now: Int64 = 1_800_000_000

    private var configuration: GatewayConfiguration!
    private var directory: URL!

    override func setUpWithError() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("tenant-access-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        let secret = Data(Self.secret).base64EncodedString()
        self.configuration = try EmbeddedGatewayFiles.load(in: self.directory, endpoint: "127.0.0.1:1", tree: """
            catalog:
              features: [ledger, payroll]
              packages: { basic: [ledger] }
              routes:
                - { path: /v1/ledger, feature: ledger }
                - { path: /v1/payroll, feature: payroll }
                - { path: /v1/reports, method: GET }
            tenants:
              - id: acme
                kind: oem
                placement: { tier: pooled, region: eu }
                origins: [https://app.acme.test]
                issuers:
                  - iss: https://id.acme.test
                    audience: erp
                    allowHMAC: true
                    keys: [{ kid: k1, alg: HS256, secret: \(secret) }]
              - { id: north, kind: partner, parent: acme }
              - { id: halted, kind: partner, parent: acme, status: suspended }
              - { id: shop, kind: customer, parent: north, package: basic }
              - { id: idle, kind: customer, parent: halted, package: basic }
              - id: globex
                kind: oem
                placement: { tier: pooled, region: eu }
              - { id: gp, kind: partner, parent: globex }
              - { id: far, kind: customer, parent: gp, package: basic }
            """)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: self.directory)
    }

    private func token(_ tenant: String, jti: String = "t-1") throws -> String {
        try TokenMinter.mint(
            claims: ["iss": "https://id.acme.test", "sub": "u", "aud": "erp", "iat": .integer(Self.now), "exp": .integer(Self.now + 60),
                     "jti": .string(jti), "tenant": .string(tenant)],
            algorithm: .HS256, kid: "k1", secret: Self.secret
        )
    }

    private func decide(
        _ uri: String, method: HTTPMethod = .GET, headers: [(String, String)] = [], cache: inout VerifiedTokenCache?,
        revocations: RevocationList = RevocationList()
    ) throws -> TenantAccess.Decision {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        let access = TenantAccess(configuration: self.configuration, tenants: self.configuration.tenants!, authentication: self.configuration.authentication!)
        return access.decide(head: .received(head), path: try RequestPath.parse(uri), cache: &cache, revocations: revocations, now: Self.now)
    }

    private func refusal(_ decision: TenantAccess.Decision, file: StaticString = #filePath, line: UInt = #line) -> GatewayProblem? {
        if case .refuse(let refusal) = decision { return refusal.problem }
        XCTFail("expected a refusal, got \(decision)", file: file, line: line)
        return nil
    }

    func testAValidTokenIsForwardedToTheCustomersCellAndCached() throws {
        var cache: VerifiedTokenCache? = VerifiedTokenCache(capacity: 8)
        let token = try self.token("shop")
        guard case .forward(let request) = try self.decide("/v1/ledger/1", headers: [("Authorization", "Bearer \(token)")], cache: &cache) else {
            return XCTFail("not forwarded")
        }
        XCTAssertEqual(request.policy.path.description, "acme/north/shop")
        XCTAssertEqual(request.cell.id, "pool")
        XCTAssertEqual(request.route.feature, "ledger")
        XCTAssertEqual(cache?.count, 1, "the verified token is remembered")
    }

    func testEachRefusalHasItsOwnProblem() throws {
        var cache: VerifiedTokenCache?
        let shop = try self.token("shop")
        XCTAssertEqual(self.refusal(try self.decide("/v1/ledger", cache: &cache)), .tokenMissing)
        XCTAssertEqual(self.refusal(try self.decide("/v1/ledger?access_token=x", cache: &cache)), .tokenInQuery)
        XCTAssertEqual(self.refusal(try self.decide("/v1/nothing", headers: [("Authorization", "Bearer \(shop)")], cache: &cache)), .routeNotFound)
        XCTAssertEqual(self.refusal(try self.decide("/v1/reports", method: .POST, headers: [("Authorization", "Bearer \(shop)")], cache: &cache)), .methodNotAllowed)
        XCTAssertEqual(self.refusal(try self.decide("/v1/payroll", headers: [("Authorization", "Bearer \(shop)")], cache: &cache)), .featureNotEnabled)
        XCTAssertEqual(self.refusal(try self.decide("/v1/ledger", headers: [("Authorization", "Bearer \(try self.token("idle"))")], cache: &cache)), .tenantSuspended)
        XCTAssertEqual(self.refusal(try self.decide("/v1/ledger", headers: [("Authorization", "Bearer \(try self.token("far"))")], cache: &cache)), .tenantNotPermitted)
        XCTAssertEqual(self.refusal(try self.decide("/v1/ledger", headers: [("Authorization", "Bearer \(try self.token("nobody"))")], cache: &cache)), .tenantNotPermitted)
        XCTAssertEqual(
            self.refusal(try self.decide("/v1/ledger", headers: [("Authorization", "Bearer \(shop)"), ("Origin", "https://evil.test")], cache: &cache)),
            .originNotAllowed
        )
        XCTAssertEqual(
            self.refusal(try self.decide("/v1/ledger", headers: [("Authorization", "Bearer \(shop)"), ("Authorization", "Bearer \(shop)")], cache: &cache)),
            .tokenRejected(TokenRejection.malformed.slug), "two Authorization headers are one too many"
        )
    }

    func testARevocationRefusesACachedToken() throws {
        var cache: VerifiedTokenCache? = VerifiedTokenCache(capacity: 8)
        let token = try self.token("shop", jti: "revoke-me")
        guard case .forward = try self.decide("/v1/ledger", headers: [("Authorization", "Bearer \(token)")], cache: &cache) else { return XCTFail() }
        var revocations = RevocationList()
        revocations.revoke(jwtID: "revoke-me", until: Self.now + 60)
        let decision = try self.decide("/v1/ledger", headers: [("Authorization", "Bearer \(token)")], cache: &cache, revocations: revocations)
        XCTAssertEqual(self.refusal(decision), .tokenRevoked)
    }

    func testPreflight() throws {
        var cache: VerifiedTokenCache?
        guard case .preflight(let headers) = try self.decide("/v1/ledger", method: .OPTIONS, headers: [("Origin", "https://app.acme.test"), ("Access-Control-Request-Method", "get")], cache: &cache
        ) else { return XCTFail("no preflight answer") }
        XCTAssertEqual(headers.first(name: "access-control-allow-origin"), "https://app.acme.test")
        XCTAssertEqual(headers.first(name: "access-control-allow-methods"), "GET")
        XCTAssertEqual(
            self.refusal(try self.decide("/v1/ledger", method: .OPTIONS, headers: [("Origin", "https://evil.test"), ("Access-Control-Request-Method", "GET")], cache: &cache)),
            .originNotAllowed
        )
    }

    func testPreflightServesTheBrandingEndpointForReading() throws {
        var cache: VerifiedTokenCache?
        let origin = ("Origin", "https://app.acme.test")
        for method in ["GET", "HEAD"] {
            guard case .preflight(let headers) = try self.decide("/v1/branding", method: .OPTIONS, headers: [origin, ("Access-Control-Request-Method", method)], cache: &cache)
            else { return XCTFail("no preflight answer for \(method) /v1/branding") }
            XCTAssertEqual(headers.first(name: "access-control-allow-origin"), "https://app.acme.test")
            XCTAssertEqual(headers.first(name: "access-control-allow-methods"), method)
        }
        XCTAssertEqual(
            self.refusal(try self.decide("/v1/branding", method: .OPTIONS, headers: [origin, ("Access-Control-Request-Method", "POST")], cache: &cache)),
            .routeNotFound, "the branding endpoint is read-only"
        )
        XCTAssertEqual(
            self.refusal(try self.decide("/v1/branding", method: .OPTIONS, headers: [("Origin", "https://evil.test"), ("Access-Control-Request-Method", "GET")], cache: &cache)),
            .originNotAllowed
        )
    }

    /// From an origin that is not the tenant's a page learns that, and not whether the tenant is
    /// suspended or which features it has: the origin is checked before either.
    func testAnOriginNotTheTenantsIsRefusedBeforeItsStatusAndFeatures() throws {
        var cache: VerifiedTokenCache?
        let evil = ("Origin", "https://evil.test")
        let suspended = try self.decide("/v1/ledger", headers: [("Authorization", "Bearer \(try self.token("idle"))"), evil], cache: &cache)
        XCTAssertEqual(self.refusal(suspended), .originNotAllowed)
        let withoutFeature = try self.decide("/v1/payroll", headers: [("Authorization", "Bearer \(try self.token("shop"))"), evil], cache: &cache)
        XCTAssertEqual(self.refusal(withoutFeature), .originNotAllowed)
        if case .refuse(let refusal) = withoutFeature {
            XCTAssertTrue(refusal.extensions.isEmpty, "the refusal names no feature")
            XCTAssertEqual(refusal.tenant?.description, "acme/north/shop", "the log line still has the tenant")
        }
        // From the tenant's own origin the precise refusal, as without an Origin.
        let own = ("Origin", "https://app.acme.test")
        XCTAssertEqual(self.refusal(try self.decide("/v1/ledger", headers: [("Authorization", "Bearer \(try self.token("idle"))"), own], cache: &cache)), .tenantSuspended)
        XCTAssertEqual(self.refusal(try self.decide("/v1/payroll", headers: [("Authorization", "Bearer \(try self.token("shop"))"), own], cache: &cache)), .featureNotEnabled)
    }

    func testBearerTokenParsing() {
        func parse(_ values: [String], file: StaticString = #filePath, line: UInt = #line) -> TenantAccess.BearerToken {
            let headers = HTTPHeaders(values.map { ("Authorization", $0) })
            // The same reading of the fields as received and as strings.
            XCTAssertEqual(TenantAccess.bearerToken(FieldSection.received(headers)), TenantAccess.bearerToken(headers), file: file, line: line)
            return TenantAccess.bearerToken(FieldSection.received(headers))
        }
        XCTAssertEqual(parse([]), .none)
        XCTAssertEqual(parse(["Basic abc"]), .none)
        XCTAssertEqual(parse(["bearer a.b.c"]), .token("a.b.c"))
        XCTAssertEqual(parse(["Bearer a.b.c", "Bearer a.b.c"]), .malformed)
        XCTAssertEqual(parse(["Bearer a.b c"]), .malformed)
        XCTAssertEqual(parse(["Bearer a+b.c"]), .malformed)
        XCTAssertEqual(parse(["Bearer "]), .none)
        XCTAssertEqual(parse(["BEARER   a.b.c"]), .token("a.b.c"), "the scheme in any case, spaces before the token")
        XCTAssertEqual(parse([" Bearer a.b.c"]), .token("a.b.c"))
        XCTAssertEqual(parse(["Bearerx a.b.c"]), .none)
        XCTAssertEqual(parse(["Bearer"]), .none)
        XCTAssertEqual(TenantAccess.bearerToken(FieldSection.received(HTTPHeaders([("authorization", "Bearer x"), ("AUTHORIZATION", "Bearer y")]))), .malformed)
    }
}
