import GatewayConfig
import Logging
import NIOCore
import NIOHTTP1
import Quotas

/// The request context, narrowing as the request advances through the phases:
/// `GatewayRequest` (decoded) → `TenantRequest` (authenticated, resolved, authorized) →
/// `AdmittedRequest` (quotas charged). Each phase takes the type the phase before it produces,
/// so a phase cannot run on a request that has not passed the ones before it: nothing is
/// forwarded that was not admitted, nothing admitted that was not authorized.

/// A request head that passed `decode`: limits and framing checked, one spelling of its path.
///
/// A class for the reason `AdmittedRequest` is one: the exchange and every later context hold
/// it, and as a value each of those copies retained and released all of its fields.
final class GatewayRequest {
    let requestID: String
    let head: RelayedRequestHead
    /// The normalized target: what is matched and authorized is what is forwarded.
    let path: RequestPath
    let framing: RequestHeadValidation.BodyFraming
    let trace: TraceDecision
    let facts: ForwardedHeaders.ClientFacts
    /// The configuration this request runs with from here to its log line, even if a reload
    /// installs another one meanwhile.
    let configuration: GatewayConfiguration
    /// When the head was read, on the loop's clock.
    let started: NIODeadline
    /// The request is a WebSocket handshake: relayed as a socket on routes marked
    /// `websocket: true`, refused on every other.
    let webSocket: WebSocketHandshake?

    init(
        requestID: String, head: RelayedRequestHead, path: RequestPath, framing: RequestHeadValidation.BodyFraming, trace: TraceDecision,
        facts: ForwardedHeaders.ClientFacts, configuration: GatewayConfiguration, started: NIODeadline, webSocket: WebSocketHandshake? = nil
    ) {
        self.requestID = requestID
        self.head = head
        self.path = path
        self.framing = framing
        self.trace = trace
        self.facts = facts
        self.configuration = configuration
        self.started = started
        self.webSocket = webSocket
    }

    var settings: GatewaySettings { self.configuration.settings }

    /// The request asks to switch protocols (`Upgrade`). The HTTP decoder reads nothing after
    /// such a request — the bytes would belong to the new protocol — so whatever is pipelined
    /// behind it would never be answered: the connection closes after this exchange instead.
    var asksForUpgrade: Bool { self.head.fields.contains(name: "upgrade") }

    /// An HTTP/2 request: its stream is its own, and answering it never closes the connection
    /// the stream shares with others (`Connection` means nothing in HTTP/2, where NIOHTTP2
    /// refuses the field).
    var isOwnStream: Bool { self.head.version.major == 2 }

    /// What a browser page may read of an answer to this request before its tenant is known:
    /// nil without an `Origin` some node registered (`CrossOriginAnswer`). Looked up only when
    /// the gateway answers itself, never on the forwarding path.
    func crossOriginAnswer() -> CrossOriginAnswer? {
        CrossOriginAnswer(registered: self.head.fields.first(name: "origin"), configuration: self.configuration)
    }
}

/// A request the token speaks for: the customer it acts for, the route it matched, the cell the
/// customer is placed on.
struct TenantRequest {
    let request: GatewayRequest
    let grant: TenantAccess.Grant
    /// Unix seconds at authentication: the time stamped into the upstream tenant context.
    let contextTime: Int64
}

/// A request that may be forwarded: admitted by every quota of its tenant's path — or, when the
/// gateway runs without a tenant tree, decoded (there is nothing to authorize or charge).
///
/// A class, not a struct: the exchange, its state and the phases after admission each hold the
/// admitted request, and as a value every such copy retained and released each of the ~60
/// references its request, policy, token and cell hold (the copy and destroy witnesses of this
/// type were 6 % of the full pipeline's samples in `bench/profile.sh full`). As one immutable
/// object a copy is one retain, for one allocation per admitted request.
final class AdmittedRequest {
    let request: GatewayRequest
    /// Nil only without a tenant tree (or a tree without issuers): the request is forwarded to
    /// the default cell as it came.
    let grant: TenantAccess.Grant?
    let contextTime: Int64
    /// What admission charged, given back when the exchange ends.
    let quota: AdmittedQuota?
    /// RateLimit headers for the client's response.
    let rateLimitHeaders: [(name: String, value: String)]

    init(_ tenant: TenantRequest, quota: AdmittedQuota?, rateLimitHeaders: [(name: String, value: String)]) {
        self.request = tenant.request
        self.grant = tenant.grant
        self.contextTime = tenant.contextTime
        self.quota = quota
        self.rateLimitHeaders = rateLimitHeaders
    }

    /// Without a tenant tree: forwarded as decoded.
    init(withoutTenant request: GatewayRequest) {
        self.request = request
        self.grant = nil
        self.contextTime = 0
        self.quota = nil
        self.rateLimitHeaders = []
    }
}

/// The in-flight quota an admitted request holds until its exchange ends.
struct AdmittedQuota {
    let admission: any QuotaStore
    let plan: QuotaPlan
    let loop: any EventLoop

    /// Gives the in-flight units back; nothing to do for a plan without concurrency limits.
    func release() {
        guard !self.plan.inflightKeys.isEmpty else { return }
        _ = self.admission.release(self.plan, on: self.loop)
    }
}
