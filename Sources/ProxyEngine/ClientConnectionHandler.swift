import Cells
import GatewayConfig
import Hierarchy
import Logging
import NIOCore
import NIOHTTP1
import Quotas
import TokenAuth

#if canImport(Glibc)
import Glibc
#endif

/// Serves one client connection: one exchange (request → upstream → response) at a time, in
/// order, with pipelined requests held until the one before them has been answered.
///
/// Backpressure both ways comes from holding `read()`: the client is not read while the upstream
/// cannot take more request bytes (or is not connected yet), and the upstream is not read while
/// the client cannot take more response bytes. Memory per connection stays bounded by one read.
final class ClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let environment: ProxyEnvironment
    private let startDetector: RequestStartDetector
    private var context: ChannelHandlerContext?
    private var identifiers = IdentifierGenerator()
    private var exchange: Exchange?
    /// Reading, pipelining, keep-alive and closing decisions; this handler applies them.
    private var connection = ClientConnectionStateMachine()
    /// The connection's one timer. Every timeout — between requests, of a request body, of an
    /// upstream response — is a deadline it checks when it fires; it is rescheduled only when a
    /// deadline comes before its next firing, so a keep-alive request schedules none.
    private var deadlineTimer: (task: Scheduled<Void>, at: NIODeadline)?
    /// When the wait between requests (`connection.wait`) runs out.
    private var waitDeadline: NIODeadline?
    /// The peer's address as text, formatted once per connection rather than per request.
    private lazy var clientAddress: String? = self.context?.channel.remoteAddress?.ipAddress

    init(environment: ProxyEnvironment, startDetector: RequestStartDetector) {
        self.environment = environment
        self.startDetector = startDetector
        startDetector.observer = self
    }

    /// The settings in force now: for connection-level timers. An exchange uses its own copy.
    private var settings: GatewaySettings { self.environment.configuration.settings }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive {
            self.awaitRequest(first: true)
        }
    }

    /// The pipeline removes every handler when the channel closes. The context holds this
    /// handler and this handler held the context: dropping it here breaks the cycle, which
    /// otherwise kept about 0.9 KiB alive for every connection ever accepted.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.beginClosing()
        self.startDetector.armed = false
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.awaitRequest(first: true)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        if self.connection.partArrived(part, stage: self.stage) == .handle {
            self.handle(part)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.exchange?.upstream?.flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.exchange?.upstream?.resumeReading()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.beginClosing()
        self.startDetector.armed = false
        if let exchange = self.exchange {
            self.end(exchange)
            if let ticket = exchange.leaseTicket { self.environment.pool.cancel(ticket) }
            if let upstream = exchange.upstream {
                // The client went away mid-exchange: the upstream connection is mid-message too.
                self.environment.pool.release(upstream, reusable: false)
            }
            exchange.logger.info("client closed the connection before the response completed", metadata: exchange.logMetadata(status: nil))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch self.connection.errorCaught(error, stage: self.stage, channelActive: context.channel.isActive) {
        case .close:
            // I/O errors (reset by peer and the like), or the connection is going anyway.
            self.closeNow()
        case .deferred:
            return  // the bad bytes follow a complete request: that request is answered first
        case .failExchange(let problem):
            guard let exchange = self.exchange else { return }
            exchange.logger.notice("request body rejected", metadata: ["problem": "\(problem)", "parser-error": "\(error)"])
            // The body in flight is malformed: the upstream has a partial request, discard it.
            if let upstream = exchange.upstream {
                exchange.upstream = nil
                self.environment.pool.release(upstream, reusable: false)
            }
            self.fail(exchange, with: problem)
        case .answerAndClose(let problem):
            self.respondWithoutExchange(problem, logMetadata: ["parser-error": "\(error)"])
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            if self.connection.quiesce(stage: self.stage) { self.closeNow() }
            return
        }
        if let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed {
            if self.connection.inputClosedByClient(stage: self.stage) { self.closeNow() }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if self.connection.readRequested(self.stage) {
            context.read()
        }
    }

    // MARK: - Reading the client

    /// Where the exchange in progress stands, for the connection's decisions.
    private var stage: ClientConnectionStateMachine.ExchangeStage {
        guard let exchange = self.exchange else { return .none }
        if exchange.requestComplete { return .answering }
        return .receiving(canTakeMore: exchange.answeredLocally || exchange.upstream?.isWritable == true)
    }

    private func resumeReadingIfPossible() {
        guard let context = self.context, self.connection.resumeReading(self.stage) else { return }
        context.read()
    }

    private func handle(_ part: HTTPServerRequestPart) {
        switch part {
        case .head(let head):
            self.startExchange(head)
        case .body(let buffer):
            guard let exchange = self.exchange else { return }
            exchange.requestBodyBytes += buffer.readableBytes
            exchange.lastBodyRead = self.environment.eventLoop.now
            if exchange.answeredLocally { return }
            if exchange.requestBodyBytes > exchange.settings.limits.maxRequestBodyBytes {
                if let upstream = exchange.upstream {
                    exchange.upstream = nil
                    self.environment.pool.release(upstream, reusable: false)
                }
                self.fail(exchange, with: .bodyTooLarge)
                return
            }
            self.sendUpstream(.body(.byteBuffer(buffer)), for: exchange)
        case .end:
            guard let exchange = self.exchange else { return }
            exchange.requestComplete = true
            if exchange.answeredLocally {
                self.exchangeFinished()
                return
            }
            self.sendUpstream(.end(nil), for: exchange)
            exchange.upstream?.flush()
        }
    }

    private func sendUpstream(_ part: HTTPClientRequestPart, for exchange: Exchange) {
        if exchange.responseComplete {
            return  // the upstream already answered; the rest of the body has nowhere to go
        }
        if exchange.replayable, case .body = part {
            exchange.replayable = false
        }
        if let upstream = exchange.upstream {
            upstream.write(part)
            if case .end = part { self.requestFullySent(exchange) }
        } else {
            exchange.bufferedForUpstream.append(part)
        }
    }

    /// Bounds the gap between two reads of a request body. Without it a client that declares a
    /// body and never sends it would hold an upstream connection of a shared endpoint, a cell
    /// slot and quota in flight for as long as it likes. Each read moves the deadline on; the
    /// connection's timer looks at it only when it fires.
    private func watchBody(_ exchange: Exchange) {
        exchange.bodyIdle = TimeAmount.milliseconds(exchange.settings.timeouts.requestBodyIdle.milliseconds)
        if let deadline = exchange.bodyDeadline { self.checkDeadlines(by: deadline) }
    }

    private func requestFullySent(_ exchange: Exchange) {
        exchange.requestSentUpstream = true
        let timeout = TimeAmount.milliseconds((exchange.attemptTimeouts?.response ?? exchange.settings.timeouts.upstreamResponse).milliseconds)
        let deadline = self.environment.eventLoop.now + timeout
        exchange.responseDeadline = deadline
        self.checkDeadlines(by: deadline)
    }

    /// The response head did not arrive in time. Not retried: the upstream may still be working
    /// on the request.
    private func responseTimedOut(_ exchange: Exchange) {
        if let route = exchange.route { self.environment.router.report(route, failed: true, now: self.monotonicNow) }
        if let upstream = exchange.upstream {
            exchange.upstream = nil
            self.environment.pool.release(upstream, reusable: false)
        }
        self.fail(exchange, with: .upstreamTimeout)
    }

    // MARK: - Starting an exchange

    private func startExchange(_ head: HTTPRequestHead) {
        self.cancelWaitTimer()
        self.startDetector.armed = false
        let clientRequestID = head.headers.first(name: "x-request-id")
        let requestID = clientRequestID.flatMap { RequestID.isAcceptable($0) ? $0 : nil } ?? self.identifiers.requestID()
        var logger = self.environment.logger
        logger[metadataKey: "request-id"] = .string(requestID)

        // The configuration this exchange runs with from here to its log line, even if a reload
        // installs another one meanwhile.
        let configuration = self.environment.configuration
        let settings = configuration.settings
        let framing: RequestHeadValidation.BodyFraming
        switch RequestHeadValidation.validate(head, limits: settings.limits, catalogMethods: configuration.tenants?.catalog.routes.namedMethods ?? []) {
        case .success(let valid): framing = valid
        case .failure(let problem):
            self.respondWithoutExchange(problem, requestID: requestID, requestHead: head, logMetadata: ["method": "\(head.method.rawValue)"])
            return
        }

        // One spelling of the path for matching, authorizing and forwarding.
        let path: RequestPath
        do {
            path = try RequestPath.parse(head.uri)
        } catch {
            self.respondWithoutExchange(.ambiguousPath, requestID: requestID, requestHead: head, logMetadata: ["reason": "\(error)"])
            return
        }
        let exchange = Exchange(
            requestID: requestID, clientHead: head, path: path,
            trace: TraceDecision.decide(incoming: head.headers.first(name: "traceparent"), generator: &self.identifiers),
            facts: .init(
                clientAddress: self.clientAddress,
                scheme: self.environment.scheme,
                trustClientForwardedHeaders: settings.forwarding.trustClientForwardedHeaders
            ),
            configuration: configuration, logger: logger, started: self.environment.eventLoop.now, eventLoop: self.environment.eventLoop, framing: framing,
            replayable: head.method.isIdempotent && framing.isEmpty
        )
        self.exchange = exchange
        if !framing.isEmpty { self.watchBody(exchange) }

        if let tenants = configuration.tenants {
            self.runTenantPhases(exchange, path: path, tenants: tenants)
        } else {
            self.continueToUpstream(exchange)
        }
    }

    /// Route match, authenticate → resolve → authorize, then admit (or the branding endpoint):
    /// the phases that need the tenant tree. Ends by forwarding or answering.
    private func runTenantPhases(_ exchange: Exchange, path: RequestPath, tenants: TenantSnapshot) {
        let head = exchange.clientHead
        let configuration = exchange.configuration
        if path.path == BrandingEndpoint.path, head.method == .GET || head.method == .HEAD {
            self.answerBrandingRequest(exchange, path: path, tenants: tenants)
            return
        }
        guard let authentication = configuration.authentication else {
            // A tree without issuers (only in tests): route match only.
            if tenants.catalog.routes.match(method: head.method.rawValue, path: Substring(path.path)) == nil {
                self.fail(exchange, with: .routeNotFound)
                return
            }
            self.continueToUpstream(exchange)
            return
        }
        let access = TenantAccess(configuration: configuration, tenants: tenants, authentication: authentication)
        let now = self.environment.wallClock.nowSeconds
        switch access.decide(head: head, path: path, cache: &self.environment.tokenCache, revocations: self.environment.revocations, now: now) {
        case .forward(let request):
            exchange.tenant = request
            exchange.contextTime = now
            exchange.logger[metadataKey: "tenant"] = .stringConvertible(request.policy.path)
            if let quotas = self.environment.quotas {
                self.admit(exchange, request: request, quotas: quotas)
            } else {
                self.continueToUpstream(exchange)
            }
        case .preflight(let headers):
            // 204 carries no body and, per RFC 9110 §8.6, no Content-Length either.
            self.answerLocally(exchange, status: .noContent, headers: headers, body: nil)
        case .refuse(let refusal):
            self.refuse(exchange, refusal)
        }
    }

    /// `GET /v1/branding`: with a token, the caller's own tenant's branding; without, the
    /// portal's, by `Host`.
    private func answerBrandingRequest(_ exchange: Exchange, path: RequestPath, tenants: TenantSnapshot) {
        let head = exchange.clientHead
        let configuration = exchange.configuration
        guard head.headers.contains(name: "authorization"), let authentication = configuration.authentication else {
            self.answerBranding(exchange, tenants: tenants)
            return
        }
        let access = TenantAccess(configuration: configuration, tenants: tenants, authentication: authentication)
        switch access.authenticate(
            head: head, path: path, cache: &self.environment.tokenCache, revocations: self.environment.revocations, now: self.environment.wallClock.nowSeconds
        ) {
        case .success(let (policy, _)):
            let response = BrandingEndpoint.response(for: policy.branding, request: head)
            self.answerLocally(exchange, status: response.status, headers: response.headers, body: response.body)
        case .failure(let refusal):
            self.refuse(exchange, refusal)
        }
    }

    private func refuse(_ exchange: Exchange, _ refusal: TenantAccess.Refusal) {
        exchange.logger.notice(
            "request refused", metadata: ["problem": "\(refusal.problem)", "phase": "\(refusal.problem.phase.rawValue)", "reason": "\(refusal.reason)"]
        )
        self.fail(exchange, with: refusal.problem, headers: refusal.headers, extensions: refusal.extensions)
    }

    /// Admit: every level of the tenant's path is checked and charged in one round trip; a
    /// refusal charges nothing. The loop's `QuotaGate` decides (from memory, through the store,
    /// or by the tier's fail mode while the store is away); the handler only applies its answers.
    private func admit(_ exchange: Exchange, request: TenantAccess.TenantRequest, quotas: QuotaAdmission) {
        let now = self.environment.wallClock.nowMicroseconds
        let policy = request.policy
        let cost = request.route.cost
        let loop = self.environment.pool.eventLoop
        let failMode = QuotaFailMode(settings: exchange.settings, tier: request.cell.kind)
        let answer = self.environment.quotaGate.admit(
            levels: policy.limits, oem: policy.path.oem, customer: policy.id, cost: cost, now: now,
            store: quotas.storeState(on: loop), failMode: failMode
        ) {
            // The admission script also meters the customer's usage: one round trip for both.
            try quotas.plan(levels: policy.limits, oem: policy.path.oem, cost: cost, now: now, meter: policy.id)
        }
        self.applyQuotaAnswer(answer, to: exchange, quotas: quotas, failMode: failMode)
    }

    private func applyQuotaAnswer(_ answer: QuotaGate.Answer, to exchange: Exchange, quotas: QuotaAdmission, failMode: QuotaFailMode) {
        switch answer {
        case .proceed:
            self.continueToUpstream(exchange)
        case .proceedUnchecked(let warning):
            self.warn(warning, exchange)
            self.continueToUpstream(exchange)
        case .askStore(let plan):
            let loop = self.environment.pool.eventLoop
            quotas.admit(plan, on: loop).assumeIsolated().whenComplete { [weak self, weak exchange] result in
                guard let self, let exchange, self.exchange === exchange else {
                    // The client left while the store answered: give back what was charged.
                    if case .success(.admitted) = result { _ = quotas.release(plan, on: loop) }
                    return
                }
                let answer = self.environment.quotaGate.storeAnswered(result, plan: plan, failMode: failMode)
                self.applyQuotaAnswer(answer, to: exchange, quotas: quotas, failMode: failMode)
            }
        case .admitted(let plan, let headers):
            exchange.admittedQuota = (quotas, plan, self.environment.pool.eventLoop)
            exchange.rateLimitHeaders = headers
            self.continueToUpstream(exchange)
        case .refuse(let refusal):
            // One line whoever decided: a flood refused from memory writes as much as one refused
            // by the store, at info, like each request's own line.
            let decidedBy = switch refusal.source {
            case .memory: "over-limit memory"
            case .store: "quota store"
            case .localLimits: "local limits"
            }
            exchange.logger.info("request refused", metadata: [
                "problem": "\(GatewayProblem.quotaExceeded)", "phase": "\(GatewayProblem.quotaExceeded.phase.rawValue)",
                "reason": "\(refusal.reason)", "decided-by": "\(decidedBy)",
            ])
            self.fail(exchange, with: .quotaExceeded, headers: HTTPHeaders(refusal.headers.map { ($0.name, $0.value) }))
        case .refuseStoreAway(let retryAfterSeconds, let warning):
            self.warn(warning, exchange)
            var headers = HTTPHeaders()
            headers.add(name: "retry-after", value: String(retryAfterSeconds))
            self.fail(exchange, with: .quotaStoreUnavailable, headers: headers)
        }
    }

    /// Once per outage and interval, not once per request: each request's own line still says
    /// how it was answered.
    private func warn(_ warning: QuotaWarning, _ exchange: Exchange) {
        var metadata: Logger.Metadata = ["error": "\(warning.reason)", "request-id": "\(exchange.requestID)"]
        if let mode = warning.failMode { metadata["fail-mode"] = "\(mode)" }
        self.environment.repeatedWarnings.warn(warning.message, metadata: metadata, logger: self.environment.logger, now: self.monotonicNow)
    }

    private func continueToUpstream(_ exchange: Exchange) {
        let head = exchange.clientHead
        if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }), head.version == .http1_1 {
            self.context?.writeAndFlush(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
        }
        self.connectUpstream(exchange)
    }

    /// The public branding of the portal served on the request's `Host`.
    private func answerBranding(_ exchange: Exchange, tenants: TenantSnapshot) {
        guard let branding = BrandingEndpoint.branding(forHost: exchange.clientHead.headers.first(name: "host"), in: tenants) else {
            self.fail(exchange, with: .portalNotFound)
            return
        }
        let response = BrandingEndpoint.response(for: branding, request: exchange.clientHead)
        self.answerLocally(exchange, status: response.status, headers: response.headers, body: response.body)
    }

    /// Sends a response the gateway produced itself (no upstream involved).
    private func answerLocally(_ exchange: Exchange, status: HTTPResponseStatus, headers: HTTPHeaders, body: String?) {
        guard let context = self.context else { return }
        let close = self.mustClose(afterAnswering: exchange, problem: nil)
        var headers = headers
        headers.replaceOrAdd(name: "x-request-id", value: exchange.requestID)
        if close { headers.replaceOrAdd(name: "connection", value: "close") }
        exchange.responseStarted = true
        exchange.responseStatus = status.code
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: exchange.clientHead.version, status: status, headers: headers))), promise: nil)
        if let body, exchange.clientHead.method != .HEAD {
            exchange.responseBytes = body.utf8.count
            context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        exchange.logger.info("request", metadata: exchange.logMetadata(status: status.code))
        self.finishLocalAnswer(exchange, close: close, written: written)
    }

    /// Whether the client connection must close after the gateway answers this exchange itself.
    /// A request whose body has not been read yet leaves the stream mid-message, unless it has
    /// no body at all (then only its end marker is still to come).
    private func mustClose(afterAnswering exchange: Exchange, problem: GatewayProblem?) -> Bool {
        (problem?.closesConnection ?? false) || !exchange.clientHead.isKeepAlive || exchange.asksForUpgrade || self.connection.closesAfterAnswer
            || (!exchange.requestComplete && !exchange.framing.isEmpty)
    }

    private func finishLocalAnswer(_ exchange: Exchange, close: Bool, written: EventLoopFuture<Void>) {
        exchange.responseComplete = true
        exchange.answeredLocally = true
        if close {
            self.end(exchange)
            self.beginClosing()
            written.assumeIsolated().whenComplete { [weak self] _ in self?.closeNow() }
        } else if exchange.requestComplete {
            self.exchangeFinished()
        } else {
            // Only the request's end marker is still to come; `handle(.end)` finishes the exchange.
            self.resumeReadingIfPossible()
        }
    }

    /// Pick cell/endpoint, then lease a connection. Each call is one attempt; a failed attempt
    /// comes back here when `retryOrFail` allows another.
    private func connectUpstream(_ exchange: Exchange) {
        let router = self.environment.router
        if exchange.route == nil {
            guard let cell = exchange.tenant?.cell ?? exchange.settings.cell(named: exchange.settings.defaultCell),
                let route = router.route(for: cell, residency: exchange.tenant?.policy.residency)
            else {
                self.fail(exchange, with: .cellUnavailable)
                return
            }
            exchange.routing = (router, route)
        }
        guard let route = exchange.route else { return }
        let start = router.startAttempt(route, now: self.monotonicNow) { [weak self, weak exchange] start in
            guard let self, let exchange, self.exchange === exchange else { return }
            self.attemptStarted(exchange, start)
        }
        self.attemptStarted(exchange, start)
    }

    private func attemptStarted(_ exchange: Exchange, _ start: CellRouter.AttemptStart) {
        switch start {
        case .go(let endpoint, let connectTimeout, let responseTimeout):
            exchange.endpoint = endpoint
            exchange.attemptTimeouts = (connectTimeout, responseTimeout)
            self.lease(endpoint, connectTimeout: connectTimeout, for: exchange)
        case .wait:
            return
        case .overloaded(let retryAfterSeconds):
            var headers = HTTPHeaders()
            headers.add(name: "retry-after", value: String(retryAfterSeconds))
            self.fail(exchange, with: .cellOverloaded, headers: headers)
        case .noEndpoint:
            // After failed attempts the client learns what the last one ran into.
            if let last = exchange.lastFailure {
                self.fail(exchange, with: last)
            } else {
                var headers = HTTPHeaders()
                headers.add(name: "retry-after", value: "1")
                self.fail(exchange, with: .noHealthyUpstream, headers: headers)
            }
        }
    }

    private func lease(_ endpoint: GatewaySettings.Endpoint, connectTimeout: Duration, for exchange: Exchange) {
        exchange.leaseTicket = self.environment.pool.lease(endpoint, connectTimeout: connectTimeout) { [weak self, weak exchange] result in
            guard let self, let exchange, self.exchange === exchange else {
                // The client is gone: the untouched connection goes straight back.
                if case .success(let connection) = result { self?.environment.pool.release(connection, reusable: true) }
                return
            }
            exchange.leaseTicket = nil
            switch result {
            case .success(let upstream):
                self.upstreamLeased(upstream, for: exchange)
            case .failure(let problem) where problem == .upstreamBusy:
                // The gateway's own connection bound, not the endpoint's fault.
                self.fail(exchange, with: problem)
            case .failure(let problem):
                self.retryOrFail(exchange, with: problem, failure: .connectFailed)
            }
        }
    }

    /// The attempt failed before any response byte: the endpoint is blamed (outlier detection)
    /// and the request goes to another endpoint if that is safe (`RetryPolicy`) and the retry
    /// budget of its cell allows; otherwise the client gets `problem`.
    private func retryOrFail(_ exchange: Exchange, with problem: GatewayProblem, failure: RetryPolicy.Failure) {
        let router = self.environment.router
        let now = self.monotonicNow
        guard let route = exchange.route else {
            self.fail(exchange, with: problem)
            return
        }
        router.report(route, failed: true, now: now)
        router.endAttempt(route, now: now)
        exchange.lastFailure = problem
        let safe = RetryPolicy.mayRetry(
            method: exchange.clientHead.method.rawValue, failure: failure, bodyStreamed: !exchange.framing.isEmpty,
            attempt: route.attempts, maxAttempts: exchange.settings.retries.maxAttempts
        )
        guard safe, !exchange.responseStarted, router.startRetry(route) else {
            self.fail(exchange, with: problem)
            return
        }
        exchange.logger.info("retrying on another endpoint", metadata: ["problem": "\(problem)", "attempt": "\(route.attempts + 1)"])
        exchange.responseDeadline = nil
        exchange.requestSentUpstream = false
        if failure == .afterConnect {
            // Only a bodiless request is retried after connecting: its end is all there is to resend.
            exchange.bufferedForUpstream = exchange.requestComplete ? [.end(nil)] : []
        }
        self.connectUpstream(exchange)
    }

    /// Elapsed-time readings (cell routing, outlier backoff, warnings) come from the loop's clock.
    private var monotonicNow: UInt64 {
        self.environment.eventLoop.now.uptimeNanoseconds
    }

    private func upstreamLeased(_ upstream: UpstreamConnection, for exchange: Exchange) {
        upstream.delegate = self
        exchange.upstream = upstream
        exchange.upstreamWasReused = upstream.completedExchanges > 0
        upstream.write(.head(exchange.upstreamHead(servedBy: exchange.route?.currentCell, signers: &self.environment.contextSigners)))
        let buffered = exchange.bufferedForUpstream
        exchange.bufferedForUpstream.removeAll()
        for part in buffered {
            upstream.write(part)
            if case .end = part { self.requestFullySent(exchange) }
        }
        upstream.flush()
        self.resumeReadingIfPossible()
    }

    // MARK: - Answering

    /// Answers a request that never became an exchange (rejected head, unparseable bytes, slow
    /// client) and closes the connection. Logged with the same request id the client receives.
    private func respondWithoutExchange(
        _ problem: GatewayProblem, requestID: String? = nil, requestHead: HTTPRequestHead? = nil, logMetadata: Logger.Metadata = [:]
    ) {
        let id = requestID ?? self.identifiers.requestID()
        var metadata = logMetadata
        metadata["request-id"] = .string(id)
        metadata["problem"] = "\(problem)"
        metadata["phase"] = "\(problem.phase.rawValue)"
        metadata["status"] = "\(problem.status.code)"
        self.environment.logger.notice("request rejected", metadata: metadata)
        self.writeProblem(problem, requestID: id, version: requestHead?.version ?? .http1_1, close: true)
    }

    /// Answers the exchange with a problem document if the response has not started; otherwise
    /// the only honest signal left in HTTP/1.1 is to cut the connection.
    private func fail(_ exchange: Exchange, with problem: GatewayProblem, headers: HTTPHeaders = HTTPHeaders(), extensions: [(name: String, value: String)] = []) {
        exchange.responseDeadline = nil
        exchange.bodyIdle = nil
        if let ticket = exchange.leaseTicket {
            self.environment.pool.cancel(ticket)
            exchange.leaseTicket = nil
        }
        if let upstream = exchange.upstream {
            exchange.upstream = nil
            self.environment.pool.release(upstream, reusable: false)
        }
        guard !exchange.responseStarted else {
            self.end(exchange)
            exchange.logger.warning("upstream failed mid-response; closing the client connection", metadata: exchange.logMetadata(status: exchange.responseStatus))
            self.closeNow()
            return
        }
        let close = self.mustClose(afterAnswering: exchange, problem: problem)
        exchange.logger.info("request answered by the gateway", metadata: exchange.logMetadata(status: problem.status.code, problem: problem))
        exchange.responseStarted = true
        exchange.responseStatus = problem.status.code
        let written = self.writeProblem(
            problem, requestID: exchange.requestID, version: exchange.clientHead.version, close: close, headers: headers, extensions: extensions
        )
        self.finishLocalAnswer(exchange, close: close, written: written)
    }

    @discardableResult
    private func writeProblem(
        _ problem: GatewayProblem, requestID: String, version: HTTPVersion, close: Bool, headers extra: HTTPHeaders = HTTPHeaders(),
        extensions: [(name: String, value: String)] = []
    ) -> EventLoopFuture<Void> {
        guard let context = self.context else { return self.environment.pool.eventLoop.makeSucceededVoidFuture() }
        let body = ProblemDocument(problem, requestID: requestID, extensions: extensions).json
        var headers = extra
        headers.add(name: "content-type", value: "application/problem+json")
        headers.add(name: "content-length", value: String(body.utf8.count))
        headers.add(name: "x-request-id", value: requestID)
        headers.add(name: "cache-control", value: "no-store")
        if problem == .upstreamBusy {
            headers.add(name: "retry-after", value: "1")
        }
        if close { headers.add(name: "connection", value: "close") }
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: problem.status, headers: headers))), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if close, self.exchange == nil {
            self.beginClosing()
            written.assumeIsolated().whenComplete { [weak self] _ in self?.closeNow() }
        }
        return written
    }

    /// The exchange is over, whatever its outcome: it gives back its cell slots and in-flight
    /// quota here, once, and is no longer the connection's.
    private func end(_ exchange: Exchange) {
        if self.exchange === exchange { self.exchange = nil }
        exchange.end(now: self.monotonicNow)
    }

    private func closeNow() {
        self.beginClosing()
        self.context?.close(promise: nil)
    }

    /// Nothing more is read or answered; the close itself follows once the last answer is out.
    private func beginClosing() {
        self.connection.startClosing()
        self.cancelWaitTimer()
        self.deadlineTimer?.task.cancel()
        self.deadlineTimer = nil
    }

    // MARK: - Between requests

    /// The exchange is over and the connection stays open: serve any pipelined request, or wait.
    private func exchangeFinished() {
        if let exchange = self.exchange { self.end(exchange) }
        while self.exchange == nil || !(self.exchange!.requestComplete), let part = self.connection.nextPipelinedPart() {
            self.handle(part)
            if self.connection.closing { return }
        }
        switch self.connection.afterExchange(hasExchange: self.exchange != nil) {
        case .continueExchange:
            break
        case .answerDeferredError(let problem, let error):
            self.respondWithoutExchange(problem, logMetadata: ["parser-error": "\(error)"])
            return
        case .close:
            self.closeNow()
            return
        case .awaitRequest:
            self.awaitRequest(first: false)
        }
        self.resumeReadingIfPossible()
    }

    /// Arms the timers for the gap before the next request head: keep-alive idle until a byte
    /// arrives, then header-read. A new connection goes straight to header-read.
    private func awaitRequest(first: Bool) {
        guard let wait = self.connection.awaitRequest(first: first) else { return }
        self.armWaitTimer(wait)
        if wait == .idle {
            self.startDetector.armed = true
        }
    }

    private func armWaitTimer(_ wait: ClientConnectionStateMachine.Wait) {
        let timeouts = self.settings.timeouts
        let duration = wait == .idle ? timeouts.keepAliveIdle : timeouts.headerRead
        let deadline = self.environment.eventLoop.now + .milliseconds(duration.milliseconds)
        self.waitDeadline = deadline
        self.checkDeadlines(by: deadline)
    }

    private func cancelWaitTimer() {
        self.connection.stopWaiting()
        self.waitDeadline = nil
    }

    // MARK: - Deadlines

    /// Makes sure the connection's timer fires by `deadline`: an earlier firing is kept (it will
    /// look again), a later one is moved.
    private func checkDeadlines(by deadline: NIODeadline) {
        if let timer = self.deadlineTimer, timer.at <= deadline { return }
        self.deadlineTimer?.task.cancel()
        self.deadlineTimer = nil
        guard !self.connection.closing, let loop = self.context?.eventLoop else { return }
        let task = loop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] () -> Void in self?.deadlinesReached() }
        self.deadlineTimer = (task, deadline)
    }

    /// The connection's timer fired: whatever ran out is answered; then the timer is set for the
    /// next deadline, and at the latest for the shortest wait between requests from now, so that
    /// the next request's deadlines are never before it and need no new timer.
    private func deadlinesReached() {
        self.deadlineTimer = nil
        guard !self.connection.closing else { return }
        let now = self.environment.eventLoop.now
        if self.exchange == nil, let deadline = self.waitDeadline, now >= deadline {
            switch self.connection.waitTimerFired(hasExchange: false) {
            case .answer(let problem):
                let timeout = self.settings.timeouts.headerRead.milliseconds
                self.respondWithoutExchange(problem, logMetadata: ["timeout-ms": "\(timeout)"])
                return
            case .close:
                self.closeNow()
                return
            case .ignore:
                break
            }
        }
        if let exchange = self.exchange {
            if let deadline = exchange.responseDeadline, now >= deadline, !exchange.responseStarted {
                exchange.responseDeadline = nil
                self.responseTimedOut(exchange)
            } else if let deadline = exchange.bodyDeadline, now >= deadline {
                let idle = exchange.bodyIdle?.nanoseconds ?? 0
                exchange.logger.notice("request body stalled", metadata: ["timeout-ms": "\(idle / 1_000_000)", "bytes-in": "\(exchange.requestBodyBytes)"])
                self.fail(exchange, with: .requestBodyTimeout)
            }
        }
        guard !self.connection.closing else { return }
        let timeouts = self.settings.timeouts
        var next = now + .milliseconds(min(timeouts.headerRead, timeouts.keepAliveIdle).milliseconds)
        if self.exchange == nil, let deadline = self.waitDeadline { next = min(next, deadline) }
        if let deadline = self.exchange?.responseDeadline { next = min(next, deadline) }
        if let deadline = self.exchange?.bodyDeadline { next = min(next, deadline) }
        self.checkDeadlines(by: next)
    }
}

