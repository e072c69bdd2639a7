import Cells
import GatewayConfig
import Hierarchy
import Logging
import NIOCore
import NIOHTTP1
import Quotas
import TokenAuth

/// A refusal by one of the phases: the problem the client gets, with its headers and
/// extension members, and what only the log line says.
struct Refusal: Error {
    var problem: GatewayProblem
    var headers: HTTPHeaders = HTTPHeaders()
    var extensions: [(name: String, value: String)] = []
    /// For the log only; never sent.
    var reason: String
    /// Who decided, when more than one place can (quota refusals: memory, store, fail mode).
    var decidedBy: String?
    /// Refusals a flood produces (quotas) are logged at `info`, like each request's own line, so
    /// a flood refused from memory writes no more than one refused by the store.
    var level: Logger.Level = .notice
    /// A quota refusal's exact wait until the request could pass (the `Retry-After` header is
    /// rounded up to whole seconds); nil when none is known.
    var retryAfter: TimeAmount?
    /// What the phases had established when they refused — the catalog route matched, the tenant
    /// the token speaks for — for the request's log line and record (so a tenant's own refusals
    /// count in its figures); nil when the request did not get that far.
    var route: String?
    var tenant: NodePath?
    /// A support engineer's request, recorded in the customer's support sessions however it ends.
    var support: SupportRequest?

    /// The refused request's log line fields.
    var logMetadata: Logger.Metadata {
        var metadata: Logger.Metadata = ["problem": "\(self.problem)", "phase": "\(self.problem.phase.rawValue)", "reason": "\(self.reason)"]
        if let decidedBy = self.decidedBy { metadata["decided-by"] = "\(decidedBy)" }
        return metadata
    }
}

/// A response the gateway produces itself without refusing anything (a CORS preflight, the
/// portal branding).
struct LocalResponse {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: String?
}

/// The phases of a request, in order, as one value — Pingora's `ProxyHttp` is the model:
///
///     decode → route → authenticate → resolve → authorize → admit → select cell
///            → upstream request → respond → log          (failToProxy: any refusal)
///
/// Each phase takes the context the one before it produced (`GatewayRequest` → `TenantRequest`
/// → `AdmittedRequest`) and answers proceed (with the narrower context), respond (a refusal or
/// a local response), or await (admission waiting for the quota store). The phases decide; the
/// connection handler drives them and the exchange, and does the I/O. One per connection; what
/// they share per loop (token cache, quota gate, router) lives in `environment`.
struct RequestPhases {
    let environment: ProxyEnvironment
    /// How the client reached the gateway (`http`, `https`), for `X-Forwarded-Proto`.
    let scheme: String

    // MARK: decode

    enum Decoded {
        case proceed(GatewayRequest)
        case refuse(Refusal, requestID: String)
    }

    /// Limits, framing, method and one spelling of the path; the request id and trace context.
    func decode(
        _ head: RelayedRequestHead, clientAddress: String?, identifiers: inout IdentifierGenerator
    ) -> Decoded {
        let clientRequestID = head.fields.first(name: "x-request-id")
        let requestID = clientRequestID.flatMap { RequestID.isAcceptable($0) ? $0 : nil } ?? identifiers.requestID()
        let configuration = self.environment.configuration
        let settings = configuration.settings
        let framing: RequestHeadValidation.BodyFraming
        switch RequestHeadValidation.validate(head, limits: settings.limits, catalogMethods: configuration.tenants?.catalog.routes.namedMethods ?? []) {
        case .success(let valid): framing = valid
        case .failure(let problem):
            return .refuse(Refusal(problem: problem, reason: "method \(head.method.rawValue)"), requestID: requestID)
        }
        let path: RequestPath
        do {
            path = try RequestPath.parse(head.uri)
        } catch {
            return .refuse(Refusal(problem: .ambiguousPath, reason: "\(error)"), requestID: requestID)
        }
        // A WebSocket handshake's bearer subprotocol becomes its `Authorization` here, before
        // anything else reads the head.
        var head = head
        var webSocket: WebSocketHandshake?
        switch WebSocketHandshake.read(head) {
        case .notAHandshake:
            break
        case .handshake(let handshake):
            webSocket = handshake
            head = handshake.headForPhases(head)
        case .malformed(let reason):
            return .refuse(Refusal(problem: .malformedRequest, reason: reason), requestID: requestID)
        }
        return .proceed(GatewayRequest(
            requestID: requestID, head: head, path: path, framing: framing,
            trace: TraceDecision.decide(
                incoming: head.fields.first(name: "traceparent"), sampleRatio: settings.tracing?.sampling ?? 0, generator: &identifiers
            ),
            facts: .init(clientAddress: clientAddress, scheme: self.scheme, trustClientForwardedHeaders: settings.forwarding.trustClientForwardedHeaders),
            configuration: configuration, started: self.environment.eventLoop.now, webSocket: webSocket
        ))
    }

