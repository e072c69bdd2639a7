import GatewayConfig
import Hierarchy
import NIOCore

/// What became of one request, handed once to the loop's `RequestObserver` when the request
/// ends, whatever its end: relayed, answered by the gateway, refused, failed, or left by its
/// client. The log phase of the pipeline (Pingora's `logging`): metrics, the access log, traces
/// and per-tenant health are all read from this one value, so they cannot disagree.
///
/// Built only when an observer is installed. Its fields are what the exchange already holds
/// (no formatting, no copies of header values); observers format what they keep.
public struct RequestRecord: Sendable {
    /// How the request ended.
    public enum Outcome: String, Sendable, CaseIterable {
        /// The upstream's response was relayed in full.
        case relayed
        /// The gateway answered itself without a problem (a CORS preflight, the branding
        /// endpoint).
        case answered
        /// The gateway refused the request with a problem raised before forwarding (token,
        /// tenant, quota, route, malformed request…): `problem` says which.
        case refused
        /// Forwarding failed: the upstream could not be reached or answered badly, or no cell
        /// could serve (`problem` says which); or it broke off mid-response (`problem` nil,
        /// `status` the relayed status).
        case failed
        /// The client closed its connection before the answer was complete.
        case clientClosed = "client-closed"
    }

    public let requestID: String
    /// The W3C trace id (32 hex digits) the request was forwarded with, when it got that far
    /// (the client's, or one the gateway started).
    public let traceID: String?
    /// The span id of the gateway's hop (`parent-id` of the outgoing `traceparent`).
    public let spanID: String?
    /// Whether `traceID` continues a trace the client sent.
    public let continuesClientTrace: Bool
    /// The client's span, parent of the gateway's hop (the `parent-id` of the `traceparent` it
    /// sent); nil when the gateway started the trace.
    public var clientSpanID: String? = nil
    /// Whether the gateway records its spans of this trace (`tracing.sampling`, and the client's
    /// sampled flag when it continues a trace); false without tracing.
    public var traceSampled = false
    /// A WebSocket's record, written when the socket closes: how long it was open. Its other
    /// timings are the handshake's (`ended` is the `101`), so a socket open for hours does not
    /// count as hours of latency; its bytes are what the socket relayed.
    public var webSocketLifetime: TimeAmount? = nil
    /// A support engineer's request under a grant (the customer's support sessions record it).
    public var support: SupportRequest? = nil
    /// The method as the client sent it (NIO's spelling; static strings for the known ones).
    public let method: String
    /// The normalized path, never the query (tokens and personal data travel in queries).
    /// Unbounded: for the access log and traces, never a metric label.
    public let path: String?
    /// The catalog route the request matched (its path prefix): bounded by the catalog.
    public let route: String?
    /// The tenant the token speaks for, once authenticated.
    public let tenant: NodePath?
    public let outcome: Outcome
    /// The status the client received (nil when the client left before a response head).
    public let status: UInt?
    /// The problem the gateway answered with; its `phase` is the phase that raised it.
    public let problem: GatewayProblem?
    /// The cell that served (or was to serve) the request, its tier, and the endpoint of the
    /// last upstream attempt.
    public let cell: String?
    public let tier: GatewaySettings.Cell.Kind?
    public let endpoint: GatewaySettings.Endpoint?
    /// Upstream attempts made (retries and fallbacks included); 0 when nothing was forwarded.
    public let attempts: Int
    /// Request body bytes read from the client, and response body bytes written to it.
    public let bytesIn: Int
    public let bytesOut: Int
    /// Instants on the loop's clock: the request head read, then — when the request got that
    /// far — authorized (the token, tenant and route checked), admitted (quotas), the first
    /// upstream attempt connected and its head sent, the upstream's response head received,
    /// the upstream's response complete; and the end (answer written, or the client gone).
    public let started: NIODeadline
    public let authorized: NIODeadline?
    public let admitted: NIODeadline?
    public let upstreamStarted: NIODeadline?
    public let upstreamHead: NIODeadline?
    public let upstreamEnded: NIODeadline?
    public let ended: NIODeadline
    /// Wall-clock µs since the epoch when the request head was read (for timestamps).
    public let startedWallMicroseconds: Int64

    public init(
        requestID: String, traceID: String?, spanID: String?, continuesClientTrace: Bool, method: String, path: String?, route: String?,
        tenant: NodePath?, outcome: Outcome, status: UInt?, problem: GatewayProblem?, cell: String?, tier: GatewaySettings.Cell.Kind?,
        endpoint: GatewaySettings.Endpoint?, attempts: Int, bytesIn: Int, bytesOut: Int, started: NIODeadline, authorized: NIODeadline?,
        admitted: NIODeadline?, upstreamStarted: NIODeadline?, upstreamHead: NIODeadline?, upstreamEnded: NIODeadline?, ended: NIODeadline,
        startedWallMicroseconds: Int64
    ) {
        self.requestID = requestID
        self.traceID = traceID
        self.spanID = spanID
        self.continuesClientTrace = continuesClientTrace
        self.method = method
        self.path = path
        self.route = route
        self.tenant = tenant
        self.outcome = outcome
        self.status = status
        self.problem = problem
        self.cell = cell
        self.tier = tier
        self.endpoint = endpoint
        self.attempts = attempts
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.started = started
        self.authorized = authorized
        self.admitted = admitted
        self.upstreamStarted = upstreamStarted
        self.upstreamHead = upstreamHead
        self.upstreamEnded = upstreamEnded
        self.ended = ended
        self.startedWallMicroseconds = startedWallMicroseconds
    }

    /// A request refused before it became an exchange (a rejected head, unparseable bytes, a
    /// slow client): nothing past the decode phase, no method or path worth keeping.
    static func refusedWithoutExchange(requestID: String, problem: GatewayProblem, at now: NIODeadline, wallMicroseconds: Int64) -> RequestRecord {
        RequestRecord(
            requestID: requestID, traceID: nil, spanID: nil, continuesClientTrace: false, method: "", path: nil, route: nil, tenant: nil,
            outcome: .refused, status: problem.status.code, problem: problem, cell: nil, tier: nil, endpoint: nil, attempts: 0,
            bytesIn: 0, bytesOut: 0, started: now, authorized: nil, admitted: nil, upstreamStarted: nil, upstreamHead: nil,
            upstreamEnded: nil, ended: now, startedWallMicroseconds: wallMicroseconds
        )
    }

    /// From the request head to the end.
    public var total: TimeAmount { self.ended - self.started }

    /// From the first upstream attempt's head sent to the upstream's response complete (or to
    /// the end, when the response never completed); nil when nothing was sent upstream.
    public var upstreamTime: TimeAmount? {
        guard let upstreamStarted = self.upstreamStarted else { return nil }
        return (self.upstreamEnded ?? self.ended) - upstreamStarted
    }

    /// What the gateway added: the total less the upstream's time.
    public var gatewayTime: TimeAmount { self.total - (self.upstreamTime ?? .zero) }
}

/// Told of every request that ends on one event loop, on that loop (so it may keep loop-local
/// state without locks). One per loop, made by the factory given to `GatewayServer.start`.
public protocol RequestObserver: AnyObject {
    func requestEnded(_ record: RequestRecord)
}

/// Several observers as one, in order.
public final class RequestObservers: RequestObserver {
    private let observers: [any RequestObserver]

    public init(_ observers: [any RequestObserver]) {
        self.observers = observers
    }

    public func requestEnded(_ record: RequestRecord) {
        for observer in self.observers { observer.requestEnded(record) }
    }
}
