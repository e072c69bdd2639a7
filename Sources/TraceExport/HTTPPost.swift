import NIOCore
import NIOHTTP1
import NIOPosix

/// One plain HTTP/1.1 POST on a connection of its own, answered with the response status: all
/// the exporter needs to reach a collector once per batch, without an HTTP client library.
enum HTTPPost {
    enum Failure: Error, Equatable {
        case timedOut
        case closedBeforeAnswer
    }

    static func send(
        host: String, port: Int, path: String, contentType: String, body: [UInt8], timeout: TimeAmount, on loop: any EventLoop
    ) -> EventLoopFuture<HTTPResponseStatus> {
        let answered = loop.makePromise(of: HTTPResponseStatus.self)
        let deadline = loop.scheduleTask(in: timeout) { answered.fail(Failure.timedOut) }
        answered.futureResult.whenComplete { _ in deadline.cancel() }
        let connected = ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(StatusHandler(answered: answered))
                }
            }
            .connect(host: host, port: port)
        connected.whenFailure { answered.fail($0) }
        connected.whenSuccess { channel in
            var headers = HTTPHeaders()
            headers.add(name: "host", value: "\(host):\(port)")
            headers.add(name: "content-type", value: contentType)
            headers.add(name: "content-length", value: String(body.count))
            headers.add(name: "connection", value: "close")
            let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            // However it ends, the connection goes with it.
            answered.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
        return answered.futureResult
    }

    /// Completes with the response status once the response is complete (the body, a
    /// collector's small acknowledgement, is read and ignored).
    private final class StatusHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart

        private let answered: EventLoopPromise<HTTPResponseStatus>
        private var status: HTTPResponseStatus?

        init(answered: EventLoopPromise<HTTPResponseStatus>) {
            self.answered = answered
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head): self.status = head.status
            case .body: break
            case .end:
                if let status = self.status { self.answered.succeed(status) }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            self.answered.fail(Failure.closedBeforeAnswer)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            self.answered.fail(error)
            context.close(promise: nil)
        }
    }
}