extension ClientConnectionHandler: RequestStartObserver {
    func firstByteArrived() {
        guard let next = self.connection.firstByteArrived() else { return }
        self.armWaitTimer(next)
    }
}

// MARK: - Relaying the upstream's response

extension ClientConnectionHandler: UpstreamExchangeDelegate {
    var upstreamShouldPauseReading: Bool {
        !(self.context?.channel.isWritable ?? false)
    }

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard let exchange = self.exchange, let context = self.context else { return }
        switch part {
        case .head(let head):
            exchange.responseDeadline = nil
            if let route = exchange.route {
                self.environment.router.report(route, failed: head.status.code >= 500, now: self.monotonicNow)
            }
            exchange.responseStarted = true
            exchange.responseStatus = head.status.code
            exchange.upstreamKeepAlive = head.isKeepAlive
            let keepClient = exchange.clientHead.isKeepAlive && !exchange.asksForUpgrade && exchange.requestComplete
                && !self.connection.closesAfterAnswer
            exchange.closeClientAfterResponse = !keepClient
            var clientHead = ForwardedHeaders.clientResponseHead(
                from: head, requestID: exchange.requestID, version: exchange.clientHead.version, close: !keepClient
            )
            for (name, value) in exchange.rateLimitHeaders { clientHead.headers.replaceOrAdd(name: name, value: value) }
            if let origin = exchange.tenant?.corsOrigin {
                // The one origin this tenant allows, never `*`.
                clientHead.headers.replaceOrAdd(name: "access-control-allow-origin", value: origin)
                clientHead.headers.add(name: "vary", value: "Origin")
            }
            context.write(self.wrapOutboundOut(.head(clientHead)), promise: nil)
        case .body(let buffer):
            exchange.responseBytes += buffer.readableBytes
            context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end:
            exchange.responseComplete = true
            let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
            exchange.logger.info("request", metadata: exchange.logMetadata(status: exchange.responseStatus))
            if let upstream = exchange.upstream {
                exchange.upstream = nil
                let reusable = exchange.upstreamKeepAlive && exchange.requestSentUpstream
                self.environment.pool.release(upstream, reusable: reusable)
            }
            if let route = exchange.route { self.environment.router.endAttempt(route, now: self.monotonicNow) }
            if exchange.closeClientAfterResponse || !exchange.requestComplete {
                self.end(exchange)
                self.beginClosing()
                written.assumeIsolated().whenComplete { [weak self] _ in self?.closeNow() }
            } else {
                self.exchangeFinished()
            }
        }
    }

    func upstreamReadComplete() {
        self.context?.flush()
    }

    func upstreamWritabilityChanged() {
        self.resumeReadingIfPossible()
    }

    func upstreamClosed(_ connection: UpstreamConnection, error: (any Error)?) {
        guard let exchange = self.exchange, exchange.upstream === connection else { return }
        exchange.upstream = nil
        self.environment.pool.release(connection, reusable: false)
        if !exchange.responseStarted, exchange.replayable, exchange.upstreamWasReused, exchange.staleRetries < 2 {
            // A pooled connection the upstream had already closed: nothing was processed, and the
            // request has no body, so it is sent again on a fresh connection to the same
            // endpoint. Not the endpoint's failure, and not a retry the budget counts.
            exchange.staleRetries += 1
            exchange.logger.debug("resending on a fresh upstream connection after a stale keep-alive connection closed")
            exchange.responseDeadline = nil
            exchange.requestSentUpstream = false
            exchange.bufferedForUpstream = exchange.requestComplete ? [.end(nil)] : []
            if let endpoint = exchange.endpoint, let timeouts = exchange.attemptTimeouts {
                self.lease(endpoint, connectTimeout: timeouts.connect, for: exchange)
                return
            }
        }
        guard !exchange.responseStarted else {
            self.fail(exchange, with: .upstreamFailed)
            return
        }
        self.retryOrFail(exchange, with: .upstreamFailed, failure: .afterConnect)
    }
}

