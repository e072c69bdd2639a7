import GatewayConfig
import NIOCore
import NIOPosix

/// How the upstream pool opens a connection to an endpoint: over TCP in the gateway; in tests,
/// an `EmbeddedChannel` on the client connection's `EmbeddedEventLoop`, so that whole
/// exchanges — forwarding, retries, timeouts — run on a virtual clock without sockets.
protocol UpstreamConnector {
    /// A channel to `endpoint` on `eventLoop`, set up by `initialize` before it is handed out;
    /// fails after `timeout` without a connection (`ChannelError.connectTimeout`) or when the
    /// endpoint refuses.
    func connect(
        to endpoint: GatewaySettings.Endpoint, timeout: TimeAmount, on eventLoop: any EventLoop,
        initialize: @escaping (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel>
}

/// TCP with `TCP_NODELAY`: requests are written whole and flushed once, so Nagle would only
/// delay them.
struct TCPUpstreamConnector: UpstreamConnector {
    func connect(
        to endpoint: GatewaySettings.Endpoint, timeout: TimeAmount, on eventLoop: any EventLoop,
        initialize: @escaping (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try initialize(channel) }
            }
            .connect(host: endpoint.host, port: endpoint.port)
    }
}
