import Hierarchy
import NIOCore
import Prometheus
import XCTest
@testable import GatewayConfig
@testable import ProxyEngine

/// The per-loop request metrics: label values bounded by construction, and the number of series
/// independent of how many customers send requests.
final class RequestMetricsTests: XCTestCase {
    private static let endpoint = GatewaySettings.Endpoint(host: "10.20.30.40", port: 8443)

    private func record(
        customer: String = "c-4711", partner: String = "p-reseller", oem: String = "acme", route: String? = "/v1/ledger",
        path: String = "/v1/ledger/invoice-8812", outcome: RequestRecord.Outcome = .relayed, status: UInt? = 200,
        problem: GatewayProblem? = nil, attempts: Int = 1
    ) throws -> RequestRecord {
        let start = NIODeadline.uptimeNanoseconds(1_000_000)
        return RequestRecord(
            requestID: "req-5f2c9a", traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "00f067aa0ba902b7", continuesClientTrace: false,
            method: "GET", path: path, route: route,
            tenant: NodePath(oem: try NodeID(oem), partner: try NodeID(partner), customer: try NodeID(customer)),
            outcome: outcome, status: status, problem: problem, cell: "eu-pooled-1", tier: .pooled, endpoint: Self.endpoint, attempts: attempts,
            bytesIn: 0, bytesOut: 12, started: start, authorized: start + .microseconds(40), admitted: start + .microseconds(60),
            upstreamStarted: attempts > 0 ? start + .microseconds(100) : nil, upstreamHead: attempts > 0 ? start + .milliseconds(3) : nil,
            upstreamEnded: attempts > 0 ? start + .milliseconds(4) : nil, ended: start + .microseconds(4200), startedWallMicroseconds: 1_800_000_000_000_000
        )
    }

    private func exposition(_ registry: PrometheusCollectorRegistry) -> [String] {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    private func factory() -> (PrometheusCollectorRegistry, PrometheusMetricsFactory) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = MetricCatalog.durationBuckets
        return (registry, factory)
    }

    func testLabelsNeverCarryTheCustomerPartnerPathTokenAddressOrRequestID() throws {
        let records = [
            try self.record(),
            try self.record(outcome: .refused, status: 429, problem: .quotaExceeded, attempts: 0),
            try self.record(route: nil, path: "/v1/unknown/secret-token-abc", outcome: .refused, status: 404, problem: .routeNotFound, attempts: 0),
            try self.record(outcome: .failed, status: 502, problem: .upstreamUnreachable, attempts: 3),
        ]
        let forbidden = ["c-4711", "p-reseller", "invoice-8812", "secret-token-abc", "/v1/unknown", "req-5f2c9a", "10.20.30.40", "8443", "4bf92f35", "00f067aa"]
        for record in records {
            let series = RequestSeries(record)
            for (name, value) in series.requestLabels + series.placementLabels {
                for text in forbidden { XCTAssertFalse(value.contains(text), "\(name)=\(value) carries \(text)") }
            }
        }
        let (registry, factory) = self.factory()
        let metrics = RequestMetrics(factory: factory)
        for record in records { metrics.requestEnded(record) }
        let text = self.exposition(registry).joined(separator: "\n")
        XCTAssertTrue(text.contains(#"oem="acme""#), text)
        XCTAssertTrue(text.contains(#"problem="quota-exceeded""#), text)
        for forbiddenText in forbidden { XCTAssertFalse(text.contains(forbiddenText), "the exposition carries \(forbiddenText)") }
    }

    func testTheRecordIsCountedOnceWithItsLatenciesAndRetries() throws {
        let (registry, factory) = self.factory()
        let metrics = RequestMetrics(factory: factory)
        metrics.requestEnded(try self.record(attempts: 3))
        metrics.requestEnded(try self.record(outcome: .refused, status: 429, problem: .quotaExceeded, attempts: 0))
        let lines = self.exposition(registry)
        func value(_ prefix: String) -> String? { lines.first { $0.hasPrefix(prefix) }?.split(separator: " ").last.map(String.init) }
        XCTAssertEqual(value(#"erp_gateway_requests_total{oem="acme",cell="eu-pooled-1",tier="pooled",route="/v1/ledger",outcome="relayed",status="2xx",problem="",phase=""}"#), "1")
        XCTAssertEqual(value(#"erp_gateway_requests_total{oem="acme",cell="eu-pooled-1",tier="pooled",route="/v1/ledger",outcome="refused",status="4xx",problem="quota-exceeded",phase="admit"}"#), "1")
        // Only the relayed request reached an upstream: one observation each, 3.9 ms upstream.
        XCTAssertEqual(value(#"erp_gateway_upstream_latency_seconds_count{oem="acme",cell="eu-pooled-1",tier="pooled"}"#), "1")
        XCTAssertEqual(value(#"erp_gateway_added_latency_seconds_count{oem="acme",cell="eu-pooled-1",tier="pooled"}"#), "1")
        XCTAssertEqual(value(#"erp_gateway_upstream_latency_seconds_bucket{oem="acme",cell="eu-pooled-1",tier="pooled",le="0.0025"}"#), "0")
        XCTAssertEqual(value(#"erp_gateway_upstream_latency_seconds_bucket{oem="acme",cell="eu-pooled-1",tier="pooled",le="0.005"}"#), "1")
        XCTAssertEqual(value(#"erp_gateway_added_latency_seconds_bucket{oem="acme",cell="eu-pooled-1",tier="pooled",le="0.00025"}"#), "0")
        XCTAssertEqual(value(#"erp_gateway_added_latency_seconds_bucket{oem="acme",cell="eu-pooled-1",tier="pooled",le="0.0005"}"#), "1")
        XCTAssertEqual(value(#"erp_gateway_upstream_retries_total{oem="acme",cell="eu-pooled-1",tier="pooled"}"#), "2")
    }

    func testTheSeriesDoNotGrowWithCustomers() throws {
        let (registry, factory) = self.factory()
        let metrics = RequestMetrics(factory: factory)
        for customer in 0..<10 { metrics.requestEnded(try self.record(customer: "c\(customer)", partner: "p\(customer % 7)")) }
        let before = self.exposition(registry).count
        for customer in 0..<10_000 { metrics.requestEnded(try self.record(customer: "c\(customer)", partner: "p\(customer % 97)")) }
        XCTAssertEqual(self.exposition(registry).count, before)
        XCTAssertEqual(metrics.seriesCount, 1)
    }

    func testSeriesPastTheBoundFoldIntoOther() throws {
        let (registry, factory) = self.factory()
        let metrics = RequestMetrics(factory: factory, maxSeries: 40)
        for index in 0..<540 { metrics.requestEnded(try self.record(oem: "oem\(index)")) }
        XCTAssertEqual(metrics.seriesCount, 41)
        let other = self.exposition(registry).first { $0.hasPrefix(#"erp_gateway_requests_total{oem="other""#) }
        XCTAssertEqual(other?.split(separator: " ").last, "500")
    }
}
