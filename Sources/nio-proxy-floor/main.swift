// The least an HTTP/1.1 reverse proxy built on SwiftNIO's codecs does per request, for
// bench/compare.sh: what the gateway's proxy-only figure is made of before any of the gateway's
// own work (no request validation, routing, header rewriting, timers, pools, logs or metrics).
//
// Each client connection gets one keep-alive upstream connection on the same event loop.
// Request parts go to the upstream as NIO's server decoder delivered them and response parts
// come back as NIO's client decoder delivered them, through the same handlers the gateway uses
// (`configureHTTPServerPipeline`, `addHTTPClientHandlers`, both with outbound header
// validation as the gateway has it). One event loop, like the benchmark's gateway.
//
// With `--bytes`, the connections relay bytes and no HTTP codec runs at all: the floor of
// SwiftNIO's channels, pipeline and event loop under any HTTP/1 codec.
//
// Usage: nio-proxy-floor PORT UPSTREAM_PORT [--bytes]   (both on 127.0.0.1)

import NIOCore
import NIOHTTP1
import NIOPosix

let arguments = CommandLine.arguments
guard arguments.count >= 3, let port = Int(arguments[1]), let upstreamPort = Int(arguments[2]) else {
    print("usage: nio-proxy-floor PORT UPSTREAM_PORT [--bytes]")
    exit(2)
}
let relaysBytes = arguments.dropFirst(3).contains("--bytes")
let upstreamAddress = try SocketAddress(ipAddress: "127.0.0.1", port: upstreamPort)

/// Connects to the upstream on `client`'s event loop with the handlers `pipeline` adds, then
/// hands the connection to `connected`; the client connection closes if the upstream cannot be
/// reached.
func connectUpstream(
    from client: any Channel,
    pipeline: @escaping @Sendable (any Channel) throws -> Void,
    connected: @escaping (any Channel) -> Void
) {
    ClientBootstrap(group: client.eventLoop)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try pipeline(channel) } }
        .connect(to: upstreamAddress)
        .assumeIsolated()
        .whenComplete { result in
            switch result {
            case .success(let channel): connected(channel)
            case .failure: client.close(promise: nil)
            }
        }
}

/// The client side: relays request parts to its upstream connection and answers with what the
/// upstream sends back.
final class ClientSide: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var context: ChannelHandlerContext?
    private var upstream: Channel?
    /// Parts that arrived before the upstream connection was up.
    private var waiting: [HTTPClientRequestPart] = []

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelActive(context: ChannelHandlerContext) {
        let client = NIOLoopBound(self, eventLoop: context.eventLoop)
        connectUpstream(from: context.channel) { channel in
            try channel.pipeline.syncOperations.addHTTPClientHandlers()
            try channel.pipeline.syncOperations.addHandler(UpstreamSide(client: client.value))
        } connected: { channel in
            self.upstream = channel
            for part in self.waiting { channel.write(part, promise: nil) }
            self.waiting = []
            channel.flush()
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part: HTTPClientRequestPart
        switch self.unwrapInboundIn(data) {
        case .head(let head): part = .head(head)
        case .body(let body): part = .body(.byteBuffer(body))
        case .end(let trailers): part = .end(trailers)
        }
        if let upstream = self.upstream {
            upstream.write(part, promise: nil)
        } else {
            self.waiting.append(part)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.upstream?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.upstream?.close(promise: nil)
        self.upstream = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// A response part from the upstream, written in the order it came.
    func respond(_ part: HTTPClientResponsePart) {
        guard let context = self.context else { return }
        switch part {
        case .head(let head): context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        case .body(let body): context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        case .end(let trailers): context.write(self.wrapOutboundOut(.end(trailers)), promise: nil)
        }
    }

    func flushResponse() { self.context?.flush() }

    func upstreamClosed() {
        self.upstream = nil
        self.context?.close(promise: nil)
    }
}

/// The upstream side: hands every response part to its client connection.
final class UpstreamSide: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let client: ClientSide

    init(client: ClientSide) { self.client = client }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.client.respond(self.unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) { self.client.flushResponse() }

    func channelInactive(context: ChannelHandlerContext) { self.client.upstreamClosed() }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// One side of a byte relay: what one connection reads, the other writes.
final class ByteRelay: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    var peer: Channel?
    /// Bytes that arrived before the upstream connection was up (client side only).
    private var waiting: [ByteBuffer] = []
    private let connectsUpstream: Bool

    init(connectsUpstream: Bool) { self.connectsUpstream = connectsUpstream }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        guard self.connectsUpstream else { return }
        let clientChannel = context.channel
        connectUpstream(from: clientChannel) { channel in
            let back = ByteRelay(connectsUpstream: false)
            back.peer = clientChannel
            try channel.pipeline.syncOperations.addHandler(back)
        } connected: { channel in
            self.peer = channel
            for bytes in self.waiting { channel.write(bytes, promise: nil) }
            self.waiting = []
            channel.flush()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = self.unwrapInboundIn(data)
        if let peer = self.peer { peer.write(bytes, promise: nil) } else { self.waiting.append(bytes) }
    }

    func channelReadComplete(context: ChannelHandlerContext) { self.peer?.flush() }

    func channelInactive(context: ChannelHandlerContext) {
        self.peer?.close(promise: nil)
        self.peer = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 512)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            let sync = channel.pipeline.syncOperations
            if relaysBytes {
                try sync.addHandler(ByteRelay(connectsUpstream: true))
            } else {
                try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
                try sync.addHandler(ClientSide())
            }
        }
    }
    .bind(host: "127.0.0.1", port: port)
    .wait()
print("nio-proxy-floor on 127.0.0.1:\(port) -> 127.0.0.1:\(upstreamPort)")
try server.closeFuture.wait()
