import GatewayConfig
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Where an upstream connection goes: an endpoint, and the TLS context of its cell when the
/// cell's endpoints are `https://`. The pool keeps its connections by target, so a connection
/// is reused only for the same endpoint under the same context: the same address in a plain and
/// an `https` cell, or in two cells presenting different client certificates, never shares one,
/// and a reload that changes a cell's `tls` (a new context object) leaves the connections made
/// under the old one to their idle timeout.
struct UpstreamTarget: Hashable, Sendable, CustomStringConvertible {
    let endpoint: GatewaySettings.Endpoint
    let tls: UpstreamTLSContext?

    init(_ endpoint: GatewaySettings.Endpoint, tls: UpstreamTLSContext? = nil) {
        self.endpoint = endpoint
        self.tls = tls
    }

    static func == (lhs: UpstreamTarget, rhs: UpstreamTarget) -> Bool {
        lhs.endpoint == rhs.endpoint && lhs.tls === rhs.tls
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(self.endpoint)
        hasher.combine(self.tls.map(ObjectIdentifier.init))
    }

    var description: String { self.tls == nil ? "\(self.endpoint)" : "https://\(self.endpoint.authority)" }
}

/// How the upstream pool opens a connection to an endpoint: over TCP (and TLS for an `https`
/// cell) in the gateway; in tests, an `EmbeddedChannel` on the client connection's
/// `EmbeddedEventLoop`, so that whole exchanges — forwarding, retries, timeouts — run on a
/// virtual clock without sockets.
protocol UpstreamConnector {
    /// A channel to `target` on `eventLoop`, set up by `initialize` before it is handed out;
    /// fails after `timeout` without a connection (`ChannelError.connectTimeout`), when the
    /// endpoint refuses, or when the TLS handshake fails (`UpstreamTLSHandshakeError`).
    func connect(
        to target: UpstreamTarget, timeout: TimeAmount, on eventLoop: any EventLoop,
        initialize: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel>
}

/// TCP with `TCP_NODELAY`: requests are written whole and flushed once, so Nagle would only
/// delay them.
struct TCPUpstreamConnector: UpstreamConnector {
    func connect(
        to target: UpstreamTarget, timeout: TimeAmount, on eventLoop: any EventLoop,
        initialize: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        UpstreamChannel.connect(target, timeout: timeout, on: eventLoop, noDelay: true, initialize: initialize)
    }
}

/// Opening a channel to an upstream target, shared by the pool's connector and the health
/// checker so that probes travel exactly like traffic.
enum UpstreamChannel {
    /// Connects over TCP; for a TLS target, `NIOSSLClientHandler` goes first in the pipeline
    /// and the channel is handed out only once the handshake completed. `timeout` bounds the
    /// TCP connect and the handshake together: a backend that accepts and then never answers
    /// the handshake is a connect timeout, like one that never accepts.
    static func connect(
        _ target: UpstreamTarget, timeout: TimeAmount, on loop: any EventLoop, noDelay: Bool,
        initialize: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        var bootstrap = ClientBootstrap(group: loop).connectTimeout(timeout)
        if noDelay { bootstrap = bootstrap.channelOption(.socketOption(.tcp_nodelay), value: 1) }
        guard let tls = target.tls else {
            return bootstrap
                .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try initialize(channel) } }
                .connect(host: target.endpoint.host, port: target.endpoint.port)
        }
        let deadline = loop.now + timeout
        let handshake = loop.makePromise(of: Void.self)
        let serverHostname = tls.serverHostname(for: target.endpoint)
        let connecting = bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLClientHandler(context: tls.sslContext, serverHostname: serverHostname))
                    try sync.addHandler(UpstreamTLSHandshakeHandler(completion: handshake))
                    try initialize(channel)
                }
            }
            .connect(host: target.endpoint.host, port: target.endpoint.port)
        connecting.whenFailure { handshake.fail($0) }
        return connecting.flatMap { channel in
            let expiry = channel.eventLoop.scheduleTask(deadline: deadline) {
                handshake.fail(ChannelError.connectTimeout(timeout))
            }
            return handshake.futureResult
                .always { _ in expiry.cancel() }
                .flatMapError { error in
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
                .map { channel }
        }
    }
}

/// A TLS handshake with an upstream endpoint failed: the certificate is not trusted or does not
/// name the server, the endpoint refused the gateway's client certificate (or its absence), no
/// protocol version or cipher in common, or the connection closed mid-handshake. The
/// description is for the operator's log only: a client is answered `upstream-tls-failed`,
/// which says none of it.
struct UpstreamTLSHandshakeError: Error, CustomStringConvertible {
    let reason: String

    init(_ underlying: any Error) {
        self.reason = "\(underlying)"
    }

    private init(reason: String) {
        self.reason = reason
    }

    static let closedDuringHandshake = UpstreamTLSHandshakeError(reason: "the connection closed during the TLS handshake")

    var description: String { self.reason }

    /// Whether `error`, seen on a fresh upstream connection before any response byte, is the
    /// endpoint's TLS layer refusing the connection. Under TLS 1.3 the client's handshake
    /// completes before the server has judged the client's certificate, so a refused (or
    /// missing) client certificate arrives as an alert on the first read, not as a handshake
    /// failure. A close without TLS's closing message is not counted: that is a backend going
    /// away (`upstream-failed`).
    static func isRefusal(_ error: (any Error)?) -> Bool {
        switch error {
        case let error as NIOSSLError:
            if case .uncleanShutdown = error { return false }
            return true
        case is BoringSSLError, is NIOSSLExtraError, is UpstreamTLSHandshakeError:
            return true
        default:
            return false
        }
    }
}

/// Completes the connect of a TLS target: succeeds when the handshake completed (and leaves the
/// pipeline), fails with the reason when it did not.
private final class UpstreamTLSHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private var completion: EventLoopPromise<Void>?

    init(completion: EventLoopPromise<Void>) {
        self.completion = completion
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event, let completion = self.completion {
            self.completion = nil
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            completion.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let completion = self.completion {
            self.completion = nil
            completion.fail(UpstreamTLSHandshakeError(error))
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let completion = self.completion {
            self.completion = nil
            completion.fail(UpstreamTLSHandshakeError.closedDuringHandshake)
        }
        context.fireChannelInactive()
    }
}
