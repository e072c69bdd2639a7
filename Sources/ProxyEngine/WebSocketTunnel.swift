import Hierarchy
import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import TokenAuth

/// A WebSocket relayed between a client connection and the upstream connection that switched
/// protocols, frame by frame through NIOWebSocket's codec on both: frame boundaries are what
/// lets the gateway put a close frame in between (drain, lifetimes, suspension) without
/// cutting a message in half. Both connections live on the same event loop.
///
/// It decides nothing itself (`WebSocketSessionStateMachine` does); it carries out frames,
/// close frames, its one timer and the end. The socket is the exchange that opened it: the
/// exchange — with the tenant's in-flight quota unit it holds — ends when the socket closes,
/// exactly once, and its record and log line are written then.
///
/// Backpressure is the HTTP relay's: a side is read only while the other side's channel is
/// writable, so a slow reader holds back its peer instead of queueing frames in memory.
///
/// A running socket learns of a suspension, a revocation or a placement change by looking at
/// its loop's configuration and revocation list every `watchInterval` (configurations are
/// swapped whole per loop and revocations applied per loop: there is nothing to subscribe to).
final class WebSocketTunnel {
    typealias Side = WebSocketSessionStateMachine.Side

    /// How often an open socket looks for a suspension, revocation or placement change: the
    /// bound on how long it outlives one.
    static let watchInterval = TimeAmount.milliseconds(250)

    private let environment: ProxyEnvironment
    private let exchange: Exchange
    private var machine: WebSocketSessionStateMachine
    private var ends: (client: WebSocketRelayEnd?, upstream: WebSocketRelayEnd?) = (nil, nil)
    private var timer: Scheduled<Void>?
    /// What the socket was admitted as: the customer, the cell it was placed on, the token.
    private let customer: NodeID?
    private let cell: String?
    private let token: VerifiedToken?
    /// The configuration generation last looked at: a tree is only consulted after a change.
    private var generation: Int

    init(exchange: Exchange, environment: ProxyEnvironment, now: NIODeadline) {
        self.exchange = exchange
        self.environment = environment
        let settings = exchange.request.settings.webSockets
        self.machine = WebSocketSessionStateMachine(
            openedAt: now, idleTimeout: .milliseconds(settings.idleTimeout.milliseconds), maxLifetime: .milliseconds(settings.maxLifetime.milliseconds),
            closeGrace: .milliseconds(settings.closeGrace.milliseconds)
        )
        let grant = exchange.admitted?.grant
        self.customer = grant?.policy.id
        self.cell = grant?.policy.cell
        self.token = grant?.token
        self.generation = environment.generation
    }

    /// The handlers that relay frames on each connection: after the HTTP handlers are gone.
    func makeEnd(_ side: Side) -> WebSocketRelayEnd {
        let end = WebSocketRelayEnd(side: side, tunnel: self)
        switch side {
        case .client: self.ends.client = end
        case .upstream: self.ends.upstream = end
        }
        return end
    }

    private func end(_ side: Side) -> WebSocketRelayEnd? {
        side == .client ? self.ends.client : self.ends.upstream
    }

    /// Both ends are in their pipelines: start reading and arm the timer.
    func start() {
        self.exchange.log(.info, "websocket opened", metadata: ["path": "\(self.exchange.request.path.path)"])
        self.ends.client?.startReading()
        self.ends.upstream?.startReading()
        self.armTimer()
    }

    private var now: NIODeadline { self.environment.eventLoop.now }

    // MARK: - Frames

    func frameArrived(_ frame: WebSocketFrame, from side: Side) {
        switch self.machine.frameArrived(from: side, opcode: frame.opcode, payloadBytes: frame.length, now: self.now) {
        case .forward:
            self.end(side.other)?.write(Self.relayed(frame, to: side.other))
        case .forwardAndFinish:
            self.end(side.other)?.write(Self.relayed(frame, to: side.other))
            self.teardown()
        case .drop(let finish):
            if finish { self.teardown() }
        }
    }