    // MARK: route → authenticate → resolve → authorize

    enum Authorized {
        case proceed(TenantRequest)
        /// No tenant tree, or a tree without issuers (tests only; the route matched): forwarded
        /// to the default cell as it came.
        case proceedWithoutTenant(AdmittedRequest)
        case respond(LocalResponse)
        case refuse(Refusal)
    }

    /// The phases that need the tenant tree: route match (or the branding endpoint), the bearer
    /// token, the customer it speaks for, what that customer may do.
    func authorize(_ request: GatewayRequest) -> Authorized {
        let head = request.head
        if request.webSocket != nil, let refusal = Self.refuseWebSocket(request) { return .refuse(refusal) }
        guard let tenants = request.configuration.tenants else { return .proceedWithoutTenant(AdmittedRequest(withoutTenant: request)) }
        if request.path.path == BrandingEndpoint.path, head.method == .GET || head.method == .HEAD {
            return self.branding(request, tenants: tenants)
        }
        guard let authentication = request.configuration.authentication else {
            if tenants.catalog.routes.match(method: head.method.rawValue, path: Substring(request.path.path)) == nil {
                return .refuse(Refusal(problem: .routeNotFound, reason: "no route matches"))
            }
            return .proceedWithoutTenant(AdmittedRequest(withoutTenant: request))
        }
        let access = TenantAccess(
            configuration: request.configuration, tenants: tenants, authentication: authentication, metrics: self.environment.metrics,
            fetchedKeys: self.environment.fetchedKeys, unknownKeys: self.environment.unknownKeys
        )
        let now = self.environment.wallClock.nowSeconds
        switch access.decide(head: head, path: request.path, cache: &self.environment.tokenCache, revocations: self.environment.revocations, now: now) {
        case .forward(let grant):
            return .proceed(TenantRequest(request: request, grant: grant, contextTime: now))
        case .preflight(let headers):
            // 204 carries no body and, per RFC 9110 §8.6, no Content-Length either.
            return .respond(LocalResponse(status: .noContent, headers: headers, body: nil))
        case .refuse(let refusal):
            return .refuse(refusal)
        }
    }

    /// A WebSocket handshake passes the route phase only on a route marked `websocket: true`;
    /// on any other route (the branding endpoint included, and every route without a tenant
    /// tree) it is refused rather than forwarded as a plain GET. A path no route matches gets
    /// `route-not-found` from the route phase as usual.
    private static func refuseWebSocket(_ request: GatewayRequest) -> Refusal? {
        guard let routes = request.configuration.tenants?.catalog.routes else {
            return Refusal(problem: .websocketNotAllowed, reason: "no route catalog")
        }
        let route = routes.match(method: request.head.method.rawValue, path: Substring(request.path.path))
        if route?.websocket == true { return nil }
        if route == nil, request.path.path != BrandingEndpoint.path { return nil }
        return Refusal(problem: .websocketNotAllowed, reason: "route not marked websocket", route: route?.pathPrefix)
    }

