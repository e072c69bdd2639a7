import EdgeTLS
import NIOCore
import NIOSSL
import NIOTLS

/// How a client connection reached the listener.
enum ClientTransport {
    case plain
    /// TLS, accepted at `acceptedAt`: the handshake has spent part of the first request's
    /// header-read time.
    case tls(acceptedAt: NIODeadline)

    /// The scheme the client used, for `X-Forwarded-Proto`.
    var scheme: String {
        switch self {
        case .plain: "http"
        case .tls: "https"
        }
    }

    var acceptedAt: NIODeadline? {
        switch self {
        case .plain: nil
        case .tls(let acceptedAt): acceptedAt
        }
    }
}

extension GatewayServer {
    /// The handlers of a TLS client connection, in order: the handshake deadline, TLS (the
    /// certificate chosen by the client's SNI from EdgeTLS's snapshot), then the application
    /// protocol the handshake chose (`configureNegotiatedProtocol`).
    static func configureTLSClientPipeline(
        _ channel: any Channel, context: NIOSSLContext, environment: ProxyEnvironment
    ) throws {
        let acceptedAt = channel.eventLoop.now
        let headerRead = environment.configuration.settings.timeouts.headerRead
        let deadline = TLSHandshakeDeadline(deadline: acceptedAt + .milliseconds(headerRead.milliseconds))
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(deadline)
        try sync.addHandler(NIOSSLServerHandler(context: context))
        try sync.addHandler(ApplicationProtocolNegotiationHandler { result, channel in
            // The handshake is over; from here the connection handler's own timer runs, still
            // counted from the accept.
            channel.pipeline.syncOperations.removeHandler(deadline, promise: nil)
            return Self.configureNegotiatedProtocol(result, channel: channel, environment: environment, acceptedAt: acceptedAt)
        })
    }

    /// The handlers that speak the protocol the TLS handshake chose (ALPN). One case per
    /// protocol of `EdgeTLS.applicationProtocols(http2:)`; a client that offers none of them, or no
    /// ALPN at all, falls back to HTTP/1.1.
    static func configureNegotiatedProtocol(
        _ result: ALPNResult, channel: any Channel, environment: ProxyEnvironment, acceptedAt: NIODeadline
    ) -> EventLoopFuture<Void> {
        switch result {
        case .negotiated("http/1.1"), .fallback:
            return channel.eventLoop.makeCompletedFuture {
                try Self.configureClientPipeline(channel.pipeline.syncOperations, environment: environment, transport: .tls(acceptedAt: acceptedAt))
            }
        case .negotiated("h2"):
            return channel.eventLoop.makeCompletedFuture {
                try Self.configureHTTP2Connection(channel, environment: environment, transport: .tls(acceptedAt: acceptedAt))
            }
        case .negotiated:
            // Only what the listener offered can be negotiated: nothing else arrives here.
            return channel.close()
        }
    }
}

/// Closes a TLS connection whose handshake has not finished by `deadline` (the first
/// request's header-read time, counted from the accept), and one told to quiesce before its
/// handshake finished. It sits in front of the TLS handler, so its close is the socket's own,
/// not a TLS shutdown that would wait for a stalled peer. Removed once the handshake is over.
final class TLSHandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let deadline: NIODeadline
    private var timer: Scheduled<Void>?

    init(deadline: NIODeadline) {
        self.deadline = deadline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.arm(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Nothing was asked on this connection yet: there is nothing to finish.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func arm(_ context: ChannelHandlerContext) {
        guard self.timer == nil else { return }
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: self.deadline) {
            context.close(promise: nil)
        }
    }
}