/// The state of one request/response exchange on a client connection.
final class Exchange {
    let requestID: String
    let clientHead: HTTPRequestHead
    /// The normalized target: what was matched and authorized is what is forwarded.
    let path: RequestPath
    let trace: TraceDecision
    let facts: ForwardedHeaders.ClientFacts
    let configuration: GatewayConfiguration
    /// Set once the tenant phases admitted the request.
    var tenant: TenantAccess.TenantRequest?
    /// Unix seconds stamped into the tenant context.
    var contextTime: Int64 = 0

    /// The head sent upstream, built on first use — only requests that are forwarded pay for
    /// it; refusals and local answers never do — and again only if a retry lands on a cell of
    /// another kind (the context names the tier serving the request). Client `X-ERP-*` headers
    /// are removed; an admitted tenant's signed context replaces them, and the caller's
    /// credential stays here.
    func upstreamHead(servedBy cell: GatewaySettings.Cell?, signers: inout ContextSigners) -> HTTPRequestHead {
        if let cached = self.cachedUpstreamHead, cached.kind == cell?.kind { return cached.head }
        let head = self.buildUpstreamHead(servedBy: cell ?? self.tenant?.cell, signers: &signers)
        self.cachedUpstreamHead = (cell?.kind, head)
        return head
    }

