import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The admin listener: HTTP/1.1 on its own address and port, one event loop, one connection
/// handler that gathers a request and hands it to `AdminService`. Nothing of the data plane
/// runs here, and no admin route is served on the data plane's listener.
public final class AdminServer: Sendable {
    private let channel: any Channel

    public var localAddress: SocketAddress? { self.channel.localAddress }

    static let idleTimeout = TimeAmount.seconds(60)

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// - Parameter tls: with `admin.listener.tls`, every connection is TLS (the certificates are
    ///   chosen per handshake by the context's callback, so a reload swaps them in place).
    public static func start(
        host: String, port: Int, service: AdminService, loop: any EventLoop, logger: Logger, tls: NIOSSLContext? = nil
    ) async throws -> AdminServer {
        let channel = try await ServerBootstrap(group: loop)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    // A connection that sends nothing for this long is closed: admin clients are
                    // few, and none should hold a connection open without using it.
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: Self.idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminConnectionHandler(service: service, logger: logger))
                }
            }
            .bind(host: host, port: port)
            .get()
        return AdminServer(channel: channel)
    }

    public func close() async {
        try? await self.channel.close()
    }
}

/// One admin connection: collects head and body, answers once the service has, one request at
/// a time (the HTTP pipeline's pipelining assistance holds the next one back).
final class AdminConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let service: AdminService
    private let logger: Logger
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    init(service: AdminService, logger: Logger) {
        self.service = service
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body = []
            self.tooLarge = false
        case .body(var buffer):
            if self.body.count + buffer.readableBytes > AdminEngine.maxBodyBytes {
                self.tooLarge = true
            } else if let bytes = buffer.readBytes(length: buffer.readableBytes) {
                self.body += bytes
            }
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            let requestID = head.headers.first(name: "x-request-id").flatMap { Self.acceptableRequestID($0) } ?? Self.newRequestID()
            let request = AdminRequest(
                method: head.method.rawValue, target: head.uri,
                headers: head.headers.map { (name: $0.name.lowercased(), value: $0.value) }, body: self.body, requestID: requestID
            )
            self.body = []
            let keepAlive = head.isKeepAlive && !self.tooLarge
            let answer: EventLoopFuture<AdminResponse>
            if self.tooLarge {
                answer = context.eventLoop.makeSucceededFuture(AdminProblem.bodyTooLarge.response(requestID: requestID))
            } else if let console = ConsoleRoute.answer(request) {
                // The console's static files: no token, no store, nothing of the tree.
                answer = context.eventLoop.makeSucceededFuture(console)
            } else {
                answer = self.service.handle(request, on: context.eventLoop)
            }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            answer.whenSuccess { response in
                let (handler, context) = bound.value
                handler.write(response, requestID: requestID, version: head.version, keepAlive: keepAlive, context: context)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func write(_ response: AdminResponse, requestID: String, version: HTTPVersion, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        headers.add(name: "x-request-id", value: requestID)
        // Admin answers are never cached; the console's files say how they may be.
        if !headers.contains(name: "cache-control") { headers.add(name: "cache-control", value: "no-store") }
        if response.status != 304 { headers.add(name: "content-length", value: String(response.body.utf8.count)) }
        if !keepAlive { headers.add(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: response.body)))), promise: nil)
        }
        let done = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// A client's request id is kept when it is short and plain (it ends up in logs).
    static func acceptableRequestID(_ text: String) -> String? {
        guard (1...128).contains(text.utf8.count), text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) else { return nil }
        return text
    }

    static func newRequestID() -> String {
        let value = UInt64.random(in: .min ... .max)
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