    /// `GET /v1/branding`: with a token, the caller's own tenant's branding; without, the
    /// portal's, by `Host`.
    private func branding(_ request: GatewayRequest, tenants: TenantSnapshot) -> Authorized {
        let head = request.head
        guard head.fields.contains(name: "authorization"), let authentication = request.configuration.authentication else {
            guard let branding = BrandingEndpoint.branding(forHost: head.fields.first(name: "host"), in: tenants) else {
                return .refuse(Refusal(problem: .portalNotFound, reason: "no portal on this host"))
            }
            var response = BrandingEndpoint.response(for: branding, request: head)
            request.crossOriginAnswer()?.apply(to: &response.headers)
            return .respond(LocalResponse(status: response.status, headers: response.headers, body: response.body))
        }
        let access = TenantAccess(
            configuration: request.configuration, tenants: tenants, authentication: authentication, metrics: self.environment.metrics,
            fetchedKeys: self.environment.fetchedKeys, unknownKeys: self.environment.unknownKeys
        )
        switch access.authenticate(
            head: head, path: request.path, cache: &self.environment.tokenCache, revocations: self.environment.revocations, now: self.environment.wallClock.nowSeconds
        ) {
        case .success(let (policy, _)):
            // Like a route: a page may read its tenant's branding from the tenant's own origins.
            let origin = head.fields.first(name: "origin")
            if var refusal = TenantAccess.originRefusal(origin, policy: policy) {
                refusal.tenant = policy.path
                return .refuse(refusal)
            }
            var response = BrandingEndpoint.response(for: policy.branding, request: head)
            if let origin { CrossOriginAnswer(origin: origin, settings: request.settings, route: nil).apply(to: &response.headers) }
            return .respond(LocalResponse(status: response.status, headers: response.headers, body: response.body))
        case .failure(let refusal):
            return .refuse(refusal)
        }
    }

    // MARK: admit

    enum Admitted {
        case proceed(AdmittedRequest)
        /// The quota store decides: run `plan`, then `storeAnswered`.
        case awaitStore(QuotaPlan, any QuotaStore, QuotaFailMode)
        case refuse(Refusal)
    }

    /// Every level of the tenant's path is checked and charged in one round trip; a refusal
    /// charges nothing. The loop's `QuotaGate` decides (from memory, through the store, or by the
    /// tier's fail mode while the store is away).
    func admit(_ request: TenantRequest) -> Admitted {
        guard let quotas = self.environment.quotas else { return .proceed(AdmittedRequest(request, quota: nil, rateLimitHeaders: [])) }
        let now = self.environment.wallClock.nowMicroseconds
        let policy = request.grant.policy
        let cost = request.grant.route.cost
        let loop = self.environment.eventLoop
        let failMode = QuotaFailMode(configuration: request.request.configuration, tier: request.grant.cell.kind)
        let answer = self.environment.quotaGate.admit(
            levels: policy.limits, oem: policy.path.oem, customer: policy.id, cost: cost, now: now,
            store: quotas.storeState(on: loop), failMode: failMode
        ) {
            // The admission script also meters the customer's usage: one round trip for both.
            try quotas.plan(levels: policy.limits, oem: policy.path.oem, cost: cost, now: now, meter: policy.id)
        }
        self.environment.wakeForLeaseWork(now: now)
        // The store's state is only looked at where it tells two admissions apart (`local`).
        if let metrics = self.environment.metrics,
            let outcome = LoopMetrics.QuotaOutcome(
                answer, storeAnswered: false, storeReachable: failMode != .local || quotas.storeState(on: loop) == .reachable, failMode: failMode
            )
        {
            metrics.quotaDecided(outcome, tier: request.grant.cell.kind)
        }
        return self.admitted(answer, request: request, quotas: quotas, failMode: failMode)
    }

    /// The store answered an `awaitStore`.
    func storeAnswered(
        _ result: Result<QuotaDecision, any Error>, request: TenantRequest, plan: QuotaPlan, quotas: any QuotaStore, failMode: QuotaFailMode
    ) -> Admitted {
        let answer = self.environment.quotaStoreAnswered(result, plan: plan, failMode: failMode)
        // A failed reply leaves the request to the fail mode, as if the store were away.
        let replied = if case .success = result { true } else { false }
        if let metrics = self.environment.metrics,
            let outcome = LoopMetrics.QuotaOutcome(answer, storeAnswered: true, storeReachable: replied, failMode: failMode)
        {
            metrics.quotaDecided(outcome, tier: request.grant.cell.kind)
        }
        return self.admitted(answer, request: request, quotas: quotas, failMode: failMode)
    }

