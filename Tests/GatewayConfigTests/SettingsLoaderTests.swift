import Foundation
import XCTest
@testable import GatewayConfig

/// Documents the loader accepts, and the values it reads from them.
final class SettingsLoaderTests: XCTestCase {
    private static var packageRoot: URL {
        URL(fileURLWithPath: #filePath)  // Tests/GatewayConfigTests/SettingsLoaderTests.swift
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func testExampleSettingsFileLoadsWithItsValues() throws {
        let path = Self.packageRoot.appendingPathComponent("deploy/examples/gateway.yaml").path
        let settings = try SettingsLoader.load(path: path)

        XCTAssertEqual(settings.listener.address, "127.0.0.1")
        XCTAssertEqual(settings.listener.port, 8080)
        XCTAssertNil(settings.listener.eventLoops)
        XCTAssertEqual(settings.limits.maxHeaderBytes, 16 * 1024)
        XCTAssertEqual(settings.limits.maxURIBytes, 8 * 1024)
        XCTAssertEqual(settings.limits.maxRequestBodyBytes, 10 * 1024 * 1024)
        XCTAssertEqual(settings.timeouts.headerRead, .seconds(10))
        XCTAssertEqual(settings.timeouts.keepAliveIdle, .seconds(60))
        XCTAssertEqual(settings.timeouts.upstreamConnect, .seconds(2))
        XCTAssertEqual(settings.timeouts.upstreamResponse, .seconds(30))
        XCTAssertEqual(settings.timeouts.shutdownGrace, .seconds(20))
        XCTAssertEqual(settings.upstreamPool.maxConnectionsPerEndpoint, 64)
        XCTAssertEqual(settings.upstreamPool.idleTimeout, .seconds(30))
        XCTAssertFalse(settings.forwarding.trustClientForwardedHeaders)
        XCTAssertEqual(settings.defaultCell, "pooled-eu-1")

        XCTAssertEqual(settings.cells.map(\.id), ["pooled-eu-1", "dedicated-acme", "pooled-us-1"])
        XCTAssertEqual(settings.cells.map(\.kind), [.pooled, .dedicated, .pooled])
        XCTAssertEqual(settings.cells.map(\.region), ["eu-west", "eu-west", "us-east"])
        XCTAssertEqual(settings.cells[0].endpoints.map(\.description), ["127.0.0.1:9101", "127.0.0.1:9102"])
        XCTAssertEqual(settings.cells[1].endpoints, [GatewaySettings.Endpoint(host: "127.0.0.1", port: 9103)])
        XCTAssertEqual(settings.cell(named: "dedicated-acme")?.kind, .dedicated)
        XCTAssertNil(settings.cell(named: "pooled-eu-2"))
    }

    func testMissingOptionalSectionsTakeTheirDocumentedDefaults() throws {
        let settings = try SettingsLoader.parse(minimalSettingsYAML)

        XCTAssertEqual(settings.listener.address, "127.0.0.1")
        XCTAssertNil(settings.listener.eventLoops)
        XCTAssertEqual(
            settings.limits,
            GatewaySettings.RequestLimits(maxHeaderBytes: 16 << 10, maxURIBytes: 8 << 10, maxRequestBodyBytes: 10 << 20)
        )
        XCTAssertEqual(
            settings.timeouts,
            GatewaySettings.Timeouts(
                headerRead: .seconds(10), requestBodyIdle: .seconds(30), keepAliveIdle: .seconds(60), upstreamConnect: .seconds(2),
                upstreamResponse: .seconds(30), shutdownGrace: .seconds(20)
            )
        )
        XCTAssertEqual(settings.upstreamPool, GatewaySettings.UpstreamPool(maxConnectionsPerEndpoint: 64, idleTimeout: .seconds(30)))
        XCTAssertEqual(settings.forwarding, GatewaySettings.Forwarding(trustClientForwardedHeaders: false))
    }

    func testKeysMissingFromAPresentSectionKeepTheirDefaults() throws {
        let yaml = minimalSettingsYAML + """

            limits:
              maxURIBytes: 1KiB
            timeouts:
              upstreamResponse: 2m
            upstreamPool:
              idleTimeout: 500ms
            """
        let settings = try SettingsLoader.parse(yaml)

        XCTAssertEqual(settings.limits.maxURIBytes, 1024)
        XCTAssertEqual(settings.limits.maxHeaderBytes, 16 << 10)
        XCTAssertEqual(settings.limits.maxRequestBodyBytes, 10 << 20)
        XCTAssertEqual(settings.timeouts.upstreamResponse, .seconds(120))
        XCTAssertEqual(settings.timeouts.headerRead, .seconds(10))
        XCTAssertEqual(settings.timeouts.shutdownGrace, .seconds(20))
        XCTAssertEqual(settings.upstreamPool.idleTimeout, .milliseconds(500))
        XCTAssertEqual(settings.upstreamPool.maxConnectionsPerEndpoint, 64)
    }

    func testQuotaLeasesAreReadWithTheirDefaultsAndBounds() throws {
        XCTAssertEqual(try SettingsLoader.parse(minimalSettingsYAML).quotaLeases, GatewaySettings.QuotaLeases())
        let set = try SettingsLoader.parse(minimalSettingsYAML + "\nquotas:\n  leases:\n    refreshInterval: 250ms\n    maxUnits: 50\n    maxLeases: 0\n")
        XCTAssertEqual(set.quotaLeases, GatewaySettings.QuotaLeases(refreshInterval: .milliseconds(250), maxUnits: 50, maxLeases: 0))
        let off = try SettingsLoader.parse(minimalSettingsYAML + "\nquotas:\n  leases:\n    refreshInterval: 0ms\n")
        XCTAssertEqual(off.quotaLeases.refreshInterval, .zero)
        XCTAssertThrowsError(try SettingsLoader.parse(minimalSettingsYAML + "\nquotas:\n  leases:\n    maxUnits: 0\n"))
        XCTAssertThrowsError(try SettingsLoader.parse(minimalSettingsYAML + "\nquotas:\n  leases:\n    refreshInterval: 1m\n"))
        XCTAssertThrowsError(try SettingsLoader.parse(minimalSettingsYAML + "\nquotas:\n  leases:\n    size: 5\n"))
    }

    func testTenantHealthIsReadWithItsDefaultsAndBounds() throws {
        XCTAssertEqual(try SettingsLoader.parse(minimalSettingsYAML).tenantHealth, GatewaySettings.TenantHealth(publishInterval: .seconds(60), retentionMinutes: 60))
        let set = try SettingsLoader.parse(minimalSettingsYAML + "\ntenantHealth: { publishInterval: 1s, retentionMinutes: 10 }\n")
        XCTAssertEqual(set.tenantHealth, GatewaySettings.TenantHealth(publishInterval: .seconds(1), retentionMinutes: 10))
        for bad in ["publishInterval: 50ms", "publishInterval: 2m", "publishInterval: 5", "retentionMinutes: 0", "retentionMinutes: 1441", "node: a"] {
            XCTAssertThrowsError(try SettingsLoader.parse(minimalSettingsYAML + "\ntenantHealth: { \(bad) }\n"), bad)
        }
    }

    func testEveryKeyCanBeSet() throws {
        let yaml = """
            listener:
              address: 0.0.0.0
              port: 9000
              eventLoops: 4
            limits:
              maxHeaderBytes: 8192
              maxURIBytes: 4KiB
              maxRequestBodyBytes: 1GiB
            timeouts:
              headerRead: 250ms
              requestBodyIdle: 5s
              keepAliveIdle: 2m
              upstreamConnect: 1s
              upstreamResponse: 1h
              shutdownGrace: 0s
            upstreamPool:
              maxConnectionsPerEndpoint: 8
              idleTimeout: 10s
            forwarding:
              trustClientForwardedHeaders: true
            cells:
              - id: dedicated-7
                kind: dedicated
                region: us-east-2
                endpoints:
                  - backend-1.internal:8443
                  - "[::1]:9000"
            defaultCell: dedicated-7
            """
        let settings = try SettingsLoader.parse(yaml)

        XCTAssertEqual(settings.listener, GatewaySettings.Listener(address: "0.0.0.0", port: 9000, eventLoops: 4))
        XCTAssertEqual(settings.limits, GatewaySettings.RequestLimits(maxHeaderBytes: 8192, maxURIBytes: 4096, maxRequestBodyBytes: 1 << 30))
        XCTAssertEqual(
            settings.timeouts,
            GatewaySettings.Timeouts(
                headerRead: .milliseconds(250), requestBodyIdle: .seconds(5), keepAliveIdle: .seconds(120), upstreamConnect: .seconds(1),
                upstreamResponse: .seconds(3600), shutdownGrace: .zero
            )
        )
        XCTAssertEqual(settings.upstreamPool, GatewaySettings.UpstreamPool(maxConnectionsPerEndpoint: 8, idleTimeout: .seconds(10)))
        XCTAssertTrue(settings.forwarding.trustClientForwardedHeaders)
        XCTAssertEqual(settings.cells.count, 1)
        XCTAssertEqual(settings.cells[0].id, "dedicated-7")
        XCTAssertEqual(settings.cells[0].kind, .dedicated)
        XCTAssertEqual(settings.cells[0].region, "us-east-2")
        XCTAssertEqual(
            settings.cells[0].endpoints,
            [GatewaySettings.Endpoint(host: "backend-1.internal", port: 8443), GatewaySettings.Endpoint(host: "::1", port: 9000)]
        )
    }

    func testEndpointSyntax() {
        XCTAssertEqual(SettingsLoader.endpoint("127.0.0.1:1"), GatewaySettings.Endpoint(host: "127.0.0.1", port: 1))
        XCTAssertEqual(SettingsLoader.endpoint("db.example:65535"), GatewaySettings.Endpoint(host: "db.example", port: 65535))
        XCTAssertEqual(SettingsLoader.endpoint("[fe80::1]:80"), GatewaySettings.Endpoint(host: "fe80::1", port: 80))
        for text in ["localhost", "host:0", "host:65536", "host:", ":80", "host:http", "host:-1", "ho st:80", "host_1:80", "host:80 "] {
            XCTAssertNil(SettingsLoader.endpoint(text), "'\(text)' should be rejected")
        }
    }

    func testIdentifierSyntax() {
        for id in ["a", "pooled-eu-1", "c0", String(repeating: "a", count: 63)] {
            XCTAssertTrue(SettingsLoader.isValidIdentifier(id), "'\(id)' should be accepted")
        }
        for id in ["", "Pooled", "1cell", "-cell", "cell-", "cell_1", "cell.1", "céll", String(repeating: "a", count: 64)] {
            XCTAssertFalse(SettingsLoader.isValidIdentifier(id), "'\(id)' should be rejected")
        }
    }

    func testUnreadableFileIsReportedAgainstItsPath() {
        let path = Self.packageRoot.appendingPathComponent("deploy/examples/does-not-exist.yaml").path
        do {
            _ = try SettingsLoader.load(path: path)
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.source, path)
            XCTAssertEqual(error.issues.count, 1)
            XCTAssertEqual(error.issues.first?.path, "")
            XCTAssertNil(error.issues.first?.line)
            XCTAssertTrue(error.issues.first?.message.hasPrefix("cannot read the file") ?? false, "\(error)")
        }
    }
}

/// `ops`: the ops listener's address and port, absent by default.
final class OpsSettingsTests: XCTestCase {
    func testOpsIsOffUnlessConfigured() throws {
        XCTAssertNil(try SettingsLoader.parse(minimalSettingsYAML).ops)
        let settings = try SettingsLoader.parse(minimalSettingsYAML + "\nops:\n  address: 10.0.0.5\n  port: 9090\n")
        XCTAssertEqual(settings.ops, GatewaySettings.Ops(address: "10.0.0.5", port: 9090))
        XCTAssertEqual(try SettingsLoader.parse(minimalSettingsYAML + "\nops: { port: 0 }\n").ops?.address, "127.0.0.1")
    }

    func testOpsNeedsAPortAndTakesNothingElse() {
        for (text, message) in [
            ("ops: { address: 127.0.0.1 }", "missing required key 'port'"),
            ("ops: { port: 9090, eventLoops: 2 }", "unknown key 'eventLoops'"),
            ("ops: { port: 70000 }", "must be between 0 and 65535"),
            ("ops: { port: 9090, address: 'not a host' }", "is not an IP address or host name"),
        ] {
            XCTAssertThrowsError(try SettingsLoader.parse(minimalSettingsYAML + "\n" + text + "\n"), text) { error in
                let issues = (error as? ConfigurationError)?.issues ?? []
                XCTAssertTrue(issues.contains { $0.path.hasPrefix("ops") && $0.message.contains(message) }, "\(text): \(error)")
            }
        }
    }
}