    private var cachedUpstreamHead: (kind: GatewaySettings.Cell.Kind?, head: HTTPRequestHead)?

    private func buildUpstreamHead(servedBy cell: GatewaySettings.Cell?, signers: inout ContextSigners) -> HTTPRequestHead {
        var forwarded = self.clientHead
        forwarded.uri = self.path.target
        var head = ForwardedHeaders.upstreamRequestHead(
            from: forwarded, facts: self.facts, requestID: self.requestID, trace: self.trace, framing: self.framing
        )
        UpstreamContext.removeClientCopies(from: &head.headers)
        if let tenant = self.tenant, let catalog = self.configuration.tenants?.catalog, let key = self.settings.upstreamContext?.active {
            UpstreamContext(
                policy: tenant.policy, catalog: catalog, cell: cell, method: self.clientHead.method.rawValue,
                target: self.path.target, requestID: self.requestID, time: self.contextTime
            ).apply(to: &head.headers, signer: signers.signer(for: key))
            head.headers.remove(name: "authorization")
        }
        return head
    }
    var logger: Logger
    let started: NIODeadline
    /// The connection's loop, whose `now` measures the exchange's duration.
    let eventLoop: any EventLoop
    let framing: RequestHeadValidation.BodyFraming
    /// Idempotent and without a body: may be sent again if a stale connection fails before any
    /// response byte.
    var replayable: Bool
    var endpoint: GatewaySettings.Endpoint?
    /// Fresh connections tried after pooled ones turned out closed (not counted as attempts).
    var staleRetries = 0
    /// The cells and attempts of this request, and the loop's router that tracks them.
    var routing: (router: CellRouter, route: CellRoute)?
    var route: CellRoute? { self.routing?.route }
    /// The connect and response timeouts of the cell serving the current attempt.
    var attemptTimeouts: (connect: Duration, response: Duration)?
    /// What the last failed attempt ran into, answered if no attempt is left.
    var lastFailure: GatewayProblem?
    var leaseTicket: UpstreamPool.LeaseTicket?
    var upstream: UpstreamConnection?
    var upstreamWasReused = false
    var bufferedForUpstream: [HTTPClientRequestPart] = []
    var requestBodyBytes = 0
    var requestComplete = false
    var requestSentUpstream = false
    /// When the response head must have arrived; nil while no request is with an upstream.
    var responseDeadline: NIODeadline?
    /// How long the request body may pause (`timeouts.requestBodyIdle`); nil without a body.
    var bodyIdle: TimeAmount?
    /// When the head or the last piece of the body was read.
    lazy var lastBodyRead = self.started
    /// When the request body runs out of time, while it is still arriving.
    var bodyDeadline: NIODeadline? {
        guard let idle = self.bodyIdle, !self.requestComplete else { return nil }
        return self.lastBodyRead + idle
    }
    var responseStarted = false
    var responseComplete = false
    var responseStatus: UInt?
    var responseBytes = 0
    var upstreamKeepAlive = false
    var closeClientAfterResponse = false
    /// The gateway answered this request itself; the rest of the request is read and dropped.
    var answeredLocally = false
    /// What admission charged, to give back the in-flight slot when the exchange ends.
    var admittedQuota: (admission: QuotaAdmission, plan: QuotaPlan, loop: any EventLoop)?
    /// RateLimit headers for the client's response.
    var rateLimitHeaders: [(name: String, value: String)] = []

