import Hierarchy
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ProxyEngine
import RedisClient
import RedisTestServer
import SupportAccess
import SupportSessionLog
import XCTest

@testable import AdminAPI

/// The support session log on a real redis-server: requests made under a grant reach the
/// customer's audit stream (and nothing else does), and what the bounded buffer cannot hold is
/// counted, never lost silently.
final class SupportSessionLogTests: RedisServerTestCase {
    let store = AdminStore(keyPrefix: "erp-sessions-test")

    func record(_ id: String, support: SupportRequest?) throws -> RequestRecord {
        let now = NIODeadline.now()
        var record = RequestRecord(
            requestID: id, traceID: nil, spanID: nil, continuesClientTrace: false, method: "GET", path: "/v1/ledger", route: "/v1/ledger",
            tenant: try NodePath(parsing: "acme/p1/c1"), outcome: .relayed, status: 200, problem: nil, cell: "pooled", tier: .pooled, endpoint: nil,
            attempts: 1, bytesIn: 0, bytesOut: 10, started: now, authorized: now, admitted: now, upstreamStarted: now, upstreamHead: now,
            upstreamEnded: now, ended: now, startedWallMicroseconds: 1_795_780_800_123_000
        )
        record.support = support
        return record
    }

    func testRequestsUnderAGrantReachTheCustomersAuditStreamAndWhatTheBufferCannotHoldIsCounted() async throws {
        let registry = PrometheusCollectorRegistry()
        let log = SupportSessionLog(
            client: self.client, streamKey: { [store] in store.auditKey(oem: $0) }, capacity: 2, loop: self.group.next(),
            logger: Logger(label: "test"), metrics: PrometheusMetricsFactory(registry: registry)
        )
        let observer = log.observer()
        let engineer = SupportRequest(grant: "sg-1", ticket: "SUP-7", engineer: "jane", scope: .readOnly)
        observer.requestEnded(try self.record("r1", support: engineer))
        observer.requestEnded(try self.record("r0", support: nil))
        observer.requestEnded(try self.record("r2", support: engineer))
        observer.requestEnded(try self.record("r3", support: engineer))
        await log.shutdown()

        let entries = try await self.client.send(on: self.group.next(), ["XRANGE", self.store.auditKey(oem: "acme"), "-", "+"]).get().elements ?? []
        let sessions = entries.compactMap { $0.elements?[1].elements?[1].string }
        XCTAssertEqual(sessions.count, 2, "\(sessions)")
        XCTAssertTrue(sessions[0].contains(#""requestId":"r1""#) && sessions[0].contains(#""ticket":"SUP-7""#) && sessions[0].contains(#""time":1795780800123"#), sessions[0])
        XCTAssertTrue(sessions[1].contains(#""requestId":"r2""#), sessions[1])
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        let exposition = String(decoding: bytes, as: UTF8.self)
        XCTAssertTrue(exposition.contains(#"erp_gateway_support_sessions_total{result="written"} 2"#), exposition)
        XCTAssertTrue(exposition.contains(#"erp_gateway_support_sessions_total{result="dropped"} 1"#), exposition)
    }
}
