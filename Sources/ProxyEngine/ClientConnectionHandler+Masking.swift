import NIOCore
import NIOHTTP1

// The relay of a response whose fields are masked for its caller: held whole, masked, then
// sent. What to do is `ResponseMasking`'s decision (and the exchange state machine's, for the
// held head); this carries it out. Every other response never comes here.
extension ClientConnectionHandler {
    /// The upstream's head of a masked exchange. True when it was taken care of (held, or
    /// refused); false when the response relays as usual, unmasked (no body, a non-JSON body
    /// the rules let pass, or a HEAD's answer, whose `head` then has lost its body's fields).
    func maskedHeadReceived(_ exchange: Exchange, _ head: inout HTTPResponseHead) -> Bool {
        guard var masking = exchange.masking, let context = self.context else { return false }
        switch masking.headReceived(head, requestMethod: exchange.request.head.method, allocator: context.channel.allocator) {
        case .relay:
            exchange.masking = nil
            return false
        case .relayHead(let relayed):
            exchange.masking = nil
            head = relayed
            return false
        case .collect:
            exchange.masking = masking
            exchange.machine.responseHeadHeld(status: head.status.code, upstreamKeepsAlive: ForwardedHeaders.keepsAlive(head))
            return true
        case .refuse(let problem, let reason):
            self.refuseMasked(exchange, problem, reason: reason)
            return true
        }
    }

    func maskedBodyReceived(_ exchange: Exchange, _ buffer: ByteBuffer) {
        guard var masking = exchange.masking else { return }
        exchange.masking = nil  // uniquely referenced while the body grows
        switch masking.bodyReceived(buffer) {
        case .collect:
            exchange.masking = masking
        case .refuse(let problem, let reason):
            self.refuseMasked(exchange, problem, reason: reason)
        }
    }

    /// The upstream's end of a masked exchange: the masked head and body are written. True when
    /// the relay's usual end follows (the response's end, the upstream back to its pool).
    func maskedResponseEnded(_ exchange: Exchange, context: ChannelHandlerContext) -> Bool {
        guard var masking = exchange.masking, let admitted = exchange.admitted else { return true }
        exchange.masking = nil
        switch masking.ended(allocator: context.channel.allocator) {
        case .refuse(let problem, let reason):
            self.refuseMasked(exchange, problem, reason: reason)
            return false
        case .respond(let head, let body, let maskedValues):
            let after = exchange.machine.responseHeadReceived(
                status: head.status.code, upstreamKeepsAlive: ForwardedHeaders.keepsAlive(head), connectionClosing: self.connection.closesAfterAnswer
            )
            exchange.maskedValues = maskedValues
            self.send(.head(self.phases.respond(admitted, upstreamHead: head, close: after == .close)), answering: exchange.request.head.method, context: context)
            exchange.machine.responseBodyReceived(bytes: body.readableBytes)
            if body.readableBytes > 0 { self.send(.body(.byteBuffer(body)), context: context) }
            return true
        }
    }

    /// A response that cannot be masked: the client gets the problem, the upstream connection
    /// (mid-response) is closed.
    private func refuseMasked(_ exchange: Exchange, _ problem: GatewayProblem, reason: String) {
        exchange.masking = nil
        exchange.log(.notice, "response refused: it cannot be masked", metadata: ["problem": "\(problem)", "reason": "\(reason)"])
        self.fail(exchange, with: problem)
    }
}
