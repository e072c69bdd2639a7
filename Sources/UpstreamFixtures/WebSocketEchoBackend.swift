import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A WebSocket backend on loopback that echoes: the upstream of the gateway's WebSocket tests.
///
/// - A handshake on any path is accepted (NIOWebSocket's server upgrader) with the first
///   subprotocol the client offered, if any. Right behind its `101` it sends a text frame
///   `hello` (often in the same read as the `101`: a relay must pass those bytes on).
/// - Text and binary messages come back as they came; a ping gets its pong; a close frame gets
///   a close frame back, then the connection closes.
/// - Any other request gets `200 plain` (health checks, and a handshake forwarded as a plain GET
///   would show as one).
public final class WebSocketEchoBackend: Sendable {
    public struct Statistics: Sendable, Equatable {
        public var handshakes = 0
        /// Sockets open now.
        public var openSockets = 0
        /// Data frames echoed.
        public var echoed = 0
        /// The close codes the backend received, in order.
        public var closeCodes: [UInt16] = []
        /// The `Sec-WebSocket-Protocol` and `Authorization` of the last handshake (nil: absent).
        public var lastOfferedProtocols: String?
        public var lastAuthorization: String?
        public var plainRequests = 0
    }

    private let channel: any Channel
    private let counters: NIOLockedValueBox<Statistics>
    private let sockets: NIOLockedValueBox<[ObjectIdentifier: any Channel]>

    public var port: Int { self.channel.localAddress?.port ?? 0 }
    public var statistics: Statistics { self.counters.withLockedValue { $0 } }

    private init(channel: any Channel, counters: NIOLockedValueBox<Statistics>, sockets: NIOLockedValueBox<[ObjectIdentifier: any Channel]>) {
        self.channel = channel
        self.counters = counters
        self.sockets = sockets
    }

    public static func start(group: any EventLoopGroup) async throws -> WebSocketEchoBackend {
        let counters = NIOLockedValueBox(Statistics())
        let sockets = NIOLockedValueBox([ObjectIdentifier: any Channel]())
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: 1 << 20,
                    shouldUpgrade: { channel, head in
                        counters.withLockedValue {
                            $0.lastOfferedProtocols = head.headers["sec-websocket-protocol"].first
                            $0.lastAuthorization = head.headers["authorization"].first
                        }
                        var headers = HTTPHeaders()
                        if let first = head.headers[canonicalForm: "sec-websocket-protocol"].first {
                            headers.add(name: "Sec-WebSocket-Protocol", value: String(first))
                        }
                        return channel.eventLoop.makeSucceededFuture(headers)
                    },
                    upgradePipelineHandler: { channel, _ in
                        counters.withLockedValue {
                            $0.handshakes += 1
                            $0.openSockets += 1
                        }
                        sockets.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
                        channel.closeFuture.whenComplete { _ in
                            counters.withLockedValue { $0.openSockets -= 1 }
                            _ = sockets.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
                        }
                        return channel.eventLoop.makeCompletedFuture {
                            // The plain handler sat behind the HTTP codec; frames go to the echo.
                            let sync = channel.pipeline.syncOperations
                            sync.removeHandler(context: try sync.context(handlerType: PlainHandler.self), promise: nil)
                            try sync.addHandler(EchoHandler(counters: counters))
                        }
                    }
                )
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
                    )
                    try channel.pipeline.syncOperations.addHandler(PlainHandler(counters: counters))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return WebSocketEchoBackend(channel: channel, counters: counters, sockets: sockets)
    }

    public func stop() async {
        try? await self.channel.close()
        for socket in self.sockets.withLockedValue({ Array($0.values) }) {
            try? await socket.close()
        }
    }
}

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let counters: NIOLockedValueBox<WebSocketEchoBackend.Statistics>

    init(counters: NIOLockedValueBox<WebSocketEchoBackend.Statistics>) {
        self.counters = counters
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Added as the upgrader writes the `101`: the greeting follows it at once.
        let greeting = context.channel.allocator.buffer(string: "hello")
        context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: greeting)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            self.counters.withLockedValue { $0.echoed += 1 }
            context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
        case .ping:
            context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            var payload = frame.unmaskedData
            let code = payload.readInteger(as: UInt16.self) ?? 1005
            self.counters.withLockedValue { $0.closeCodes.append(code) }
            var answer = context.channel.allocator.buffer(capacity: 2)
            answer.writeInteger(code)
            context.writeAndFlush(self.wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: answer))).whenComplete { _ in
                context.close(promise: nil)
            }
        default:
            break
        }
    }
}

private final class PlainHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let counters: NIOLockedValueBox<WebSocketEchoBackend.Statistics>

    init(counters: NIOLockedValueBox<WebSocketEchoBackend.Statistics>) {
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = self.unwrapInboundIn(data) else { return }
        self.counters.withLockedValue { $0.plainRequests += 1 }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "5")
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: "plain")))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }
}
