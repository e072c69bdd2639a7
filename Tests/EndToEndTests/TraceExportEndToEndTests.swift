import Foundation
import XCTest

/// Traces of the running gateway, exported over OTLP/HTTP to a receiver in the test: one span
/// per phase under the gateway's hop span, joined to the client's trace, and nothing when the
/// trace is not sampled.
final class TraceExportEndToEndTests: GatewayTestCase {
    private static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    private static let clientSpanID = "00f067aa0ba902b7"
    private var receiver: OTLPReceiver!

    override func setUp() async throws {
        try await super.setUp()
        self.receiver = try await OTLPReceiver(group: Self.upstreamGroup)
        try await self.startBackends(1)
    }

    override func tearDown() async throws {
        try await super.tearDown()
        await self.receiver?.stop()
    }

    private func startTracingGateway(sampling: String) throws {
        let tracing = """
            tracing:
              endpoint: http://127.0.0.1:\(self.receiver.port)/v1/traces
              sampling: \(sampling)
              serviceName: gateway-under-test

            """
        self.gateway = try GatewayProcess(
            settings: gatewaySettings(endpoints: self.backends.map(\.port), tenantTree: "tenants.yaml", extra: tracing),
            files: ["tenants.yaml": SecurityMatrixTests.tree]
        )
    }

    private func ledger(traceparent: String?) throws -> RawHTTPConnection.Response {
        let token = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1")
        var headers = [("Authorization", "Bearer \(token)")]
        if let traceparent { headers.append(("traceparent", traceparent)) }
        return try request(port: self.port, "GET", "/v1/ledger", headers: headers)
    }

    func testASampledRequestIsExportedAsOneSpanPerPhaseUnderTheHopTheUpstreamSaw() throws {
        try self.startTracingGateway(sampling: "1.0")
        let response = try self.ledger(traceparent: "00-\(Self.traceID)-\(Self.clientSpanID)-01")
        XCTAssertEqual(response.status, 200, response.text)
        let forwarded = try XCTUnwrap(TraceParentText(try SeenRequest(response).value("traceparent")))
        // Stopping drains the exporter: whatever was queued is sent before the process exits.
        XCTAssertEqual(self.gateway.stop(), 0)

        XCTAssertTrue(self.receiver.received.allSatisfy { $0.path == "/v1/traces" && $0.contentType == "application/json" })
        let spans = try self.receiver.spans()
        XCTAssertEqual(Set(spans.map(\.traceID)), [Self.traceID], "every span is in the client's trace")
        XCTAssertEqual(spans.map(\.name).sorted(), ["GET /v1/ledger", "admit", "authorize", "forward", "respond", "upstream"])
        let hop = try XCTUnwrap(spans.first { $0.kind == 2 })
        XCTAssertEqual(hop.spanID, forwarded.parentID, "the upstream's parent is the gateway's hop span")
        XCTAssertEqual(forwarded.traceID, Self.traceID)
        XCTAssertEqual(hop.parentSpanID, Self.clientSpanID, "the hop's parent is the client's span")
        XCTAssertEqual(hop.serviceName, "gateway-under-test")
        XCTAssertEqual(hop.attributes["http.response.status_code"] as? Int, 200)
        XCTAssertEqual(hop.attributes["erp.tenant.customer"] as? String, "c1")
        XCTAssertEqual(hop.attributes["erp.request_id"] as? String, response.header("x-request-id"))
        for name in ["authorize", "admit", "forward", "respond"] {
            let span = try XCTUnwrap(spans.first { $0.name == name })
            XCTAssertEqual(span.parentSpanID, hop.spanID, name)
            XCTAssertEqual(span.kind, 1, name)
            XCTAssertTrue(span.start >= hop.start && span.end <= hop.end && span.start <= span.end, name)
        }
        let upstream = try XCTUnwrap(spans.first { $0.name == "upstream" })
        XCTAssertEqual(upstream.kind, 3)
        XCTAssertEqual(upstream.parentSpanID, spans.first { $0.name == "forward" }?.spanID)
        XCTAssertEqual(upstream.attributes["server.port"] as? Int, self.backends[0].port)
        XCTAssertEqual(Set(spans.map(\.spanID)).count, spans.count, "span ids are unique")
    }

    func testTheClientsUnsampledFlagIsHonoured() throws {
        try self.startTracingGateway(sampling: "1.0")
        let response = try self.ledger(traceparent: "00-\(Self.traceID)-\(Self.clientSpanID)-00")
        XCTAssertEqual(response.status, 200, response.text)
        XCTAssertEqual(try TraceParentText(try SeenRequest(response).value("traceparent"))?.flags, "00", "the client's choice is forwarded")
        XCTAssertEqual(self.gateway.stop(), 0)
        XCTAssertEqual(try self.receiver.spans().count, 0)
    }

    func testSamplingZeroExportsNothing() throws {
        try self.startTracingGateway(sampling: "0")
        XCTAssertEqual(try self.ledger(traceparent: "00-\(Self.traceID)-\(Self.clientSpanID)-01").status, 200)
        let started = try self.ledger(traceparent: nil)
        XCTAssertEqual(started.status, 200)
        XCTAssertEqual(try TraceParentText(try SeenRequest(started).value("traceparent"))?.flags, "00", "a trace the gateway starts is not sampled")
        XCTAssertEqual(self.gateway.stop(), 0)
        XCTAssertEqual(self.receiver.received.count, 0)
    }
}

/// The parts of a `traceparent` value as the upstream received it.
struct TraceParentText {
    var traceID: String
    var parentID: String
    var flags: String

    init?(_ text: String?) {
        let parts = text?.split(separator: "-") ?? []
        guard parts.count == 4 else { return nil }
        (self.traceID, self.parentID, self.flags) = (String(parts[1]), String(parts[2]), String(parts[3]))
    }
}
