import Foundation
import GatewayConfig
import NIOCore
import ProxyEngine
import XCTest
@testable import TraceExport

final class RequestSpansTests: XCTestCase {
    private static let wallNanoseconds = RecordFixtures.wallMicroseconds * 1_000

    private func span(_ name: String, in spans: [ExportedSpan], file: StaticString = #filePath, line: UInt = #line) throws -> ExportedSpan {
        try XCTUnwrap(spans.first { $0.name == name }, "no span \(name) in \(spans.map(\.name))", file: file, line: line)
    }

    func testARelayedRequestHasTheHopAPhaseSpanEachAndTheUpstreamAttempt() throws {
        var record = try RecordFixtures.relayed()
        record.clientSpanID = "00f067aa0ba902b7"
        var ids = SpanIDSource(seed: 9)
        let spans = RequestSpans.build(record, ids: &ids)

        XCTAssertEqual(spans.map(\.name), ["GET /v1/ledger", "authorize", "admit", "forward", "respond", "upstream"])
        XCTAssertTrue(spans.allSatisfy { $0.traceID == "4bf92f3577b34da6a3ce929d0e0e4736" })
        let hop = spans[0]
        XCTAssertEqual(hop.spanID, "1111111111111111", "the hop is the span the upstream was told is its parent")
        XCTAssertEqual(hop.parentSpanID, "00f067aa0ba902b7")
        XCTAssertEqual(hop.kind, .server)
        XCTAssertEqual(hop.startNanoseconds, Self.wallNanoseconds)
        XCTAssertEqual(hop.endNanoseconds, Self.wallNanoseconds + 3_007_000)
        XCTAssertEqual(hop.attribute("http.response.status_code"), .int(200))
        XCTAssertEqual(hop.attribute("erp.tenant.partner"), .string("p1"))
        XCTAssertNil(hop.errorMessage)

        let phases: [(String, Int64, Int64)] = [("authorize", 0, 100), ("admit", 100, 150), ("forward", 150, 2_300), ("respond", 2_300, 3_007)]
        for (name, start, end) in phases {
            let span = try self.span(name, in: spans)
            XCTAssertEqual(span.parentSpanID, hop.spanID, name)
            XCTAssertEqual(span.kind, .internal)
            XCTAssertEqual(span.startNanoseconds, Self.wallNanoseconds + start * 1_000, name)
            XCTAssertEqual(span.endNanoseconds, Self.wallNanoseconds + end * 1_000, name)
        }
        let upstream = try self.span("upstream", in: spans)
        XCTAssertEqual(upstream.parentSpanID, try self.span("forward", in: spans).spanID)
        XCTAssertEqual(upstream.kind, .client)
        XCTAssertEqual(upstream.startNanoseconds, Self.wallNanoseconds + 300_000)
        XCTAssertEqual(upstream.endNanoseconds, Self.wallNanoseconds + 2_800_000)
        XCTAssertEqual(upstream.attribute("server.address"), .string("10.0.0.7"))
        XCTAssertEqual(Set(spans.map(\.spanID)).count, spans.count)
    }

    func testARefusedRequestEndsInThePhaseThatRaisedTheProblem() throws {
        var ids = SpanIDSource(seed: 1)
        let unauthenticated = RequestSpans.build(RecordFixtures.refused(.tokenMissing), ids: &ids)
        XCTAssertEqual(unauthenticated.map(\.name), ["POST", "authorize"])
        XCTAssertEqual(unauthenticated[1].errorMessage, "token-missing")
        XCTAssertEqual(unauthenticated[1].endNanoseconds, Self.wallNanoseconds + 95_000)
        XCTAssertNil(unauthenticated[0].errorMessage, "a 4xx refusal is not a server error")
        XCTAssertEqual(unauthenticated[0].attribute("erp.problem.type"), .string("urn:erp-gateway:problem:token-missing"))

        let overQuota = RequestSpans.build(RecordFixtures.refused(.quotaExceeded, authorized: true), ids: &ids)
        XCTAssertEqual(overQuota.map(\.name), ["POST /v1/payroll", "authorize", "admit"])
        XCTAssertNil(overQuota[1].errorMessage)
        XCTAssertEqual(overQuota[2].errorMessage, "quota-exceeded")
    }

