import Cells
import GatewayConfig
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket

// The exchange's upstream side: attempts (cell slot, endpoint, lease), retries, and relaying the
// upstream's response to the client. What to do is the exchange's state machine's decision;
// this carries it out.
extension ClientConnectionHandler {
    // MARK: - Upstream attempts

    /// Each call is one attempt: its cell's slot and endpoint, then a leased connection.
    func startAttempt(_ exchange: Exchange) {
        guard let route = exchange.route else { return }
        self.attemptStarted(exchange, self.environment.router.startAttempt(route, now: self.monotonicNow, waiter: self))
    }

    private func attemptStarted(_ exchange: Exchange, _ start: CellRouter.AttemptStart) {
        switch start {
        case .go(let target, let connectTimeout, let responseTimeout):
            exchange.endpoint = (target, connectTimeout)
            exchange.machine.endpointChosen(responseTimeout: .milliseconds(responseTimeout.milliseconds))
            self.lease(exchange)
        case .wait:
            return
        case .overloaded(let retryAfterSeconds):
            var headers = HTTPHeaders()
            headers.add(name: "retry-after", value: String(retryAfterSeconds))
            self.fail(exchange, with: .cellOverloaded, headers: headers)
        case .noEndpoint:
            // After failed attempts the client learns what the last one ran into.
            self.fail(exchange, with: exchange.machine.lastFailure ?? .noHealthyUpstream)
        }
    }

    private func lease(_ exchange: Exchange) {
        guard let (target, connectTimeout) = exchange.endpoint else { return }
        exchange.leaseTicket = self.environment.pool.lease(target, connectTimeout: connectTimeout, for: .init(requester: self, token: exchange))
    }

    private func connected(_ exchange: Exchange, to upstream: UpstreamConnection) {
        guard let admitted = exchange.admitted else { return }
        upstream.delegate = self
        exchange.upstream = upstream
        if exchange.upstreamStartedAt == nil { exchange.upstreamStartedAt = self.now }
        let (parts, responseDeadline) = exchange.machine.connected(reused: upstream.completedExchanges > 0, now: self.now)
        upstream.write(.head(exchange.upstreamHead(phases: self.phases, admitted: admitted)))
        for part in parts { upstream.write(part) }
        upstream.flush()
        if let responseDeadline { self.checkDeadlines(by: responseDeadline) }
        self.resumeReadingIfPossible()
    }

    /// The attempt failed before any response byte: the endpoint is blamed (outlier detection)
    /// and the request goes to another endpoint if that is safe and the retry budget of its cell
    /// allows; otherwise the client gets `problem`.
    private func attemptFailed(_ exchange: Exchange, with problem: GatewayProblem, failure: RetryPolicy.Failure) {
        let router = self.environment.router
        guard let route = exchange.route else { return self.fail(exchange, with: problem) }
        router.report(route, failed: true, now: self.monotonicNow)
        router.endAttempt(route, now: self.monotonicNow)
        let maxAttempts = exchange.request.settings.retries.maxAttempts
        switch exchange.machine.attemptFailed(problem, failure: failure, attempt: route.attempts, maxAttempts: maxAttempts) {
        case .retryIfBudgetAllows(let problem) where router.startRetry(route):
            exchange.log(.info, "retrying on another endpoint", metadata: ["problem": "\(problem)", "attempt": "\(route.attempts + 1)"])
            exchange.machine.retryGranted(after: failure)
            self.startAttempt(exchange)
        case .retryIfBudgetAllows(let problem):
            self.environment.metrics?.retryRefusedByBudget(cell: route.primary.cell.id)
            self.fail(exchange, with: problem)
        case .fail(let problem):
            self.fail(exchange, with: problem)
        }
    }

    /// The operator learns why a TLS handshake failed — the client is answered
    /// `upstream-tls-failed` and nothing more. Once per endpoint and interval per loop, not once
    /// per request: a cell whose certificate expired fails every connection attempt.
    private func logTLSFailure(_ exchange: Exchange, cause: (any Error)?) {
        guard let target = exchange.endpoint?.target else { return }
        let cell = exchange.route?.currentCell?.id ?? "?"
        var metadata: Logger.Metadata = [
            "reason": "\(cause.map { "\($0)" } ?? "unknown")", "request-id": "\(exchange.request.requestID)", "cell": "\(cell)",
            "upstream": "\(target.endpoint)",
        ]
        if let name = target.tls?.serverHostname(for: target.endpoint) { metadata["server-name"] = "\(name)" }
        self.environment.repeatedWarnings.warn(
            "TLS with upstream \(target) of cell \(cell) failed", metadata: metadata, logger: self.environment.logger,
            now: self.environment.eventLoop.now.uptimeNanoseconds
        )
    }

