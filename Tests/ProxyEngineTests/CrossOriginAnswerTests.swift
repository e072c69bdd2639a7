import Foundation
import GatewayConfig
import Hierarchy
import NIOHTTP1
import XCTest
@testable import ProxyEngine

/// What a browser page on another origin may read of an answer, as values: the origin rule
/// before the tenant is known, the exposed fields from the settings and the catalog route, the
/// backend's own CORS fields replaced, and the problem answer that carries them.
final class CrossOriginAnswerTests: XCTestCase {
    private var configuration: GatewayConfiguration!
    private var directory: URL!

    override func setUpWithError() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("cross-origin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        try """
            listener: { port: 1 }
            cells:
              - { id: pool, kind: pooled, region: eu, endpoints: [127.0.0.1:1] }
            defaultCell: pool
            tenantTree: tree.yaml
            upstreamContext:
              signingKeys: [{ id: ctx, secret: \(Data(repeating: 7, count: 32).base64EncodedString()) }]
              activeKey: ctx
            cors:
              exposeHeaders: [ETag, X-Total-Count]
            """.write(to: self.directory.appendingPathComponent("gateway.yaml"), atomically: true, encoding: .utf8)
        try """
            catalog:
              features: [ledger]
              routes:
                - { path: /v1/ledger, feature: ledger, exposeHeaders: [X-Ledger-Balance, Content-Disposition] }
                - { path: /v1/reports }
            tenants:
              - { id: acme, kind: oem, placement: { tier: pooled, region: eu }, origins: [https://app.acme.test, https://erp.acme.test] }
              - { id: north, kind: partner, parent: acme, origins: [https://erp.acme.test] }
            """.write(to: self.directory.appendingPathComponent("tree.yaml"), atomically: true, encoding: .utf8)
        self.configuration = try GatewayConfiguration.load(path: self.directory.appendingPathComponent("gateway.yaml").path)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: self.directory)
    }

    private func route(_ path: String) -> Route? {
        self.configuration.tenants?.catalog.routes.match(method: "GET", path: Substring(path))
    }

    func testBeforeTheTenantIsKnownAnyRegisteredOriginIsAllowed() {
        XCTAssertEqual(CrossOriginAnswer(registered: "https://app.acme.test", configuration: self.configuration)?.origin, "https://app.acme.test")
        XCTAssertEqual(CrossOriginAnswer(registered: "https://erp.acme.test", configuration: self.configuration)?.origin, "https://erp.acme.test")
        XCTAssertNil(CrossOriginAnswer(registered: "https://evil.test", configuration: self.configuration))
        XCTAssertNil(CrossOriginAnswer(registered: "https://APP.acme.test", configuration: self.configuration), "origins compare exactly")
        XCTAssertNil(CrossOriginAnswer(registered: nil, configuration: self.configuration), "no Origin, no CORS fields")
    }

    func testTheFieldsExposeTheGatewaysOwnThenTheSettingsThenTheRoutes() {
        var headers = HTTPHeaders()
        CrossOriginAnswer(origin: "https://app.acme.test", settings: self.configuration.settings, route: self.route("/v1/ledger/7")).apply(to: &headers)
        XCTAssertEqual(headers["access-control-allow-origin"], ["https://app.acme.test"])
        XCTAssertEqual(
            headers["access-control-expose-headers"],
            ["X-Request-Id, RateLimit, RateLimit-Policy, Retry-After, ETag, X-Total-Count", "X-Ledger-Balance, Content-Disposition"]
        )
        XCTAssertEqual(headers["vary"], ["Origin"])

        var plain = HTTPHeaders()
        CrossOriginAnswer(origin: "https://app.acme.test", settings: self.configuration.settings, route: self.route("/v1/reports")).apply(to: &plain)
        XCTAssertEqual(plain["access-control-expose-headers"], ["X-Request-Id, RateLimit, RateLimit-Policy, Retry-After, ETag, X-Total-Count"])
    }

    func testTheBackendsCORSFieldsAreReplaced() {
        var headers = HTTPHeaders([
            ("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "*"), ("access-control-allow-credentials", "true"),
            ("Access-Control-Expose-Headers", "*"), ("Vary", "Accept-Encoding"), ("Access-Control", "kept: not a CORS field"),
        ])
        CrossOriginAnswer.removeUpstreamFields(from: &headers)
        CrossOriginAnswer(origin: "https://app.acme.test", settings: self.configuration.settings, route: nil).apply(to: &headers)
        XCTAssertEqual(headers["access-control-allow-origin"], ["https://app.acme.test"])
        XCTAssertEqual(headers["access-control-allow-credentials"], [])
        XCTAssertEqual(headers["access-control-expose-headers"], ["X-Request-Id, RateLimit, RateLimit-Policy, Retry-After, ETag, X-Total-Count"])
        XCTAssertEqual(headers["vary"], ["Accept-Encoding", "Origin"])
        XCTAssertEqual(headers["access-control"], ["kept: not a CORS field"])
        XCTAssertEqual(headers["content-type"], ["application/json"])
    }

    func testAProblemCarriesTheFieldsAndTheSameBody() {
        let answer = CrossOriginAnswer(registered: "https://app.acme.test", configuration: self.configuration)
        var quota = HTTPHeaders()
        quota.add(name: "retry-after", value: "3")
        let readable = RequestPhases.failToProxy(.quotaExceeded, requestID: "r-1", version: .http1_1, close: false, headers: quota, crossOrigin: answer)
        let plain = RequestPhases.failToProxy(.quotaExceeded, requestID: "r-1", version: .http1_1, close: false, headers: quota)
        XCTAssertEqual(readable.head.headers["access-control-allow-origin"], ["https://app.acme.test"])
        XCTAssertEqual(readable.head.headers["vary"], ["Origin"])
        XCTAssertTrue(readable.head.headers["access-control-expose-headers"].first?.contains("Retry-After") ?? false)
        XCTAssertEqual(readable.body, plain.body, "a cross-origin reader gets exactly the same-origin body")
        XCTAssertEqual(plain.head.headers["access-control-allow-origin"], [])
        XCTAssertEqual(plain.head.headers["vary"], [])
    }
}
