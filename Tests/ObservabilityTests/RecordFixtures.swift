import GatewayConfig
import Hierarchy
import NIOCore
import ProxyEngine

/// Records as the data plane leaves them, with instants at known offsets from `started`.
enum RecordFixtures {
    static let started = NIODeadline.uptimeNanoseconds(1_000_000_000)
    /// 2026-12-03T07:12:00.123456Z
    static let wallMicroseconds: Int64 = 1_796_281_920_123_456

    static func at(_ microseconds: Int64) -> NIODeadline { Self.started + .microseconds(microseconds) }

    static func relayed() throws -> RequestRecord {
        RequestRecord(
            requestID: "req-1", traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "1111111111111111", continuesClientTrace: true,
            method: "GET", path: "/v1/ledger/7", route: "/v1/ledger",
            tenant: NodePath(oem: try NodeID("acme"), partner: try NodeID("p1"), customer: try NodeID("c1")),
            outcome: .relayed, status: 200, problem: nil, cell: "eu-1", tier: .pooled, endpoint: .init(host: "10.0.0.7", port: 8080), attempts: 1,
            bytesIn: 3, bytesOut: 1234, started: Self.started, authorized: Self.at(100), admitted: Self.at(150), upstreamStarted: Self.at(300),
            upstreamHead: Self.at(2_300), upstreamEnded: Self.at(2_800), ended: Self.at(3_007), startedWallMicroseconds: Self.wallMicroseconds
        )
    }

    static func refused(_ problem: GatewayProblem, authorized: Bool = false) -> RequestRecord {
        RequestRecord(
            requestID: "req-2", traceID: "4bf92f3577b34da6a3ce929d0e0e4736", spanID: "2222222222222222", continuesClientTrace: false,
            method: "POST", path: "/v1/payroll", route: authorized ? "/v1/payroll" : nil, tenant: nil, outcome: .refused,
            status: problem.status.code, problem: problem, cell: nil, tier: nil, endpoint: nil, attempts: 0, bytesIn: 0, bytesOut: 120,
            started: Self.started, authorized: authorized ? Self.at(80) : nil, admitted: nil, upstreamStarted: nil, upstreamHead: nil,
            upstreamEnded: nil, ended: Self.at(95), startedWallMicroseconds: Self.wallMicroseconds
        )
    }
}
