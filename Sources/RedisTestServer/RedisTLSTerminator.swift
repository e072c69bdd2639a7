import NIOCore
import NIOPosix
import NIOSSL

/// A TLS port in front of a test's plain redis-server: accepts TLS on a free loopback port and
/// relays the plaintext to the server's port, one connection per client connection; either side
/// closing closes the other. Debian's redis-server is built without TLS (`tls-port` is an
/// unknown directive), so `rediss://` is tested through this: swift-nio-ssl's server side.
public final class RedisTLSTerminator {
    public let port: Int
    private let channel: any Channel

    public init(context: NIOSSLContext, forwardingTo upstreamPort: Int, group: any EventLoopGroup) throws {
        self.channel = try ServerBootstrap(group: group)
            .childChannelInitializer { client in
                ClientBootstrap(group: client.eventLoop)
                    .connect(host: "127.0.0.1", port: upstreamPort)
                    .flatMapThrowing { upstream in
                        try upstream.pipeline.syncOperations.addHandler(Relay(to: client))
                        try client.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                        try client.pipeline.syncOperations.addHandler(Relay(to: upstream))
                    }
            }
            .bind(host: "127.0.0.1", port: 0)
            .wait()
        self.port = self.channel.localAddress!.port!
    }

    /// With the certificate chain and key of PEM files (TLS 1.2 and up).
    public convenience init(certificateChainPath: String, keyPath: String, forwardingTo upstreamPort: Int, group: any EventLoopGroup) throws {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(certificateChainPath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
        )
        configuration.minimumTLSVersion = .tlsv12
        try self.init(context: NIOSSLContext(configuration: configuration), forwardingTo: upstreamPort, group: group)
    }

    public func close() throws {
        try self.channel.close().wait()
    }

    private final class Relay: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let other: any Channel

        init(to other: any Channel) { self.other = other }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            self.other.writeAndFlush(self.unwrapInboundIn(data), promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.other.close(promise: nil)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}

