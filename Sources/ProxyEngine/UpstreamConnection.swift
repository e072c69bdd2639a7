import GatewayConfig
import NIOCore
import NIOHTTP1

/// What an upstream connection reports to the exchange currently using it. All calls happen on
/// the connection's event loop, which is also the client connection's loop.
protocol UpstreamExchangeDelegate: AnyObject {
    func upstreamReceived(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged()
    func upstreamClosed(_ connection: UpstreamConnection, error: (any Error)?)
    /// True while the client cannot take more response bytes: the upstream is not read.
    var upstreamShouldPauseReading: Bool { get }
}

/// One keep-alive HTTP/1.1 connection to an upstream endpoint: the last handler of its client
/// channel. It relays response parts to the exchange that leased it, and holds reads back while
/// that exchange's client is not writable (response backpressure).
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    let id: Int
    /// The endpoint, and the TLS context the connection was made with: the pool it returns to.
    let target: UpstreamTarget
    var endpoint: GatewaySettings.Endpoint { self.target.endpoint }
    weak var delegate: (any UpstreamExchangeDelegate)?
    /// Called when the connection closes while no exchange holds it (idle in the pool).
    var onIdleClose: (() -> Void)?
    /// While idle in the pool: when its idle time runs out (the pool closes it then).
    var idleUntil: NIODeadline?
    /// Completed exchanges on this connection; a failure on a reused connection may just mean
    /// the upstream closed it while idle, which makes a retry of a replayable request safe.
    var completedExchanges = 0
    private(set) var isClosed = false
    private var context: ChannelHandlerContext?
    private var readPending = false
    private var lastError: (any Error)?

    init(id: Int, target: UpstreamTarget) {
        self.id = id
        self.target = target
    }

    var isWritable: Bool { self.context?.channel.isWritable ?? false }
    /// The connection's channel, while the handler is in its pipeline.
    var channel: (any Channel)? { self.context?.channel }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func write(_ part: HTTPClientRequestPart) {
        self.context?.write(self.wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    func close() {
        guard !self.isClosed else { return }
        self.context?.close(promise: nil)
    }

    /// The client drained: deliver the read that was held back.
    func resumeReading() {
        guard self.readPending, let context = self.context else { return }
        self.readPending = false
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let delegate = self.delegate else {
            // Bytes on an idle connection: the upstream is not speaking HTTP/1.1 keep-alive as
            // agreed. The connection cannot be trusted for the next request.
            context.close(promise: nil)
            return
        }
        delegate.upstreamReceived(self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.delegate?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.delegate?.upstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.isClosed = true
        if let delegate = self.delegate {
            self.delegate = nil
            delegate.upstreamClosed(self, error: self.lastError)
        } else {
            self.onIdleClose?()
        }
        self.onIdleClose = nil
        self.idleUntil = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.lastError = error
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if self.delegate?.upstreamShouldPauseReading == true {
            self.readPending = true
        } else {
            context.read()
        }
    }
}
