import Cells
import GatewayConfig
import Logging
import NIOCore
import NIOHTTP1
import Quotas

/// Serves one client connection: one exchange (request → upstream → response) at a time, in
/// order, with pipelined requests held until the one before them has been answered.
///
/// It decides nothing itself. `ClientConnectionStateMachine` decides reading, pipelining,
/// keep-alive and closing; `RequestPhases` decide what becomes of a request; each exchange's
/// `ExchangeStateMachine` decides forwarding, retries, timeouts and the response. This handler
/// carries their answers out: reads, writes, the lease, the timer, the log lines. This file
/// holds the client side (reading, the phases, pipelining, keep-alive, deadlines, closing);
/// `+Upstream` the upstream attempts and the response relay; `+Answers` what the gateway
/// answers itself.
///
/// Backpressure both ways comes from holding `read()`: the client is not read while the upstream
/// cannot take more request bytes (or is not connected yet), and the upstream is not read while
/// the client cannot take more response bytes. Memory per connection stays bounded by one read.
///
/// The same handler serves one HTTP/2 stream (`Carrier.http2Stream`), behind NIOHTTP2's
/// HTTP/1-style codec: the stream's one request runs the same phases, and backpressure is the
/// same `read()` and writability, which on a stream follow its flow-control windows.
final class ClientConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// What this handler serves.
    enum Carrier {
        /// An HTTP/1.1 connection: its requests one after another; its decoder, in front of this
        /// handler, tells when the next one starts.
        case http1Connection(ClientRequestDecoder)
        /// One HTTP/2 stream of a connection: one request.
        case http2Stream(HTTP2Connection)
    }

    let environment: ProxyEnvironment
    let phases: RequestPhases
    private let requestDecoder: ClientRequestDecoder?
    /// The HTTP/2 connection of the stream this handler serves.
    private let http2Connection: HTTP2Connection?
    /// An HTTP/2 stream: one request, and closing means resetting the stream, not a connection.
    var servesOneStream: Bool { self.http2Connection != nil }
    /// An HTTP/2 request head without framing, held until its stream shows whether a body
    /// follows (`handle(_:)`).
    private var headAwaitingBody: RelayedRequestHead?
    /// An HTTP/2 stream closing after an answer whose last frames may wait for the client's
    /// window: reset after `timeouts.responseBodyIdle` at the latest.
    private var streamCloseBound: Scheduled<Void>?
    private(set) var context: ChannelHandlerContext?
    /// An HTTP/1.1 connection's responses, written as bytes (`send`); unused on an HTTP/2
    /// stream, whose parts NIOHTTP2's codec frames.
    private var responseWriter = ClientResponseWriter()
    /// A head was refused by the writer: nothing more is written; the connection is closing.
    private var responseRefused = false
    /// An HTTP/1.1 response head not handed to the channel yet. A small body part that follows
    /// it in the same read is written behind it, and the two leave as one write: one pass down
    /// the pipeline and one buffer for the socket where there were two. Handed on before
    /// anything else is written and at every flush (`flushResponse`).
    private var heldHead: ByteBuffer?
    /// The largest body part written behind its head (a copy); a larger one is written as it
    /// came.
    static let bodyBehindHeadLimit = 2_048
    var identifiers: IdentifierGenerator
    private(set) var exchange: Exchange?
    private(set) var connection: ClientConnectionStateMachine
    /// The connection's one timer. Every timeout — between requests, of a request body, of an
    /// upstream response — is a deadline it checks when it fires; it is rescheduled only when a
    /// deadline comes before its next firing, so a keep-alive request schedules none.
    private var deadlineTimer: (task: Scheduled<Void>, at: NIODeadline)?
    /// When the wait between requests (`connection.wait`) runs out.
    private var waitDeadline: NIODeadline?
    /// When a pause after quota refusals in a row ends.
    private var pauseDeadline: NIODeadline?
    /// The peer's address as text, formatted once per connection rather than per request.
    private lazy var clientAddress: String? = self.context?.channel.remoteAddress?.ipAddress
    /// Plain or TLS; over TLS, when the connection was accepted.
    private let transport: ClientTransport

    /// - Parameters:
    ///   - transport: how the client reached the gateway (`X-Forwarded-Proto`), and over TLS
    ///     when the connection was accepted.
    ///   - identifiers: request ids and trace ids; a stream's comes seeded from its
    ///     connection's, which spares a system random number per stream.
    init(environment: ProxyEnvironment, carrier: Carrier, transport: ClientTransport = .plain, identifiers: IdentifierGenerator = IdentifierGenerator()) {
        self.environment = environment
        self.phases = RequestPhases(environment: environment, scheme: transport.scheme)
        self.transport = transport
        self.identifiers = identifiers
        switch carrier {
        case .http1Connection(let decoder):
            self.requestDecoder = decoder
            self.http2Connection = nil
        case .http2Stream(let connection):
            self.requestDecoder = nil
            self.http2Connection = connection
        }
        self.connection = ClientConnectionStateMachine(servesOneRequest: self.http2Connection != nil)
        self.requestDecoder?.observer = self
        self.requestDecoder?.consumer = self
    }

    /// The timeouts in force now, in milliseconds: for connection-level timers. An exchange uses
    /// those of its own configuration.
    private var timeouts: TimeoutMilliseconds { self.environment.configuration.timeoutMilliseconds }
    /// Read once per event this handler handles (`channelRead`, `upstreamReceived`).
    private var clock = EventClock()
    var now: NIODeadline { self.clock.now { self.environment.eventLoop.now } }
    /// An event of the upstream connection starts (ends) being handled here: `now` reads once.
    func enterEvent() { self.clock.enter() }
    func leaveEvent() { self.clock.leave() }
    /// Elapsed-time readings (cell routing, outlier backoff) come from the loop's clock.
    var monotonicNow: UInt64 { self.now.uptimeNanoseconds }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let until = self.http2Connection?.pausedUntil, until > self.now {
            // Opened while its connection pauses after quota refusals: the request waits as one
            // read on a paused HTTP/1.1 connection would.
            self.connection.pauseStarted()
            self.pauseDeadline = until
            self.checkDeadlines(by: until)
        }
        if context.channel.isActive { self.awaitRequest(first: true) }
    }

    /// The pipeline removes every handler when the channel closes. The context holds this
    /// handler and this handler held the context: dropping it here breaks the cycle, which
    /// otherwise kept about 0.9 KiB alive for every connection ever accepted.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.beginClosing()
        self.requestDecoder?.armed = false
        // The handler leaves (a WebSocket's tunnel takes over): what the decoder still reads
        // goes down the pipeline, as it did before the handler was added.
        self.requestDecoder?.consumer = nil
        self.streamCloseBound?.cancel()
        self.streamCloseBound = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.awaitRequest(first: true)
        context.fireChannelActive()
    }

    /// A part from NIOHTTP2's codec (an HTTP/2 stream); an HTTP/1.1 connection's decoder
    /// hands its parts over directly (`requestPartDecoded`).
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head): self.requestPartDecoded(.head(RelayedRequestHead(head)))
        case .body(let body): self.requestPartDecoded(.body(body))
        case .end(let trailers): self.requestPartDecoded(.end(trailers))
        }
    }

    func requestPartDecoded(_ part: ClientRequestPart) {
        self.enterEvent()
        defer { self.leaveEvent() }
        if self.connection.partArrived(part, stage: self.stage) == .handle { self.handle(part) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let head = self.headAwaitingBody {
            // HEADERS without END_STREAM and no DATA yet: a body follows.
            self.headAwaitingBody = nil
            self.startExchange(Self.framedAsChunked(head))
        }
        self.exchange?.upstream?.flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        if let exchange = self.exchange, let deadline = exchange.machine.clientWritabilityChanged(writable: writable, now: self.now) {
            self.checkDeadlines(by: deadline)
        }
        if writable { self.exchange?.upstream?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.beginClosing()
        self.requestDecoder?.armed = false
        if let exchange = self.exchange {
            if exchange.machine.responseComplete {
                // Closed as the answer's last bytes went out (an HTTP/2 stream closes when both
                // sides have ended), or while the rest of an answered request was read: the
                // answer is what the exchange's record tells.
                self.end(exchange)
                self.dropUpstream(of: exchange)
            } else {
                self.clientGone(exchange, reason: self.servesOneStream ? "client reset the stream before the response completed" : "client closed the connection before the response completed")
            }
        }
        context.fireChannelInactive()
    }

    /// The client will not take the answer: the exchange ends, and the upstream connection,
    /// mid-message, is dropped.
    func clientGone(_ exchange: Exchange, reason: Logger.Message, level: Logger.Level = .info, metadata: Logger.Metadata = [:]) {
        exchange.clientLeft = true
        self.end(exchange)
        self.dropUpstream(of: exchange)
        exchange.log(level, reason, metadata: exchange.logMetadata(now: self.now, status: exchange.machine.responseStatus).merging(metadata) { $1 })
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.http2Connection != nil {
            // A stream whose very first frame fails to convert (a CONNECT: no `:path`) errors
            // within the read that opened it, before NIOHTTP2 has told its connection manager
            // the stream exists; closing it there has the manager count a stream that never
            // closes (a debug build stops on NIOHTTP2's assertion). Answered on the next tick.
            context.eventLoop.assumeIsolated().execute {
                guard let context = self.context else { return }  // the stream went meanwhile
                self.handle(error, context: context)
            }
            return
        }
        self.handle(error, context: context)
    }

    private func handle(_ error: any Error, context: ChannelHandlerContext) {
        switch self.connection.errorCaught(error, stage: self.stage, channelActive: context.channel.isActive) {
        case .close:
            self.closeNow()  // I/O errors (reset by peer and the like), or the connection is going anyway
        case .deferred:
            return  // the bad bytes follow a complete request: that request is answered first
        case .failExchange(let problem):
            guard let exchange = self.exchange else { return }
            exchange.log(.notice, "request body rejected", metadata: ["problem": "\(problem)", "parser-error": "\(error)"])
            self.fail(exchange, with: problem)
        case .answerAndClose(let problem):
            self.respondWithoutExchange(problem, logMetadata: ["parser-error": "\(error)"])
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            if self.connection.quiesce(stage: self.stage) { self.closeNow() }
        } else if let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed {
            if self.connection.inputClosedByClient(stage: self.stage) { self.closeNow() }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func read(context: ChannelHandlerContext) {
        if self.connection.readRequested(self.stage) { context.read() }
    }

    // MARK: - The request

    /// Where the exchange in progress stands, for the connection's decisions.
    private var stage: ClientConnectionStateMachine.ExchangeStage {
        guard let exchange = self.exchange else { return .none }
        if exchange.machine.requestComplete { return .answering }
        return .receiving(canTakeMore: exchange.machine.canTakeRequestBytes(upstreamWritable: exchange.upstream?.isWritable == true))
    }

    func resumeReadingIfPossible() {
        guard let context = self.context, self.connection.resumeReading(self.stage) else { return }
        context.read()
    }

    private func handle(_ part: ClientRequestPart) {
        switch part {
        case .head(let head):
            if self.servesOneStream, !head.fields.contains(name: "content-length"), !head.fields.contains(name: "transfer-encoding") {
                // NIOHTTP2's codec frames a body only for methods that usually carry one; a GET,
                // HEAD or DELETE head comes without framing whether or not DATA follows. Sent on
                // as it is, a body would reach the HTTP/1.1 upstream unframed — where it would be
                // read as the next request. The codec hands the stream's END_STREAM over at once
                // (`.end` in the same read), so the next part, or the end of this read, tells.
                self.headAwaitingBody = head
                return
            }
            self.startExchange(head)
        case .body(let buffer):
            if let head = self.headAwaitingBody {
                self.headAwaitingBody = nil
                self.startExchange(Self.framedAsChunked(head))
            }
            guard let exchange = self.exchange else { return }
            switch exchange.machine.bodyReceived(buffer, now: self.now) {
            case .forward: exchange.upstream?.write(.body(.byteBuffer(buffer)))
            case .hold, .drop: break
            case .fail(let problem): self.fail(exchange, with: problem)
            }
        case .end:
            if let head = self.headAwaitingBody {
                self.headAwaitingBody = nil
                self.startExchange(head)
            }
            guard let exchange = self.exchange else { return }
            switch exchange.machine.requestEnded(now: self.now) {
            case .finishExchange:
                self.exchangeFinished()
            case .forwardEnd(let responseDeadline):
                exchange.upstream?.write(.end(nil))
                exchange.upstream?.flush()
                if let responseDeadline { self.checkDeadlines(by: responseDeadline) }
            case .hold:
                break
            }
        }
    }

    /// An HTTP/2 head whose stream carries a body without a declared length: framed as the
    /// codec frames one for POST (validation accepts `chunked` on HTTP/2 only as this mark).
    private static func framedAsChunked(_ head: RelayedRequestHead) -> RelayedRequestHead {
        var head = head
        head.fields.add(name: "transfer-encoding", value: "chunked")
        return head
    }

    // MARK: - The phases

    private func startExchange(_ head: RelayedRequestHead) {
        self.cancelWaitTimer()
        self.requestDecoder?.armed = false
        let request: GatewayRequest
        switch self.phases.decode(head, clientAddress: self.clientAddress, identifiers: &self.identifiers) {
        case .proceed(let decoded):
            request = decoded
        case .refuse(let refusal, let requestID):
            self.respondWithoutExchange(
                refusal.problem, requestID: requestID, method: head.method, version: head.version, logMetadata: ["reason": "\(refusal.reason)"],
                crossOrigin: CrossOriginAnswer(registered: head.fields.first(name: "origin"), configuration: self.environment.configuration)
            )
            return
        }
        let exchange = Exchange(request: request, logger: self.environment.logger)
        self.exchange = exchange
        if let deadline = exchange.machine.bodyDeadline { self.checkDeadlines(by: deadline) }

        switch self.phases.authorize(request) {
        case .proceed(let tenant):
            exchange.tenantPath = tenant.grant.policy.path
            exchange.support = tenant.grant.support
            exchange.routePrefix = tenant.grant.route.pathPrefix
            exchange.authorizedAt = self.now
            self.admit(exchange, self.phases.admit(tenant), tenant: tenant)
        case .proceedWithoutTenant(let admitted):
            exchange.authorizedAt = self.now
            self.forward(exchange, admitted)
        case .respond(let response):
            self.answerLocally(exchange, response)
        case .refuse(let refusal):
            self.refuse(exchange, refusal)
        }
    }

    private func admit(_ exchange: Exchange, _ admission: RequestPhases.Admitted, tenant: TenantRequest) {
        switch admission {
        case .proceed(let admitted):
            self.forward(exchange, admitted)
        case .refuse(let refusal):
            self.refuse(exchange, refusal)
        case .awaitStore(let plan, let quotas, let failMode):
            let loop = self.environment.eventLoop
            // Strong captures: weak ones would give every admitted exchange a side table. The
            // store answers (or its client times out) in bounded time.
            quotas.admit(plan, on: loop).assumeIsolated().whenComplete { [self, exchange] result in
                guard self.exchange === exchange else {
                    // The client left while the store answered. The loop's gate still takes the
                    // answer — a lease granted for this request serves the customer's next ones
                    // instead of lapsing unused, a refusal is remembered — and what the request
                    // would have held in flight is given back.
                    if case .admitted(let plan, _) = self.environment.quotaStoreAnswered(result, plan: plan, failMode: failMode) {
                        AdmittedQuota(admission: quotas, plan: plan, loop: loop).release()
                    }
                    return
                }
                self.admit(exchange, self.phases.storeAnswered(result, request: tenant, plan: plan, quotas: quotas, failMode: failMode), tenant: tenant)
            }
        }
    }

    private func refuse(_ exchange: Exchange, _ refusal: Refusal) {
        if let route = refusal.route { exchange.routePrefix = route }
        if let tenant = refusal.tenant { exchange.tenantPath = tenant }
        if let support = refusal.support { exchange.support = support }
        // Built only when the line is written: a flood's refusals are logged at info.
        exchange.log(refusal.level, "request refused", metadata: refusal.logMetadata)
        if refusal.problem == .quotaExceeded {
            // Never under the current limits: as long as the pause goes.
            let retryAfter = refusal.retryAfter ?? ClientConnectionStateMachine.longestPause
            exchange.quotaRetryAfter = retryAfter
            if let pause = self.closingRefusalPause(exchange, retryAfter: retryAfter) {
                // Strong captures: the task runs once, within a second.
                self.environment.eventLoop.assumeIsolated().scheduleTask(in: pause) { [self, exchange] in
                    self.environment.closingRefusals.released()
                    // The client left meanwhile: its exchange ended without an answer.
                    guard self.exchange === exchange else { return }
                    self.fail(exchange, with: refusal.problem, headers: refusal.headers, extensions: refusal.extensions)
                }
                return
            }
        }
        self.fail(exchange, with: refusal.problem, headers: refusal.headers, extensions: refusal.extensions)
    }

    /// How long to hold a quota refusal's answer when the client closes the connection after it
    /// (`ClosingConnectionRefusals`); nil to answer now. An HTTP/2 stream's refusals are paced
    /// by its connection, a draining gateway holds nothing back, and neither is a request whose
    /// body is still coming (it would be buffered while the answer waits).
    private func closingRefusalPause(_ exchange: Exchange, retryAfter: TimeAmount) -> TimeAmount? {
        guard !self.servesOneStream, !exchange.machine.clientKeepsAlive, !exchange.machine.hasBody || exchange.machine.requestComplete,
            !self.connection.quiescing, let customer = exchange.tenantPath?.customer
        else { return nil }
        return self.environment.closingRefusals.refused(customer, retryAfter: retryAfter, now: self.now)
    }

    /// Select cell, then the first upstream attempt.
    private func forward(_ exchange: Exchange, _ admitted: AdmittedRequest) {
        exchange.admit(admitted)
        if !self.environment.closingRefusals.isEmpty, !exchange.machine.clientKeepsAlive, let customer = exchange.tenantPath?.customer {
            self.environment.closingRefusals.admitted(customer)
        }
        exchange.admittedAt = self.now
        exchange.masking = self.phases.responseMasking(admitted)
        let head = admitted.request.head
        if head.version == .http1_1 || head.version.major == 2, ForwardedHeaders.expectsContinue(head.fields) {
            if let context = self.context {
                self.send(.head(HTTPResponseHead(version: head.version, status: .continue)), context: context)
                self.flushResponse(context: context)
            }
        }
        guard let route = self.phases.selectCell(admitted) else {
            self.fail(exchange, with: .cellUnavailable)
            return
        }
        exchange.routed(route, on: self.environment.router)
        exchange.machine.startForwarding()
        self.startAttempt(exchange)
    }

    // MARK: - Ends

    /// The exchange is over, whatever its outcome: it gives back what it holds, once, and is no
    /// longer the connection's.
    func end(_ exchange: Exchange) {
        if self.exchange === exchange { self.exchange = nil }
        guard exchange.end(now: self.monotonicNow) else { return }
        if let shared = self.http2Connection, !exchange.clientLeft,
            let pause = shared.pacing.exchangeEnded(quotaRetryAfter: exchange.quotaRetryAfter)
        {
            // The pause is the connection's: its streams opened from now on wait. Every answer
            // counts, whether its stream then ends or is reset (a refusal of a request whose
            // body was still coming).
            shared.pausedUntil = self.now + pause
        }
        if let observer = self.environment.observer {
            observer.requestEnded(exchange.record(ended: self.now, wallNowMicroseconds: self.environment.wallClock.nowMicroseconds))
        }
    }

    /// The exchange leaves this connection's care without ending: a WebSocket's tunnel took it
    /// over and ends it when the socket closes.
    func handOverExchange() {
        self.exchange = nil
    }

    /// Nothing more is read or answered; the connection closes once `written` is out.
    func closeAfter(_ written: EventLoopFuture<Void>?) {
        self.beginClosing()
        guard let written else { return self.closeNow() }
        written.assumeIsolated().whenComplete { [weak self] _ in self?.closeNow() }
        if self.servesOneStream, let context = self.context {
            // The answer's last frames wait for the client's window; a client that never opens
            // it must not keep the stream. (A connection's bytes wait for TCP, as they always
            // did; a stream is one of many on a connection that stays up meanwhile.)
            let bound = TimeAmount.milliseconds(self.timeouts.responseBodyIdle)
            self.streamCloseBound = context.eventLoop.assumeIsolated().scheduleTask(in: bound) { [weak self] in self?.context?.close(promise: nil) }
        }
    }

    /// Writes one part of a response: on an HTTP/1.1 connection as bytes, on an HTTP/2 stream as
    /// the part NIOHTTP2's codec frames. `method`: that of the request a head answers.
    func send(_ part: HTTPServerResponsePart, answering method: HTTPMethod? = nil, context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        guard !self.servesOneStream else {
            return context.write(self.wrapOutboundOut(part), promise: promise)
        }
        guard !self.responseRefused else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        do {
            switch part {
            case .head(let head):
                self.writeHead(try self.responseWriter.head(head, answering: method, allocator: context.channel.allocator), promise: promise, context: context)
            case .body(let data):
                guard !self.responseWriter.suppressesBody else {
                    promise?.succeed()
                    return
                }
                if promise == nil, !self.responseWriter.isChunked, case .byteBuffer(var bytes) = data,
                    bytes.readableBytes <= Self.bodyBehindHeadLimit, var head = self.heldHead.take()
                {
                    self.responseWriter.append(&bytes, behind: &head)
                    self.heldHead = head
                    return
                }
                self.releaseHeldHead(context: context)
                HTTP1Writing.writeBody(data, chunked: self.responseWriter.isChunked, on: context, promise: promise)
            case .end(let trailers):
                self.releaseHeldHead(context: context)
                if let last = try self.responseWriter.end(trailers, allocator: context.channel.allocator) {
                    context.write(NIOAny(last), promise: promise)
                } else if let promise {
                    // Nothing to write, but the promise completes in order with what went before.
                    context.write(NIOAny(context.channel.allocator.buffer(capacity: 0)), promise: promise)
                }
            }
        } catch {
            self.refuseResponse(error, promise: promise, context: context)
        }
    }

    /// A field or reason phrase HTTP/1.1 cannot carry (a control character, a name that is not
    /// a token). The client cannot be given a response it would misread: nothing more is
    /// written, and the connection closes once this handling is over.
    private func refuseResponse(_ error: ClientResponseWriter.Refused, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext) {
        promise?.fail(error)
        self.environment.logger.error("response not sent: its head is not valid HTTP/1.1; closing the connection", metadata: ["field": "\(error.name)"])
        self.responseRefused = true
        self.beginClosing()
        context.eventLoop.assumeIsolated().execute { context.close(promise: nil) }
    }

    /// A relayed head: written from its fields' bytes on an HTTP/1.1 connection; an HTTP/2
    /// stream's codec takes it as strings.
    func send(_ head: RelayedResponseHead, answering method: HTTPMethod?, context: ChannelHandlerContext) {
        guard !self.servesOneStream else { return self.send(.head(head.nioHead), context: context) }
        guard !self.responseRefused else { return }
        do {
            self.writeHead(try self.responseWriter.head(head, answering: method, allocator: context.channel.allocator), promise: nil, context: context)
        } catch {
            self.refuseResponse(error, promise: nil, context: context)
        }
    }

    /// Hands on a head written by `responseWriter`: held until the next part shows whether its
    /// body can go in the same buffer (`heldHead`), or written at once when its write is
    /// awaited (`promise`).
    private func writeHead(_ head: ByteBuffer, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext) {
        self.releaseHeldHead(context: context)
        guard let promise else {
            self.heldHead = head
            return
        }
        context.write(NIOAny(head), promise: promise)
    }

    /// Hands a held head to the channel.
    private func releaseHeldHead(context: ChannelHandlerContext) {
        guard let head = self.heldHead.take() else { return }
        context.write(NIOAny(head), promise: nil)
    }

    /// Flushes what the client's responses wrote, a held head among it.
    func flushResponse(context: ChannelHandlerContext) {
        self.releaseHeldHead(context: context)
        context.flush()
    }

    func closeNow() {
        self.beginClosing()
        self.context?.close(promise: nil)
    }

    /// Nothing more is read or answered; the close itself follows once the last answer is out.
    func beginClosing() {
        self.connection.startClosing()
        self.cancelWaitTimer()
        self.pauseDeadline = nil
        self.deadlineTimer?.task.cancel()
        self.deadlineTimer = nil
    }

    // MARK: - Between requests

    /// The exchange is over and the connection stays open: serve any pipelined request, or wait.
    func exchangeFinished() {
        let quotaRetryAfter = self.exchange?.quotaRetryAfter
        if let exchange = self.exchange { self.end(exchange) }
        // A stream's answer was counted by its connection's pacing when it ended.
        if self.servesOneStream { return self.serveNextRequest() }
        if let pause = self.connection.exchangeEnded(quotaRetryAfter: quotaRetryAfter) {
            let until = self.now + pause
            self.pauseDeadline = until
            self.checkDeadlines(by: until)
            return
        }
        self.serveNextRequest()
    }

    /// Serves what was pipelined behind the finished exchange, then waits for more.
    private func serveNextRequest() {
        while self.exchange.map({ !$0.machine.requestComplete }) ?? true, let part = self.connection.nextPipelinedPart() {
            self.handle(part)
            // Closing, or a pipelined request was refused and paused the connection in turn.
            if self.connection.closing || self.connection.pausedAfterRefusals { return }
        }
        if let head = self.headAwaitingBody {
            // A stream's head held through a pause, its body still to come.
            self.headAwaitingBody = nil
            self.startExchange(Self.framedAsChunked(head))
        }
        switch self.connection.afterExchange(hasExchange: self.exchange != nil) {
        case .continueExchange:
            break
        case .answerDeferredError(let problem, let error):
            return self.respondWithoutExchange(problem, logMetadata: ["parser-error": "\(error)"])
        case .close:
            return self.closeNow()
        case .awaitRequest:
            self.awaitRequest(first: false)
        }
        self.resumeReadingIfPossible()
    }

    /// Arms the timers for the gap before the next request head: keep-alive idle until a byte
    /// arrives, then header-read. A new connection goes straight to header-read.
    private func awaitRequest(first: Bool) {
        guard let wait = self.connection.awaitRequest(first: first) else { return }
        // The first request's header-read time runs from the accept: over TLS the handshake
        // has spent part of it already. (A stream's connection was accepted long before it.)
        self.armWaitTimer(wait, from: first && self.requestDecoder != nil ? self.transport.acceptedAt : nil)
        if wait == .idle { self.requestDecoder?.armed = true }
    }

    private func armWaitTimer(_ wait: ClientConnectionStateMachine.Wait, from start: NIODeadline? = nil) {
        let timeouts = self.timeouts
        let timeout = switch wait {
        case .idle: timeouts.keepAliveIdle
        case .streamEnd: timeouts.responseBodyIdle
        case .headerRead, .none: timeouts.headerRead
        }
        let deadline = (start ?? self.now) + .milliseconds(timeout)
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
    func checkDeadlines(by deadline: NIODeadline) {
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
        let now = self.now
        if let until = self.pauseDeadline, now >= until {
            self.pauseDeadline = nil
            self.connection.pauseEnded()
            self.serveNextRequest()
            guard !self.connection.closing else { return }
        }
        if self.exchange == nil, let deadline = self.waitDeadline, now >= deadline {
            switch self.connection.waitTimerFired(hasExchange: false) {
            case .answer(let problem):
                return self.respondWithoutExchange(problem, logMetadata: ["timeout-ms": "\(self.timeouts.headerRead)"])
            case .close:
                return self.closeNow()
            case .ignore:
                break
            }
        }
        if let exchange = self.exchange {
            switch exchange.machine.deadlinesReached(now: now) {
            case .responseTimedOut:
                // Not retried: the upstream may still be working on the request.
                if let route = exchange.route { self.environment.router.report(route, failed: true, now: self.monotonicNow) }
                self.fail(exchange, with: .upstreamTimeout)
            case .bodyStalled(let idle):
                exchange.log(.notice, "request body stalled", metadata: ["timeout-ms": "\(idle.nanoseconds / 1_000_000)", "bytes-in": "\(exchange.machine.requestBodyBytes)"])
                self.fail(exchange, with: .requestBodyTimeout)
            case .responseStalled(let idle):
                // The response has started: no problem can be sent, only the cut. The client is
                // treated as gone; the upstream connection, mid-response, is dropped.
                self.clientGone(
                    exchange, reason: "client took none of the response; cut", level: .notice,
                    metadata: ["timeout-ms": "\(idle.nanoseconds / 1_000_000)"]
                )
                return self.closeNow()
            case .none:
                break
            }
        }
        guard !self.connection.closing else { return }
        let timeouts = self.timeouts
        var next = now + .milliseconds(min(timeouts.headerRead, timeouts.keepAliveIdle))
        if self.exchange == nil, let deadline = self.waitDeadline { next = min(next, deadline) }
        if let deadline = self.pauseDeadline { next = min(next, deadline) }
        if let deadline = self.exchange?.machine.nextDeadline { next = min(next, deadline) }
        self.checkDeadlines(by: next)
    }
}

extension ClientConnectionHandler: RequestStartObserver {
    func firstByteArrived() {
        guard let next = self.connection.firstByteArrived() else { return }
        self.armWaitTimer(next)
    }
}