    /// A frame as it goes to `side`: to the upstream masked, as a client's frames must be (with
    /// the client's own key, which NIO's encoder applies again); to the client unmasked. A
    /// client frame is unmasked once for that: the only copy the relay makes.
    static func relayed(_ frame: WebSocketFrame, to side: Side) -> WebSocketFrame {
        var frame = frame
        switch side {
        case .upstream:
            if let key = frame.maskKey {
                frame.data = frame.unmaskedData
                frame.maskKey = key
            } else {
                frame.maskKey = .random()
            }
        case .client:
            if frame.maskKey != nil {
                frame.data = frame.unmaskedData
                frame.maskKey = nil
            }
        }
        return frame
    }

    func readComplete(from side: Side) {
        self.end(side.other)?.flush()
    }

    /// Whether `side` may be read: the other side can take what it sends.
    func mayRead(_ side: Side) -> Bool {
        self.end(side.other)?.isWritable ?? true
    }

    func writabilityChanged(_ side: Side, writable: Bool) {
        if writable { self.end(side.other)?.resumeReading() }
    }

    /// A frame the decoder could not read: too large, or not valid WebSocket.
    func frameRejected(from side: Side, error: any Error) {
        let reason: WebSocketSessionStateMachine.CloseReason
        if let error = error as? NIOWebSocketError, error == .invalidFrameLength { reason = .frameTooLarge } else { reason = .protocolError }
        self.exchange.log(.notice, "websocket frame rejected", metadata: ["side": "\(side)", "error": "\(error)"])
        self.close(reason)
    }

    // MARK: - The gateway's own close

    /// Sends close frames with `reason`'s code to the sides still open; the ends' answers (or
    /// `closeGrace`) finish the socket.
    func close(_ reason: WebSocketSessionStateMachine.CloseReason) {
        let sides = self.machine.close(reason, now: self.now)
        self.sendClose(reason, to: sides)
        self.armTimer()
    }

    private func sendClose(_ reason: WebSocketSessionStateMachine.CloseReason, to sides: [Side]) {
        guard !sides.isEmpty else { return }
        self.exchange.log(.info, "websocket closing", metadata: ["reason": "\(reason.rawValue)", "close-code": "\(UInt16(webSocketErrorCode: reason.code))"])
        for side in sides {
            guard let end = self.end(side) else { continue }
            var payload = end.allocator.buffer(capacity: 2)
            payload.write(webSocketErrorCode: reason.code)
            let frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: side == .upstream ? .random() : nil, data: payload)
            end.write(frame)
            end.flush()
        }
    }

    /// Drain started on the client's connection: the socket runs for `closeGrace`, then 1001.
    func draining() {
        self.machine.goAway(.draining, now: self.now)
        self.armTimer()
    }

    // MARK: - Time and watching

    private func armTimer() {
        self.timer?.cancel()
        guard !self.machine.ended else { return }
        let at = min(self.machine.nextDeadline, self.now + Self.watchInterval)
        self.timer = self.environment.eventLoop.assumeIsolated().scheduleTask(deadline: at) { [weak self] in self?.timerFired() }
    }

    private func timerFired() {
        self.timer = nil
        self.watch()
        switch self.machine.deadlinesReached(now: self.now) {
        case .none:
            break
        case .close(let reason, let sides):
            self.sendClose(reason, to: sides)
        case .cut:
            self.exchange.log(.info, "websocket cut: the close handshake did not complete in time")
            return self.teardown()
        }
        self.armTimer()
    }

    /// Looks for what ends a socket from outside: the customer suspended (or removed), its
    /// placement changed, the token revoked.
    private func watch() {
        if let token = self.token, self.environment.revocations.isRevoked(token) {
            return self.close(.tokenRevoked)
        }
        guard let customer = self.customer, self.environment.generation != self.generation else { return }
        self.generation = self.environment.generation
        guard let policy = self.environment.configuration.tenants?.customer(customer), policy.status == .active else {
            return self.close(.tenantSuspended)
        }
        if policy.cell != self.cell { self.machine.goAway(.placementChanged, now: self.now) }
    }

    // MARK: - The end

    func connectionFailed(_ side: Side, error: any Error) {
        self.exchange.log(.info, "websocket connection failed", metadata: ["side": "\(side)", "error": "\(error)"])
    }

    /// A connection closed. The other is closed too, and the socket's exchange ends.
    func connectionClosed(_ side: Side) {
        _ = self.machine.connectionClosed()
        self.teardown()
    }

    /// Closes both connections (after what was written is flushed) and ends the exchange: its
    /// in-flight unit is given back and its record written, once however often this is called.
    private func teardown() {
        _ = self.machine.connectionClosed()
        self.timer?.cancel()
        self.timer = nil
        let ends = self.ends
        self.ends = (nil, nil)
        ends.client?.closeAfterFlush()
        ends.upstream?.closeAfterFlush()
        let now = self.now
        guard !self.exchange.ended else { return }
        // The record's timings are the handshake's: it ended with the `101`.
        let switched = self.exchange.upstreamHeadAt ?? now
        self.exchange.upstreamEndedAt = switched
        self.exchange.machine.relayed(bytesIn: self.machine.bytesFromClient, bytesOut: self.machine.bytesFromUpstream)
        guard self.exchange.end(now: now.uptimeNanoseconds) else { return }
        var metadata = self.exchange.logMetadata(now: now, status: 101)
        if let reason = self.machine.closeReason { metadata["close-reason"] = "\(reason.rawValue)" }
        self.exchange.log(.info, "websocket closed", metadata: metadata)
        if let observer = self.environment.observer {
            let wallNow = self.environment.wallClock.nowMicroseconds - (now - switched).nanoseconds / 1_000
            var record = self.exchange.record(ended: switched, wallNowMicroseconds: wallNow)
            record.webSocketLifetime = now - switched
            observer.requestEnded(record)
        }
    }
}

