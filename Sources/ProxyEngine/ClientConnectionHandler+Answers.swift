import Cells
import GatewayConfig
import Logging
import NIOCore
import NIOHTTP1

// The answers the gateway writes itself: problem documents (`RequestPhases.failToProxy`) and
// local responses, and what the connection does once one is written.
extension ClientConnectionHandler {
    // MARK: - Answers of the gateway's own

    /// Answers a request that never became an exchange (rejected head, unparseable bytes, slow
    /// client) and closes the connection. Logged with the same request id the client receives.
    /// `crossOrigin`: what a browser may read of it, when the head was read.
    func respondWithoutExchange(
        _ problem: GatewayProblem, requestID: String? = nil, method: HTTPMethod? = nil, version: HTTPVersion = .http1_1, logMetadata: Logger.Metadata = [:],
        crossOrigin: CrossOriginAnswer? = nil
    ) {
        let id = requestID ?? self.identifiers.requestID()
        var metadata = logMetadata
        metadata["request-id"] = .string(id)
        metadata["problem"] = "\(problem)"
        metadata["phase"] = "\(problem.phase.rawValue)"
        metadata["status"] = "\(problem.status.code)"
        self.environment.logger.notice("request rejected", metadata: metadata)
        if let observer = self.environment.observer {
            observer.requestEnded(.refusedWithoutExchange(
                requestID: id, problem: problem, at: self.now, wallMicroseconds: self.environment.wallClock.nowMicroseconds
            ))
        }
        let written = self.writeProblem(problem, requestID: id, answering: method, version: version, close: true, crossOrigin: crossOrigin)
        self.closeAfter(written)
    }

    /// Answers the exchange with a problem document if the response has not started; otherwise
    /// the only honest signal left in HTTP/1.1 is to cut the connection.
    func fail(_ exchange: Exchange, with problem: GatewayProblem, headers: HTTPHeaders = HTTPHeaders(), extensions: [(name: String, value: String)] = []) {
        self.dropUpstream(of: exchange)
        switch exchange.machine.answering(status: problem.status.code, closesConnection: problem.closesConnection, connectionClosing: self.connection.closesAfterAnswer) {
        case .closeMidResponse:
            exchange.brokeOff = true
            self.end(exchange)
            exchange.log(.warning, "upstream failed mid-response; closing the client connection", metadata: exchange.logMetadata(now: self.now, status: exchange.machine.responseStatus))
            self.closeNow()
        case .answer(let after):
            exchange.problem = problem
            exchange.log(.info, "request answered by the gateway", metadata: exchange.logMetadata(now: self.now, status: problem.status.code, problem: problem))
            let written = self.writeProblem(
                problem, requestID: exchange.request.requestID, answering: exchange.request.head.method, version: exchange.request.head.version,
                close: after == .close, headers: headers,
                extensions: extensions, crossOrigin: exchange.crossOriginAnswer
            )
            self.answered(exchange, then: after, written: written)
        }
    }

    /// Sends a response the gateway produced itself (no upstream involved).
    func answerLocally(_ exchange: Exchange, _ response: LocalResponse) {
        guard let context = self.context,
            case .answer(let after) = exchange.machine.answering(status: response.status.code, closesConnection: false, connectionClosing: self.connection.closesAfterAnswer)
        else { return }
        var headers = response.headers
        headers.replaceOrAdd(name: "x-request-id", value: exchange.request.requestID)
        if after == .close { headers.replaceOrAdd(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: exchange.request.head.version, status: response.status, headers: headers)
        self.send(.head(head), answering: exchange.request.head.method, context: context)
        if let body = response.body, exchange.request.head.method != .HEAD {
            exchange.machine.localBodyWritten(bytes: body.utf8.count)
            self.send(.body(.byteBuffer(context.channel.allocator.buffer(string: body))), context: context)
        }
        let written = self.writeEnd(context, closing: after == .close)
        exchange.log(.info, "request", metadata: exchange.logMetadata(now: self.now, status: response.status.code))
        self.answered(exchange, then: after, written: written)
    }

    private func writeProblem(
        _ problem: GatewayProblem, requestID: String, answering method: HTTPMethod?, version: HTTPVersion, close: Bool, headers: HTTPHeaders = HTTPHeaders(),
        extensions: [(name: String, value: String)] = [], crossOrigin: CrossOriginAnswer?
    ) -> EventLoopFuture<Void>? {
        guard let context = self.context else { return nil }
        let (head, body) = RequestPhases.failToProxy(
            problem, requestID: requestID, version: version, close: close, headers: headers, extensions: extensions, crossOrigin: crossOrigin
        )
        self.send(.head(head), answering: method, context: context)
        self.send(.body(.byteBuffer(context.channel.allocator.buffer(string: body))), context: context)
        return self.writeEnd(context, closing: close)
    }

    /// Writes and flushes a response's end. The future, for closing once it is written, only
    /// when the connection closes after it: a keep-alive answer needs none, and each one cost a
    /// promise, its future and a callback list (allocations on every request).
    func writeEnd(_ context: ChannelHandlerContext, closing: Bool) -> EventLoopFuture<Void>? {
        guard closing else {
            self.send(.end(nil), context: context)
            self.flushResponse(context: context)
            return nil
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        self.send(.end(nil), context: context, promise: written)
        self.flushResponse(context: context)
        return written.futureResult
    }

    /// The gateway's answer is written: close, go on with the next request, or read the rest
    /// of this one (only its end marker is still to come; `handle(.end)` finishes the exchange).
    func answered(_ exchange: Exchange, then after: ExchangeStateMachine.AfterAnswer, written: EventLoopFuture<Void>?) {
        if after == .close {
            self.end(exchange)
            self.closeAfter(written)
        } else if exchange.machine.requestComplete {
            self.exchangeFinished()
        } else {
            self.resumeReadingIfPossible()
        }
    }
}
