import XCTest
@testable import GatewayConfig
import Hierarchy

/// `webSockets` and the catalog's `websocket` route flag.
final class WebSocketSettingsTests: XCTestCase {
    func testDefaultsAndValuesAreRead() throws {
        let defaults = try SettingsLoader.parse(minimalSettingsYAML).webSockets
        XCTAssertEqual(defaults, GatewaySettings.WebSockets())
        XCTAssertEqual(defaults.idleTimeout, .seconds(300))
        let settings = try SettingsLoader.parse(minimalSettingsYAML + """

            webSockets:
              idleTimeout: 90s
              maxLifetime: 2h
              closeGrace: 0s
              maxFrameBytes: 64KiB
            """).webSockets
        XCTAssertEqual(settings.idleTimeout, .seconds(90))
        XCTAssertEqual(settings.maxLifetime, .seconds(7200))
        XCTAssertEqual(settings.closeGrace, .zero)
        XCTAssertEqual(settings.maxFrameBytes, 65536)
    }

    func testOutOfRangeValuesAreRefused() {
        let issues = rejectionIssues(of: minimalSettingsYAML + "\nwebSockets: { idleTimeout: 10ms, maxFrameBytes: 1GiB, other: 1 }\n")
        XCTAssertEqual(issues.count, 3, "\(issues)")
    }

    func testTheRouteFlagIsRead() throws {
        let tree = """
            catalog:
              features: [ledger]
              routes:
                - { path: /v1/live, websocket: true }
                - { path: /v1/ledger }
            tenants:
              - { id: acme, kind: oem, placement: { tier: pooled, region: eu } }
            """
        let cells = [GatewaySettings.Cell(id: "pool", kind: .pooled, region: "eu", endpoints: [.init(host: "127.0.0.1", port: 9001)])]
        let source = try TenantTreeLoader.parse(tree, cells: cells)
        XCTAssertEqual(source.catalog.routes.map(\.websocket), [true, false])
    }
}