    /// Closes the exchange's upstream connection (it is mid-message) or withdraws its lease.
    func dropUpstream(of exchange: Exchange) {
        if let ticket = exchange.leaseTicket {
            exchange.leaseTicket = nil
            self.environment.pool.cancel(ticket)
        }
        if let upstream = exchange.upstream {
            exchange.upstream = nil
            self.environment.pool.release(upstream, reusable: false)
        }
    }
}

extension ClientConnectionHandler: CellSlotWaiter, UpstreamLeaseRequester {
    func cellSlotGranted(_ route: CellRoute, _ start: CellRouter.AttemptStart) {
        guard let exchange = self.exchange, exchange.route === route else { return }
        self.attemptStarted(exchange, start)
    }

    func upstreamLeaseCompleted(_ result: UpstreamPool.LeaseResult, for token: AnyObject) {
        guard let exchange = self.exchange, exchange === token else {
            // The client is gone: the untouched connection goes straight back.
            if case .success(let connection) = result { self.environment.pool.release(connection, reusable: true) }
            return
        }
        exchange.leaseTicket = nil
        switch result {
        case .success(let upstream):
            self.connected(exchange, to: upstream)
        case .failure(let failure) where failure.problem == .upstreamBusy:
            self.fail(exchange, with: failure.problem)  // the gateway's own connection bound, not the endpoint's fault
        case .failure(let failure):
            // A failed handshake is a connection never made: the endpoint saw no request, so it
            // is blamed and the request retried like after a refused connection.
            if failure.problem == .upstreamTlsFailed { self.logTLSFailure(exchange, cause: failure.cause) }
            self.attemptFailed(exchange, with: failure.problem, failure: .connectFailed)
        }
    }
}

// MARK: - Relaying the upstream's response

extension ClientConnectionHandler: UpstreamExchangeDelegate {
    var upstreamShouldPauseReading: Bool {
        !(self.context?.channel.isWritable ?? false)
    }

    func upstreamReceived(_ part: consuming UpstreamResponsePart) {
        guard let exchange = self.exchange, let context = self.context else { return }
        self.enterEvent()
        defer { self.leaveEvent() }
        switch consume part {
        case .head(let head) where head.status == .switchingProtocols:
            // Only a WebSocket handshake may switch, and only to what the client asked for.
            guard let admitted = exchange.admitted, let handshake = exchange.request.webSocket, handshake.accepts(head.nioHead) else {
                exchange.log(.notice, "upstream switched protocols unasked or to something the client did not offer")
                if let route = exchange.route { self.environment.router.report(route, failed: true, now: self.monotonicNow) }
                return self.fail(exchange, with: .upstreamFailed)
            }
            exchange.upstreamHeadAt = self.now
            if let route = exchange.route { self.environment.router.report(route, failed: false, now: self.monotonicNow) }
            _ = exchange.machine.responseHeadReceived(status: 101, upstreamKeepsAlive: false, connectionClosing: true)
            self.send(.head(self.phases.respondSwitchingProtocols(admitted, upstreamHead: head.nioHead)), answering: exchange.request.head.method, context: context)
        case .head(let head):
            guard let admitted = exchange.admitted else { return }
            exchange.upstreamHeadAt = self.now
            if let route = exchange.route { self.environment.router.report(route, failed: head.status.code >= 500, now: self.monotonicNow) }
            guard exchange.masking != nil else {
                let after = exchange.machine.responseHeadReceived(
                    status: head.status.code, upstreamKeepsAlive: head.isKeepAlive, connectionClosing: self.connection.closesAfterAnswer
                )
                return self.send(self.phases.respond(admitted, upstreamHead: consume head, close: after == .close), answering: exchange.request.head.method, context: context)
            }
            // A masked body's head may be held and rewritten: as strings.
            var masked = head.nioHead
            if self.maskedHeadReceived(exchange, &masked) { return }
            let after = exchange.machine.responseHeadReceived(
                status: masked.status.code, upstreamKeepsAlive: ForwardedHeaders.keepsAlive(masked), connectionClosing: self.connection.closesAfterAnswer
            )
            self.send(.head(self.phases.respond(admitted, upstreamHead: masked, close: after == .close)), answering: exchange.request.head.method, context: context)
        case .body(let buffer):
            if exchange.masking != nil { return self.maskedBodyReceived(exchange, buffer) }
            exchange.machine.responseBodyReceived(bytes: buffer.readableBytes)
            self.send(.body(.byteBuffer(buffer)), context: context)
        case .end where exchange.machine.responseStatus == 101:
            self.switchToWebSocket(exchange, context: context)
        case .end:
            if exchange.masking != nil, !self.maskedResponseEnded(exchange, context: context) { return }
            let end = exchange.machine.responseEnded()
            exchange.upstreamEndedAt = self.now
            // The upstream is done before the last write: on an HTTP/2 stream that write can
            // close the stream at once, and the connection must find a finished exchange then.
            if let upstream = exchange.upstream {
                exchange.upstream = nil
                self.environment.pool.release(upstream, reusable: end.upstreamReusable)
            }
            if let route = exchange.route { self.environment.router.endAttempt(route, now: self.monotonicNow) }
            exchange.log(.info, "request", metadata: exchange.logMetadata(now: self.now, status: exchange.machine.responseStatus))
            let written = self.writeEnd(context, closing: end.then == .close)
            if end.then == .close {
                self.end(exchange)
                self.closeAfter(written)
            } else {
                self.exchangeFinished()
            }
        }
    }