    /// Set by `end`: what the exchange held has been given back.
    private(set) var ended = false

    /// Gives back what the exchange holds — its cell slots and, once admitted, its in-flight
    /// quota — exactly once, whatever its outcome. Called by the connection at every end.
    func end(now: UInt64) {
        guard !self.ended else { return }
        self.ended = true
        if let (router, route) = self.routing { router.finish(route, now: now) }
        if let (admission, plan, loop) = self.admittedQuota, !plan.inflightKeys.isEmpty {
            _ = admission.release(plan, on: loop)
        }
    }

    deinit {
        assert(self.ended, "an exchange was dropped without being ended: its cell slots and quota would stay taken")
    }

    var settings: GatewaySettings { self.configuration.settings }

    /// The request asks to switch protocols (`Upgrade`). The HTTP decoder reads nothing after
    /// such a request — the bytes would belong to the new protocol — so whatever is pipelined
    /// behind it would never be answered: the connection closes after this exchange instead.
    var asksForUpgrade: Bool { self.clientHead.headers.contains(name: "upgrade") }

    init(
        requestID: String, clientHead: HTTPRequestHead, path: RequestPath, trace: TraceDecision, facts: ForwardedHeaders.ClientFacts,
        configuration: GatewayConfiguration, logger: Logger, started: NIODeadline, eventLoop: any EventLoop,
        framing: RequestHeadValidation.BodyFraming, replayable: Bool
    ) {
        self.requestID = requestID
        self.clientHead = clientHead
        self.path = path
        self.trace = trace
        self.facts = facts
        self.configuration = configuration
        self.logger = logger
        self.started = started
        self.eventLoop = eventLoop
        self.framing = framing
        self.replayable = replayable
    }

