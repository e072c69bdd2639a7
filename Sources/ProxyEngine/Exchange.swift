import GatewayConfig
import Hierarchy
import Logging
import NIOCore
import NIOHTTP1

/// One request on a client connection: its context (narrowing as the phases advance), its state
/// machine, and what it holds while it runs — a cell route, a lease or an upstream connection,
/// in-flight quota. Everything held is given back in `end`, called by the connection at every
/// end, exactly once; nothing is released in `deinit`.
final class Exchange {
    let request: GatewayRequest
    /// Set by the admit phase; forwarding takes it, so nothing is forwarded unadmitted.
    private(set) var admitted: AdmittedRequest?
    var machine: ExchangeStateMachine
    /// The loop's logger; `log` adds the request id and tenant to each line it writes.
    private let logger: Logger
    /// The tenant the token speaks for, once authenticated: on every later log line.
    var tenantPath: NodePath?
    /// A support engineer's request under a grant, once authenticated.
    var support: SupportRequest?
    /// Refused for a quota, passable after this long: the connection may pause after it.
    var quotaRetryAfter: TimeAmount?

    // What the request's record tells (`RequestRecord`): set as the request advances.
    /// The catalog route matched, once authorized.
    var routePrefix: String?
    /// The problem the gateway answered with, once it did.
    var problem: GatewayProblem?
    /// The relayed response broke off (the client connection was cut mid-response).
    var brokeOff = false
    /// The client closed its connection before the answer was complete.
    var clientLeft = false
    var authorizedAt: NIODeadline?
    var admittedAt: NIODeadline?
    var upstreamStartedAt: NIODeadline?
    var upstreamHeadAt: NIODeadline?
    var upstreamEndedAt: NIODeadline?

    /// The cells and attempts of this request, and the loop's router that tracks them.
    private(set) var routing: (router: CellRouter, route: CellRoute)?
    var route: CellRoute? { self.routing?.route }
    /// The endpoint of the current attempt and its connect timeout (a resend after a stale
    /// pooled connection goes to the same endpoint).
    var endpoint: (target: UpstreamTarget, connectTimeout: Duration)?
    var leaseTicket: UpstreamPool.LeaseTicket?
    var upstream: UpstreamConnection?
    /// The masking of the response, when the route masks fields for this caller (set once
    /// admitted; nil, and never looked at again, on every other request).
    var masking: ResponseMasking?
    /// How many values masking replaced, for the log line.
    var maskedValues: Int?

    /// Set by `end`: what the exchange held has been given back.
    private(set) var ended = false

    init(request: GatewayRequest, logger: Logger) {
        self.request = request
        self.logger = logger
        let timeouts = request.configuration.timeoutMilliseconds
        self.machine = ExchangeStateMachine(
            method: request.head.method, hasBody: !request.framing.isEmpty,
            clientKeepsAlive: request.isOwnStream || (request.head.isKeepAlive && !request.asksForUpgrade),
            maxRequestBodyBytes: request.configuration.settings.limits.maxRequestBodyBytes,
            bodyIdle: .milliseconds(timeouts.requestBodyIdle),
            responseTimeout: .milliseconds(timeouts.upstreamResponse),
            responseBodyIdle: .milliseconds(timeouts.responseBodyIdle),
            started: request.started
        )
    }

    /// The admit phase passed (or there is no tenant tree); what it charged is held from here.
    func admit(_ admitted: AdmittedRequest) {
        precondition(self.admitted == nil && !self.ended, "admitted twice, or after the end")
        self.admitted = admitted
    }

    /// What a browser page may read of an answer the gateway makes itself: once admitted, the
    /// tenant's origin and the route's fields, as on a forwarded answer; before, the rule for
    /// a request whose tenant is not known (the authorize phase has refused any origin that is
    /// not the tenant's before any other refusal of its own).
    var crossOriginAnswer: CrossOriginAnswer? {
        guard let admitted = self.admitted else { return self.request.crossOriginAnswer() }
        guard let grant = admitted.grant, let origin = grant.corsOrigin else { return nil }
        return CrossOriginAnswer(origin: origin, settings: self.request.settings, route: grant.route)
    }

    /// The select-cell phase chose the request's cells.
    func routed(_ route: CellRoute, on router: CellRouter) {
        self.routing = (router, route)
    }

    /// The head sent upstream on this attempt: built when it is sent — only requests that are
    /// forwarded pay for it — and built again for a retry, whose context names the tier of the
    /// cell serving it. Not kept: holding it for the exchange's life cost a copy going in and
    /// its release at the end (0.7 % of a proxy-only profile's samples), for retries alone.
    func upstreamHead(phases: RequestPhases, admitted: AdmittedRequest) -> RelayedRequestHead {
        var head = phases.upstreamRequest(admitted, servedBy: self.route?.currentCellKind)
        if self.masking != nil { ResponseMasking.prepareUpstreamRequest(&head.fields) }
        return head
    }

