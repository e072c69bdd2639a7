import NIOHTTP1
import XCTest
@testable import ProxyEngine

final class OpsRouteTests: XCTestCase {
    func testTheThreePathsAnswerGetOnly() {
        XCTAssertEqual(OpsRoute(method: .GET, uri: "/metrics"), .metrics)
        XCTAssertEqual(OpsRoute(method: .GET, uri: "/metrics?name[]=x"), .metrics)
        XCTAssertEqual(OpsRoute(method: .GET, uri: "/healthz"), .health)
        XCTAssertEqual(OpsRoute(method: .GET, uri: "/readyz"), .readiness)
        XCTAssertEqual(OpsRoute(method: .POST, uri: "/metrics"), .methodNotAllowed)
        XCTAssertEqual(OpsRoute(method: .HEAD, uri: "/readyz"), .methodNotAllowed)
        XCTAssertEqual(OpsRoute(method: .DELETE, uri: "/healthz"), .methodNotAllowed)
    }

    func testAnythingElseIsNotFound() {
        for uri in ["/", "/metrics/", "/metricsx", "/healthz/x", "/v1/ledger", "metrics", "//metrics"] {
            XCTAssertEqual(OpsRoute(method: .GET, uri: uri), .notFound, uri)
        }
        XCTAssertEqual(OpsRoute(method: .POST, uri: "/admin"), .notFound)
    }
}