    func logMetadata(status: UInt?, problem: GatewayProblem? = nil) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "method": "\(self.clientHead.method.rawValue)",
            "path": "\(self.path.path)",
            "duration-ms": "\((self.eventLoop.now - self.started).nanoseconds / 1_000_000)",
            "bytes-in": "\(self.requestBodyBytes)",
            "bytes-out": "\(self.responseBytes)",
        ]
        // What was authorized and forwarded is `path`; the client's spelling, when it differs.
        let rawPath = self.clientHead.uri.utf8.split(separator: UInt8(ascii: "?"), maxSplits: 1, omittingEmptySubsequences: false).first
        if let rawPath, !rawPath.elementsEqual(self.path.path.utf8) { metadata["raw-path"] = "\(Substring(rawPath))" }
        if let status { metadata["status"] = "\(status)" }
        if let problem {
            metadata["problem"] = "\(problem)"
            metadata["phase"] = "\(problem.phase.rawValue)"
        }
        if let endpoint = self.endpoint { metadata["upstream"] = "\(endpoint)" }
        if let cell = self.route?.currentCell ?? self.route?.chain.first?.cell { metadata["cell"] = "\(cell.id)" }
        if let attempts = self.route?.attempts, attempts > 1 { metadata["attempts"] = "\(attempts)" }
        return metadata
    }
}
