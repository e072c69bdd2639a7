import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The ops listener: `/metrics` (Prometheus text format), `/healthz` (the process serves) and
/// `/readyz` (whether it should get traffic, and every reason it should not), on its own address
/// and port and one event loop. Unauthenticated by design — probes and scrapers carry no
/// credentials — so it belongs on a private interface (docs/operations.md).
///
/// It knows no backend: the executable hands it the rendering of its metrics registry and the
/// readiness of the gateway.
public final class OpsServer: Sendable {
    /// The exposition of every metric, rendered when scraped, completed on the given loop.
    public typealias RenderMetrics = @Sendable (any EventLoop) -> EventLoopFuture<[UInt8]>
    /// The readiness now, completed on the given loop.
    public typealias JudgeReadiness = @Sendable (any EventLoop) -> EventLoopFuture<Readiness>

    private let channel: any Channel

    public var localAddress: SocketAddress? { self.channel.localAddress }

    static let idleTimeout = TimeAmount.seconds(60)

    private init(channel: any Channel) {
        self.channel = channel
    }

    public static func start(
        host: String, port: Int, loop: any EventLoop, metrics: @escaping RenderMetrics, readiness: @escaping JudgeReadiness
    ) async throws -> OpsServer {
        let channel = try await ServerBootstrap(group: loop)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Scrapers keep their connection; one that sends nothing for a minute is closed.
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(OpsConnectionHandler(metrics: metrics, readiness: readiness))
                }
            }
            .bind(host: host, port: port)
            .get()
        return OpsServer(channel: channel)
    }

    public func close() async {
        try? await self.channel.close()
    }
}

/// One ops connection: answers each request once its end has arrived (request bodies are
/// ignored), one at a time (the pipeline's pipelining assistance holds the next one back).
final class OpsConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: OpsServer.RenderMetrics
    private let readiness: OpsServer.JudgeReadiness
    private var head: HTTPRequestHead?

    init(metrics: @escaping OpsServer.RenderMetrics, readiness: @escaping OpsServer.JudgeReadiness) {
        self.metrics = metrics
        self.readiness = readiness
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            self.answer(head, context: context)
        }
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch OpsRoute(method: head.method, uri: head.uri) {
        case .metrics:
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            self.metrics(context.eventLoop).whenComplete { result in
                let (handler, context) = bound.value
                switch result {
                case .success(let bytes):
                    let body = context.channel.allocator.buffer(bytes: bytes)
                    handler.write(.ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: body, head: head, context: context)
                case .failure:
                    let body = context.channel.allocator.buffer(string: "metrics unavailable\n")
                    handler.write(.internalServerError, contentType: "text/plain; charset=utf-8", body: body, head: head, context: context)
                }
            }
        case .health:
            self.write(.ok, contentType: "text/plain; charset=utf-8", body: context.channel.allocator.buffer(string: "ok\n"), head: head, context: context)
        case .readiness:
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            self.readiness(context.eventLoop).whenComplete { result in
                let (handler, context) = bound.value
                // Not knowing is not being ready.
                let readiness = (try? result.get()) ?? Readiness(reasons: [.noConfiguration])
                let body = context.channel.allocator.buffer(string: readiness.json + "\n")
                handler.write(readiness.isReady ? .ok : .serviceUnavailable, contentType: "application/json", body: body, head: head, context: context)
            }
        case .notFound:
            self.write(.notFound, contentType: "text/plain; charset=utf-8", body: context.channel.allocator.buffer(string: "not found\n"), head: head, context: context)
        case .methodNotAllowed:
            self.write(
                .methodNotAllowed, contentType: "text/plain; charset=utf-8", body: context.channel.allocator.buffer(string: "method not allowed\n"),
                head: head, context: context, extra: [("allow", "GET")]
            )
        }
    }

    private func write(
        _ status: HTTPResponseStatus, contentType: String, body: ByteBuffer, head: HTTPRequestHead, context: ChannelHandlerContext,
        extra: [(String, String)] = []
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: "cache-control", value: "no-store")
        for (name, value) in extra { headers.add(name: name, value: value) }
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if body.readableBytes > 0 { context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let done = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