    private func admitted(_ answer: QuotaGate.Answer, request: TenantRequest, quotas: any QuotaStore, failMode: QuotaFailMode) -> Admitted {
        switch answer {
        case .proceed:
            return .proceed(AdmittedRequest(request, quota: nil, rateLimitHeaders: []))
        case .proceedUnchecked(let warning):
            self.warn(warning, requestID: request.request.requestID)
            return .proceed(AdmittedRequest(request, quota: nil, rateLimitHeaders: []))
        case .askStore(let plan):
            return .awaitStore(plan, quotas, failMode)
        case .admitted(let plan, let headers):
            let quota = AdmittedQuota(admission: quotas, plan: plan, loop: self.environment.eventLoop)
            return .proceed(AdmittedRequest(request, quota: quota, rateLimitHeaders: headers))
        case .refuse(let refusal):
            let decidedBy = switch refusal.source {
            case .memory: "over-limit memory"
            case .store: "quota store"
            case .localLimits: "local limits"
            }
            var retryAfter: TimeAmount?
            if case .refused(_, _, let milliseconds?, _, _, _) = refusal.decision { retryAfter = .milliseconds(milliseconds) }
            return .refuse(Refusal(
                problem: .quotaExceeded, headers: HTTPHeaders(refusal.headers.map { ($0.name, $0.value) }), reason: refusal.reason, decidedBy: decidedBy,
                level: .info, retryAfter: retryAfter
            ))
        case .refuseStoreAway(let retryAfterSeconds, let warning):
            self.warn(warning, requestID: request.request.requestID)
            var headers = HTTPHeaders()
            headers.add(name: "retry-after", value: String(retryAfterSeconds))
            return .refuse(Refusal(problem: .quotaStoreUnavailable, headers: headers, reason: warning.reason, decidedBy: "fail mode", level: .info))
        }
    }

    /// Once per outage and interval, not once per request: each request's own line still says
    /// how it was answered.
    private func warn(_ warning: QuotaWarning, requestID: String) {
        var metadata: Logger.Metadata = ["error": "\(warning.reason)", "request-id": "\(requestID)"]
        if let mode = warning.failMode { metadata["fail-mode"] = "\(mode)" }
        self.environment.repeatedWarnings.warn(
            warning.message, metadata: metadata, logger: self.environment.logger, now: self.environment.eventLoop.now.uptimeNanoseconds
        )
    }

    // MARK: select cell

    /// The customer's cell (the default cell without a tenant) and the fallbacks its residency
    /// allows; nil when the settings have none of them.
    func selectCell(_ request: AdmittedRequest) -> CellRoute? {
        // By id: the cell's settings copied out of the grant or the configuration retained and
        // released each of their fields.
        guard let id = request.grant?.cell.id ?? request.request.configuration.defaultCell?.id else { return nil }
        return self.environment.router.route(forCell: id, residency: request.grant?.policy.residency)
    }

    // MARK: upstream request

    /// The head sent upstream. Client `X-ERP-*` headers are removed (`upstreamRequestHead`); an
    /// admitted tenant's signed context replaces them (naming as its tier `kind`, that of the
    /// cell serving this attempt), and the caller's credential stays here.
    func upstreamRequest(_ request: AdmittedRequest, servedBy kind: GatewaySettings.Cell.Kind?) -> RelayedRequestHead {
        let gatewayRequest = request.request
        let grant = request.grant
        let catalog = gatewayRequest.configuration.tenants?.catalog
        let key = gatewayRequest.settings.upstreamContext?.active
        // The normalized target: what was matched and authorized is what is forwarded.
        var head = ForwardedHeaders.upstreamRequestHead(
            from: gatewayRequest.head, target: gatewayRequest.path.target, facts: gatewayRequest.facts, requestID: gatewayRequest.requestID,
            trace: gatewayRequest.trace, framing: gatewayRequest.framing, removingAuthorization: grant != nil && catalog != nil && key != nil
        )
        if let grant, let catalog, let key {
            var context = UpstreamContext(
                policy: grant.policy, catalog: catalog, tier: kind ?? grant.cell.kind, method: gatewayRequest.head.method.rawValue,
                target: gatewayRequest.path.target, requestID: gatewayRequest.requestID, time: request.contextTime
            )
            context.support = grant.support
            context.apply(to: &head.fields, signer: self.environment.contextSigners.signer(for: key))
        }
        if gatewayRequest.webSocket != nil {
            // Hop-by-hop, so stripped above; the handshake asks the backend to switch again.
            head.fields.add(name: "connection", value: "Upgrade")
            head.fields.add(name: "upgrade", value: "websocket")
        }
        return head
    }

