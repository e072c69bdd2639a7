import XCTest
@testable import ProxyEngine

/// The exposition's `# HELP` lines, added at scrape time to what the backend renders.
final class MetricCatalogTests: XCTestCase {
    private static let names = [
        MetricCatalog.requests, MetricCatalog.addedLatency, MetricCatalog.upstreamLatency, MetricCatalog.upstreamRetries,
        MetricCatalog.retryBudgetRefusals, MetricCatalog.quotaDecisions, MetricCatalog.tokenVerifications, MetricCatalog.poolConnections,
        MetricCatalog.poolWaiting, MetricCatalog.endpoints, MetricCatalog.endpointHealthChanges, MetricCatalog.endpointEjections,
        MetricCatalog.redisCommandDuration, MetricCatalog.redisConnections, MetricCatalog.redisConnectFailures,
        MetricCatalog.redisClusterRedirects, MetricCatalog.redisClusterSlotMapRefreshes,
        MetricCatalog.redisPrimarySwitches, MetricCatalog.redisSentinelFailures,
        MetricCatalog.configurationGeneration, MetricCatalog.configurationReloads, MetricCatalog.adminWrites, MetricCatalog.ready,
        MetricCatalog.uploadedCertificates, MetricCatalog.uploadedCertificatesNextExpiry,
        MetricCatalog.tlsCertificateExpiry, MetricCatalog.issuerKeyFetches, MetricCatalog.issuerKeySetAge, MetricCatalog.issuerKeys,
        MetricCatalog.supportSessions,
    ]

    func testEveryFamilyHasOneLineOfHelp() {
        for name in Self.names {
            let text = MetricCatalog.help[name]
            XCTAssertNotNil(text, name)
            XCTAssertFalse(text?.contains(where: { $0 == "\n" || $0 == "\\" }) ?? true, "a help text needs no escaping: \(name)")
        }
        XCTAssertEqual(Set(MetricCatalog.help.keys), Set(Self.names))
    }

    func testAHelpLineGoesBeforeEachKnownFamilysTypeLineAndNothingElseChanges() {
        let rendered = """
            # TYPE erp_gateway_ready gauge
            erp_gateway_ready 1
            # TYPE some_other_total counter
            some_other_total{a="# TYPE x"} 2
            # TYPE erp_gateway_requests_total counter
            erp_gateway_requests_total{oem="acme"} 3

            """
        let withHelp = String(decoding: MetricCatalog.addingHelp(to: Array(rendered.utf8)), as: UTF8.self)
        XCTAssertEqual(withHelp, """
            # HELP erp_gateway_ready \(MetricCatalog.help[MetricCatalog.ready]!)
            # TYPE erp_gateway_ready gauge
            erp_gateway_ready 1
            # TYPE some_other_total counter
            some_other_total{a="# TYPE x"} 2
            # HELP erp_gateway_requests_total \(MetricCatalog.help[MetricCatalog.requests]!)
            # TYPE erp_gateway_requests_total counter
            erp_gateway_requests_total{oem="acme"} 3

            """)
        XCTAssertEqual(MetricCatalog.addingHelp(to: []), [])
        XCTAssertEqual(MetricCatalog.addingHelp(to: Array("# TYPE erp_gateway_ready gauge".utf8)).count,
                       "# HELP erp_gateway_ready \(MetricCatalog.help[MetricCatalog.ready]!)\n# TYPE erp_gateway_ready gauge".utf8.count,
                       "a last line without a newline")
    }
}