    /// The upstream's read ended inside a response: what it brought goes out now, a head held
    /// for its body among it (the body comes with a later read).
    func upstreamReadComplete() {
        guard let context = self.context else { return }
        self.flushResponse(context: context)
    }

    func upstreamWritabilityChanged() {
        self.resumeReadingIfPossible()
    }

    func upstreamClosed(_ connection: UpstreamConnection, error: (any Error)?) {
        guard let exchange = self.exchange, exchange.upstream === connection else { return }
        exchange.upstream = nil
        self.environment.pool.release(connection, reusable: false)
        switch exchange.machine.upstreamClosed() {
        case .resendOnFreshConnection:
            exchange.log(.debug, "resending on a fresh upstream connection after a stale keep-alive connection closed")
            self.lease(exchange)
        case .closeMidResponse, .failHeldResponse:
            self.fail(exchange, with: .upstreamFailed)
        case .attemptFailed where connection.completedExchanges == 0 && UpstreamTLSHandshakeError.isRefusal(error):
            // The endpoint's TLS layer refused a fresh connection after the gateway's side of the
            // handshake was done (TLS 1.3: a client certificate missing or refused). Retried only
            // as safely as any connection lost before the answer.
            self.logTLSFailure(exchange, cause: error)
            self.attemptFailed(exchange, with: .upstreamTlsFailed, failure: .afterConnect)
        case .attemptFailed:
            self.attemptFailed(exchange, with: .upstreamFailed, failure: .afterConnect)
        }
    }
}

// MARK: - Switching to a WebSocket

extension ClientConnectionHandler {
    /// The backend's `101` went to the client: both connections stop speaking HTTP. Their HTTP
    /// handlers (and this one) leave the pipelines, NIOWebSocket's frame codec and a
    /// `WebSocketTunnel` end take their place, and the exchange — with the in-flight unit it
    /// holds — passes to the tunnel, which ends it when the socket closes. The upstream
    /// connection leaves the pool for good.
    fileprivate func switchToWebSocket(_ exchange: Exchange, context: ChannelHandlerContext) {
        self.send(.end(nil), context: context)
        self.flushResponse(context: context)
        guard let upstream = exchange.upstream, let upstreamChannel = upstream.channel else {
            // The `101` is out: all that is left to tell the client is the cut.
            return self.fail(exchange, with: .upstreamFailed)
        }
        _ = exchange.machine.responseEnded()
        exchange.upstream = nil
        self.environment.pool.handOff(upstream)
        // The attempt is over, and so is the request as the cell sees it: a socket holds no
        // slot of its cell and does not weigh in its retry budget for hours.
        if let route = exchange.route { self.environment.router.finish(route, now: self.monotonicNow) }
        self.handOverExchange()
        self.beginClosing()

        let tunnel = WebSocketTunnel(exchange: exchange, environment: self.environment, now: self.now)
        let maxFrameSize = exchange.request.settings.webSockets.maxFrameBytes
        do {
            let client = context.pipeline.syncOperations
            try client.addHandlers([
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)), WebSocketFrameEncoder(), tunnel.makeEnd(.client),
            ])
            // Nothing the client sent behind its handshake is read: RFC 6455 §4.1 has it wait
            // for the `101` before sending a frame.
            client.removeHandler(context: try client.context(handlerType: ClientRequestDecoder.self), promise: nil)

            let upstreamPipeline = upstreamChannel.pipeline.syncOperations
            try upstreamPipeline.addHandlers([
                ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)), WebSocketFrameEncoder(), tunnel.makeEnd(.upstream),
            ])
            // Frames the backend sent right behind its `101` go on to the frame decoder as the
            // connection's HTTP handler leaves (once the read that brought the `101` is handed
            // on), so what they became is flushed to the client once it is gone.
            let httpRemoved = upstreamChannel.eventLoop.makePromise(of: Void.self)
            upstreamPipeline.removeHandler(context: try upstreamPipeline.context(handlerType: UpstreamConnection.self), promise: httpRemoved)
            httpRemoved.futureResult.assumeIsolated().whenComplete { _ in tunnel.readComplete(from: .upstream) }
        } catch {
            exchange.log(.error, "switching to a websocket failed", metadata: ["error": "\(error)"])
            upstreamChannel.close(promise: nil)
            tunnel.connectionClosed(.client)
            return self.closeNow()
        }
        tunnel.start()
        // Last: this handler's context is gone once it leaves the pipeline.
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