/// One side of a `WebSocketTunnel`: the last handler of its connection, behind NIOWebSocket's
/// frame codec. Holds reads back while the other side cannot take more.
final class WebSocketRelayEnd: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let side: WebSocketSessionStateMachine.Side
    /// Strong: the tunnel and its two ends live as long as the connections; `handlerRemoved`
    /// (the pipeline's teardown) breaks the cycle.
    private var tunnel: WebSocketTunnel?
    private var context: ChannelHandlerContext?
    private var readPending = false

    init(side: WebSocketSessionStateMachine.Side, tunnel: WebSocketTunnel) {
        self.side = side
        self.tunnel = tunnel
    }

    var isWritable: Bool { self.context?.channel.isWritable ?? false }
    var allocator: ByteBufferAllocator { self.context?.channel.allocator ?? ByteBufferAllocator() }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        let tunnel = self.tunnel
        self.tunnel = nil
        tunnel?.connectionClosed(self.side)
    }

    func write(_ frame: WebSocketFrame) {
        self.context?.write(self.wrapOutboundOut(frame), promise: nil)
    }

    func flush() {
        self.context?.flush()
    }

    func startReading() {
        guard let context = self.context else { return }
        if context.channel.isActive {
            context.read()
        } else {
            self.tunnel?.connectionClosed(self.side)
        }
    }

    func resumeReading() {
        guard self.readPending, let context = self.context else { return }
        self.readPending = false
        context.read()
    }

    func closeAfterFlush() {
        guard let context = self.context else { return }
        context.flush()
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.tunnel?.frameArrived(self.unwrapInboundIn(data), from: self.side)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.tunnel?.readComplete(from: self.side)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.tunnel?.writabilityChanged(self.side, writable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let tunnel = self.tunnel
        self.tunnel = nil
        tunnel?.connectionClosed(self.side)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is NIOWebSocketError {
            self.tunnel?.frameRejected(from: self.side, error: error)
        } else {
            // I/O errors (reset by peer and the like): the connection is going.
            self.tunnel?.connectionFailed(self.side, error: error)
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            self.tunnel?.draining()
        } else if let event = event as? ChannelEvent, event == .inputClosed {
            // Half-closed: a WebSocket has no use for half a connection.
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func read(context: ChannelHandlerContext) {
        if self.tunnel?.mayRead(self.side) == false {
            self.readPending = true
        } else {
            context.read()
        }
    }
}