    /// Gives back what the exchange holds — its cell slots and, once admitted, its in-flight
    /// quota — exactly once, whatever its outcome. True when this call ended it.
    @discardableResult
    func end(now: UInt64) -> Bool {
        guard !self.ended else { return false }
        self.ended = true
        if let (router, route) = self.routing { router.finish(route, now: now) }
        self.admitted?.quota?.release()
        return true
    }

    /// What became of the request, for the loop's observer.
    func record(ended: NIODeadline, wallNowMicroseconds: Int64) -> RequestRecord {
        let outcome: RequestRecord.Outcome
        if self.clientLeft {
            outcome = .clientClosed
        } else if let problem = self.problem {
            outcome = problem.phase == .forward || problem.phase == .selectCell || problem.phase == .respond ? .failed : .refused
        } else if self.brokeOff {
            outcome = .failed
        } else if self.upstreamEndedAt != nil {
            outcome = .relayed
        } else {
            outcome = .answered
        }
        let cell = self.route?.currentCell ?? self.route?.primary.cell
        let trace = self.request.trace
        var record = RequestRecord(
            requestID: self.request.requestID, traceID: trace.outgoing.traceID, spanID: trace.outgoing.parentID,
            continuesClientTrace: trace.continuesClientTrace, method: self.request.head.method.rawValue, path: self.request.path.path,
            route: self.routePrefix, tenant: self.tenantPath, outcome: outcome, status: self.problem?.status.code ?? self.machine.responseStatus,
            problem: self.problem, cell: cell?.id, tier: cell?.kind, endpoint: self.endpoint?.target.endpoint, attempts: self.route?.attempts ?? 0,
            bytesIn: self.machine.requestBodyBytes, bytesOut: self.machine.responseBytes, started: self.request.started,
            authorized: self.authorizedAt, admitted: self.admittedAt, upstreamStarted: self.upstreamStartedAt, upstreamHead: self.upstreamHeadAt,
            upstreamEnded: self.upstreamEndedAt, ended: ended,
            startedWallMicroseconds: wallNowMicroseconds - (ended - self.request.started).nanoseconds / 1_000
        )
        record.clientSpanID = trace.clientParentID
        record.support = self.support
        record.traceSampled = trace.sampled
        return record
    }

    deinit {
        assert(self.ended, "an exchange was dropped without being ended: its cell slots and quota would stay taken")
    }

    // MARK: log

    /// Writes one of this request's lines, with its request id and tenant. They are added when a
    /// line is written, not kept in a per-request copy of the logger: that copy cost four
    /// allocations on every request, logged or not.
    func log(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message, metadata: @autoclosure () -> Logger.Metadata = [:]) {
        self.logger.log(level: level, message(), metadata: self.tagged(metadata()))
    }

    private func tagged(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var metadata = metadata
        metadata["request-id"] = .string(self.request.requestID)
        if let tenant = self.tenantPath { metadata["tenant"] = .stringConvertible(tenant) }
        return metadata
    }

    /// The fields of the request's log line.
    func logMetadata(now: NIODeadline, status: UInt?, problem: GatewayProblem? = nil) -> Logger.Metadata {
        let head = self.request.head
        var metadata: Logger.Metadata = [
            "method": "\(head.method.rawValue)",
            "path": "\(self.request.path.path)",
            "duration-ms": "\((now - self.request.started).nanoseconds / 1_000_000)",
            "bytes-in": "\(self.machine.requestBodyBytes)",
            "bytes-out": "\(self.machine.responseBytes)",
        ]
        // What was authorized and forwarded is `path`; the client's spelling, when it differs.
        let rawPath = head.uri.utf8.split(separator: UInt8(ascii: "?"), maxSplits: 1, omittingEmptySubsequences: false).first
        if let rawPath, !rawPath.elementsEqual(self.request.path.path.utf8) { metadata["raw-path"] = "\(Substring(rawPath))" }
        if let status { metadata["status"] = "\(status)" }
        if let problem {
            metadata["problem"] = "\(problem)"
            metadata["phase"] = "\(problem.phase.rawValue)"
        }
        if let endpoint = self.endpoint?.target.endpoint { metadata["upstream"] = "\(endpoint)" }
        if let cell = self.route?.currentCell ?? self.route?.primary.cell { metadata["cell"] = "\(cell.id)" }
        if let attempts = self.route?.attempts, attempts > 1 { metadata["attempts"] = "\(attempts)" }
        if let masked = self.maskedValues { metadata["masked-values"] = "\(masked)" }
        return metadata
    }
}