    func testAFailedForwardIsAnErrorOnTheHopAndTheForwardSpan() throws {
        let base = RecordFixtures.refused(.upstreamUnreachable, authorized: true)
        let record = RequestRecord(
            requestID: base.requestID, traceID: base.traceID, spanID: base.spanID, continuesClientTrace: false, method: "POST", path: base.path,
            route: base.route, tenant: nil, outcome: .failed, status: 502, problem: .upstreamUnreachable, cell: "eu-1", tier: .pooled,
            endpoint: .init(host: "10.0.0.7", port: 8080), attempts: 2, bytesIn: 0, bytesOut: 100, started: base.started, authorized: base.authorized,
            admitted: RecordFixtures.at(85), upstreamStarted: nil, upstreamHead: nil, upstreamEnded: nil, ended: base.ended,
            startedWallMicroseconds: base.startedWallMicroseconds
        )
        var ids = SpanIDSource(seed: 2)
        let spans = RequestSpans.build(record, ids: &ids)
        XCTAssertEqual(spans.map(\.name), ["POST /v1/payroll", "authorize", "admit", "forward"], "never connected: no upstream span")
        XCTAssertEqual(spans[0].errorMessage, "upstream-unreachable")
        XCTAssertEqual(spans[3].errorMessage, "upstream-unreachable")
    }

    func testOnlySampledRequestsAreQueuedAndAFullQueueDropsAndCounts() throws {
        let queue = TraceQueue(capacity: 2)
        let observer = TraceObserver(queue: queue)
        var record = try RecordFixtures.relayed()
        observer.requestEnded(record)
        XCTAssertEqual(queue.count, 0, "not sampled")
        record.traceSampled = true
        for _ in 0..<3 { observer.requestEnded(record) }
        XCTAssertEqual(queue.count, 2)
        XCTAssertEqual(queue.counts.dropped, 1)
        XCTAssertEqual(queue.take(1).map(\.requestID), ["req-1"])
        XCTAssertEqual(queue.take(5).count, 1)
        XCTAssertEqual(queue.count, 0)
    }

    func testTheExportRequestIsOTLPJSON() throws {
        var record = try RecordFixtures.relayed()
        record.clientSpanID = "00f067aa0ba902b7"
        var ids = SpanIDSource(seed: 4)
        let spans = RequestSpans.build(RecordFixtures.refused(.upstreamUnreachable), ids: &ids)
        let body = OTLPJSON.exportRequest(RequestSpans.build(record, ids: &ids) + spans, serviceName: "gw \"eu\"")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        let resourceSpans = try XCTUnwrap((json["resourceSpans"] as? [[String: Any]])?.first)
        let resource = try XCTUnwrap((resourceSpans["resource"] as? [String: Any])?["attributes"] as? [[String: Any]])
        XCTAssertEqual(resource.first?["key"] as? String, "service.name")
        XCTAssertEqual((resource.first?["value"] as? [String: Any])?["stringValue"] as? String, "gw \"eu\"")
        let scopeSpans = try XCTUnwrap((resourceSpans["scopeSpans"] as? [[String: Any]])?.first)
        let exported = try XCTUnwrap(scopeSpans["spans"] as? [[String: Any]])
        XCTAssertEqual(exported.count, 8)
        let hop = exported[0]
        XCTAssertEqual(hop["traceId"] as? String, "4bf92f3577b34da6a3ce929d0e0e4736")
        XCTAssertEqual(hop["spanId"] as? String, "1111111111111111")
        XCTAssertEqual(hop["parentSpanId"] as? String, "00f067aa0ba902b7")
        XCTAssertEqual(hop["kind"] as? Int, 2)
        XCTAssertEqual(hop["startTimeUnixNano"] as? String, String(Self.wallNanoseconds))
        let attributes = try XCTUnwrap(hop["attributes"] as? [[String: Any]])
        let status = attributes.first { $0["key"] as? String == "http.response.status_code" }
        XCTAssertEqual((status?["value"] as? [String: Any])?["intValue"] as? String, "200")
        XCTAssertNil(hop["status"])
        let failedHop = exported[6]
        XCTAssertNil(failedHop["parentSpanId"], "a trace the gateway started has no parent")
        let failure = try XCTUnwrap(failedHop["status"] as? [String: Any])
        XCTAssertEqual(failure["code"] as? Int, 2)
        XCTAssertEqual(failure["message"] as? String, "upstream-unreachable")
    }
}
