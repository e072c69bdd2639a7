import XCTest
@testable import GatewayConfig
@testable import ProxyEngine

/// Readiness as a value: unready only for what actually refuses traffic, every reason named.
final class ReadinessTests: XCTestCase {
    private func cell(
        _ id: String, _ kind: GatewaySettings.Cell.Kind = .pooled, region: String = "eu", fallback: [String] = [], endpoints: Int = 2, healthy: Int
    ) -> Readiness.Cell {
        Readiness.Cell(id: id, kind: kind, region: region, fallback: fallback, endpoints: endpoints, healthyEndpoints: healthy)
    }

    private let open: [GatewaySettings.Cell.Kind: GatewaySettings.QuotaFailMode] = [.pooled: .open, .dedicated: .open]

    func testWithoutAConfigurationNothingElseCounts() {
        let readiness = Readiness.evaluate(configured: false, cells: [self.cell("a", healthy: 0)], quotaStoreReachable: false, failModes: [.pooled: .closed])
        XCTAssertEqual(readiness.reasons, [.noConfiguration])
        XCTAssertFalse(readiness.isReady)
    }

    func testHealthyCellsAndAReachableStoreAreReady() {
        let readiness = Readiness.evaluate(
            configured: true, cells: [self.cell("a", healthy: 2), self.cell("b", healthy: 1)], quotaStoreReachable: true, failModes: [.pooled: .closed]
        )
        XCTAssertTrue(readiness.isReady)
        XCTAssertEqual(readiness.json, #"{"ready":true,"reasons":[]}"#)
    }

    func testACellWithNoHealthyEndpointAndNoFallbackIsUnready() {
        let readiness = Readiness.evaluate(configured: true, cells: [self.cell("a", healthy: 1), self.cell("b", healthy: 0)], quotaStoreReachable: nil, failModes: self.open)
        XCTAssertEqual(readiness.reasons, [.cellUnavailable(cell: "b")])
    }

    func testAHealthyPooledFallbackInTheSameRegionKeepsACellServing() {
        let cells = [self.cell("a", fallback: ["b"], healthy: 0), self.cell("b", healthy: 1)]
        XCTAssertTrue(Readiness.evaluate(configured: true, cells: cells, quotaStoreReachable: nil, failModes: self.open).isReady)
    }

    func testFallbacksThatCannotServeEveryCustomerOfTheCellDoNotCount() {
        // Another region (outside some customers' residency), a dedicated cell (never a
        // fallback), a fallback that is down itself, and one the settings lack.
        let cells = [
            self.cell("a", fallback: ["us", "ded", "down", "gone"], healthy: 0), self.cell("us", region: "us", healthy: 2),
            self.cell("ded", .dedicated, healthy: 1), self.cell("down", healthy: 0),
        ]
        let readiness = Readiness.evaluate(configured: true, cells: cells, quotaStoreReachable: nil, failModes: self.open)
        XCTAssertEqual(readiness.reasons, [.cellUnavailable(cell: "a"), .cellUnavailable(cell: "down")])
    }

    func testAnUnreachableStoreIsAReasonOnlyForTiersThatFailClosedAndHaveCells() {
        let cells = [self.cell("a", healthy: 1)]
        let modes: [GatewaySettings.QuotaFailMode] = [.open, .local]
        for mode in modes {
            let readiness = Readiness.evaluate(configured: true, cells: cells, quotaStoreReachable: false, failModes: [.pooled: mode, .dedicated: .closed])
            XCTAssertTrue(readiness.isReady, "\(mode) admits while the store is away; no dedicated cell has traffic to refuse")
        }
        let closed = Readiness.evaluate(configured: true, cells: cells, quotaStoreReachable: false, failModes: [.pooled: .closed, .dedicated: .open])
        XCTAssertEqual(closed.reasons, [.quotaStoreUnreachable(tier: .pooled)])
        let reachable = Readiness.evaluate(configured: true, cells: cells, quotaStoreReachable: true, failModes: [.pooled: .closed])
        XCTAssertTrue(reachable.isReady)
        let noStore = Readiness.evaluate(configured: true, cells: cells, quotaStoreReachable: nil, failModes: [.pooled: .closed])
        XCTAssertTrue(noStore.isReady, "without a quota store nothing is refused for it")
    }

    func testADrainingProcessSaysSo() throws {
        let draining = Readiness(reasons: [.draining])
        XCTAssertFalse(draining.isReady)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(draining.json.utf8)) as? [String: Any])
        XCTAssertEqual((json["reasons"] as? [[String: String]])?.map { $0["reason"] }, ["draining"])
    }

    func testEveryReasonIsNamedInTheBody() throws {
        let cells = [self.cell("eu-1", healthy: 0), self.cell("ded-1", .dedicated, healthy: 1)]
        let readiness = Readiness.evaluate(configured: true, cells: cells, quotaStoreReachable: false, failModes: [.pooled: .closed, .dedicated: .closed])
        XCTAssertEqual(readiness.reasons, [.cellUnavailable(cell: "eu-1"), .quotaStoreUnreachable(tier: .pooled), .quotaStoreUnreachable(tier: .dedicated)])
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(readiness.json.utf8)) as? [String: Any])
        XCTAssertEqual(json["ready"] as? Bool, false)
        let reasons = try XCTUnwrap(json["reasons"] as? [[String: String]])
        XCTAssertEqual(reasons.map { $0["reason"] }, ["cell-unavailable", "quota-store-unreachable", "quota-store-unreachable"])
        XCTAssertEqual(reasons[0]["cell"], "eu-1")
        XCTAssertEqual(reasons.compactMap { $0["tier"] }, ["pooled", "dedicated"])
    }
}
