import GatewayConfig
import NIOHTTP1
import XCTest
@testable import ProxyEngine

final class HealthCheckerTests: XCTestCase {
    private static let check = GatewaySettings.HealthCheck(
        path: "/healthz", interval: .seconds(5), timeout: .seconds(1), healthyThreshold: 2, unhealthyThreshold: 3
    )

    func testAProbeIsAPlainGETWithoutTenantContext() {
        let head = HealthChecker.probeHead(.init(host: "10.2.0.11", port: 8443), check: Self.check)
        XCTAssertEqual(head.method, .GET)
        XCTAssertEqual(head.uri, "/healthz")
        XCTAssertEqual(head.version, .http1_1)
        XCTAssertEqual(head.headers.map { "\($0.name): \($0.value)" }, [
            "host: 10.2.0.11:8443", "user-agent: erp-gateway-health-check", "connection: close",
        ])
    }

    func testAnIPv6EndpointIsBracketedInTheHostField() {
        // "::1:9101" is no valid Host: strict servers answer 400 and the endpoint would count as down.
        XCTAssertEqual(HealthChecker.probeHead(.init(host: "::1", port: 9101), check: Self.check).headers.first(name: "host"), "[::1]:9101")
        XCTAssertEqual(HealthChecker.probeHead(.init(host: "backend.internal", port: 80), check: Self.check).headers.first(name: "host"), "backend.internal:80")
    }
}
