import Logging
import NIOCore
import NIOHTTP2

/// What an HTTP/2 connection needs beyond what NIOHTTP2 does itself, in the connection's
/// pipeline between `NIOHTTP2Handler` and `NIOHTTP2ServerConnectionManagementHandler`: the
/// deadlines of `HTTP2ConnectionLifecycle` (preface, acknowledgement of a graceful close), the
/// close after a connection error (NIOHTTP2 sends GOAWAY and leaves the socket open), and a
/// client's half-close. Frames of streams never pass here (NIOHTTP2's inline multiplexer hands
/// them to the stream channels); only the connection's own do.
final class HTTP2ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let logger: Logger
    private let timeout: TimeAmount
    private var lifecycle: HTTP2ConnectionLifecycle?
    private var timer: (task: Scheduled<Void>, at: NIODeadline)?
    private var context: ChannelHandlerContext?

    /// - Parameter timeout: `timeouts.headerRead`.
    init(timeout: TimeAmount, logger: Logger) {
        self.timeout = timeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { self.start(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.cancelTimer()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.start(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.lifecycle?.closed()
        self.cancelTimer()
        context.fireChannelInactive()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard self.lifecycle == nil else { return }
        let lifecycle = HTTP2ConnectionLifecycle(timeout: self.timeout, now: context.eventLoop.now)
        self.lifecycle = lifecycle
        if let deadline = lifecycle.deadline { self.apply(.armTimer(deadline)) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let action = self.lifecycle?.frameReceived() { self.apply(action) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .goAway(let lastStreamID, _, _) = self.unwrapOutboundIn(data).payload else {
            return context.write(data, promise: promise)
        }
        if let action = self.lifecycle?.goAwaySent(lastStreamID: lastStreamID, now: context.eventLoop.now) { self.apply(action) }
        context.write(data, promise: promise)
        // Out at once: the manager closes the connection right after its final GOAWAY, and
        // within a read it defers its flush to the read's end — after the close, which drops
        // the frame.
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard HTTP2ConnectionLifecycle.closesConnection(error) else {
            self.logger.debug("HTTP/2 stream error", metadata: ["error": "\(type(of: error))", "client": "\(context.channel.remoteAddress?.ipAddress ?? "?")"])
            return
        }
        if self.lifecycle?.stage != .closed, context.channel.isActive {
            self.logger.notice("HTTP/2 connection closed", metadata: ["error": "\(type(of: error))", "client": "\(context.channel.remoteAddress?.ipAddress ?? "?")"])
        }
        self.lifecycle?.closed()
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client will send nothing more, PING acknowledgements included: drained like a
            // shutdown, within the acknowledgement's deadline.
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: - The timer

    private func apply(_ action: HTTP2ConnectionLifecycle.Action) {
        switch action {
        case .none:
            return
        case .cancelTimer:
            self.cancelTimer()
        case .armTimer(let deadline):
            if let timer = self.timer, timer.at <= deadline { return }
            self.cancelTimer()
            guard let loop = self.context?.eventLoop else { return }
            let task = loop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] () -> Void in self?.timerFired() }
            self.timer = (task, deadline)
        case .close(let reason):
            self.cancelTimer()
            guard let context = self.context else { return }
            self.logger.notice("HTTP/2 connection closed", metadata: ["reason": "\(reason)", "client": "\(context.channel.remoteAddress?.ipAddress ?? "?")"])
            context.close(promise: nil)
        }
    }

    private func timerFired() {
        self.timer = nil
        guard let context = self.context, let action = self.lifecycle?.timerFired(now: context.eventLoop.now) else { return }
        self.apply(action)
    }

    private func cancelTimer() {
        self.timer?.task.cancel()
        self.timer = nil
    }
}