    // MARK: respond

    /// The response head the client gets for the upstream's: hop-by-hop removed, request id,
    /// RateLimit headers, and for a browser the one origin this tenant allows (never `*`) with
    /// the fields it may read — the gateway's, replacing any CORS fields of the backend's.
    func respond(_ request: AdmittedRequest, upstreamHead: HTTPResponseHead, close: Bool) -> HTTPResponseHead {
        var head = ForwardedHeaders.clientResponseHead(
            from: upstreamHead, requestID: request.request.requestID, version: request.request.head.version, close: close
        )
        self.addAnswerFields(request, to: &head.headers)
        return head
    }

    /// `respond` for a head relayed with its fields as received. The head is taken, not
    /// borrowed: its list of received lines, marked as hop-by-hop fields are removed, is then
    /// the parser's own and is not copied first (an allocation per response).
    func respond(_ request: AdmittedRequest, upstreamHead: consuming RelayedResponseHead, close: Bool) -> RelayedResponseHead {
        var head = consume upstreamHead
        head.version = request.request.head.version
        ForwardedHeaders.clientResponseFields(&head.fields, requestID: request.request.requestID, version: head.version, close: close)
        self.addAnswerFields(request, to: &head.fields)
        return head
    }

    /// The RateLimit fields, and for a browser the CORS fields in place of the backend's.
    private func addAnswerFields<Fields: FieldEditing>(_ request: AdmittedRequest, to fields: inout Fields) {
        for (name, value) in request.rateLimitHeaders { fields.replaceOrAdd(name: name, value: value) }
        if let grant = request.grant, let origin = grant.corsOrigin {
            CrossOriginAnswer.removeUpstreamFields(from: &fields)
            CrossOriginAnswer(origin: origin, settings: request.request.settings, route: grant.route).apply(to: &fields)
        }
    }

    /// The `101` the client gets for the backend's: as `respond`, but the connection switches
    /// protocols instead of closing or staying HTTP.
    func respondSwitchingProtocols(_ request: AdmittedRequest, upstreamHead: HTTPResponseHead) -> HTTPResponseHead {
        var head = self.respond(request, upstreamHead: upstreamHead, close: false)
        head.headers.add(name: "connection", value: "Upgrade")
        head.headers.add(name: "upgrade", value: "websocket")
        return head
    }

    // MARK: failToProxy

    /// The one place a problem becomes a response: `application/problem+json`, never cached,
    /// with the request id the log line carries, and readable by a browser page on an allowed
    /// origin (`crossOrigin`), so an app can tell an expired token from a quota from an outage.
    /// The body is the same for every caller.
    static func failToProxy(
        _ problem: GatewayProblem, requestID: String, version: HTTPVersion, close: Bool, headers extra: HTTPHeaders = HTTPHeaders(),
        extensions: [(name: String, value: String)] = [], crossOrigin: CrossOriginAnswer? = nil
    ) -> (head: HTTPResponseHead, body: String) {
        let body = ProblemDocument(problem, requestID: requestID, extensions: extensions).json
        var headers = extra
        headers.add(name: "content-type", value: "application/problem+json")
        headers.add(name: "content-length", value: String(body.utf8.count))
        headers.add(name: "x-request-id", value: requestID)
        headers.add(name: "cache-control", value: "no-store")
        if problem == .upstreamBusy || (problem == .noHealthyUpstream && !headers.contains(name: "retry-after")) {
            headers.add(name: "retry-after", value: "1")
        }
        if close { headers.add(name: "connection", value: "close") }
        crossOrigin?.apply(to: &headers)
        return (HTTPResponseHead(version: version, status: problem.status, headers: headers), body)
    }
}
