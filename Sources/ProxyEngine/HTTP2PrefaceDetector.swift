import NIOCore
import NIOHTTP1

/// h2c with prior knowledge on a plain listener (`listener.http2.cleartext`): the first bytes of
/// a connection tell HTTP/2's connection preface from an HTTP/1.1 request. It sits in front of
/// the HTTP/1.1 handlers, which serve the connection unless the preface comes; then they make
/// way for HTTP/2's. Either way it leaves the pipeline once it has decided, after the first
/// bytes: an HTTP/1.1 request costs nothing more, a connection one handler.
final class HTTP2PrefaceDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// RFC 9113 §3.4. An HTTP/1.1 request line cannot begin like it: `PRI` is no method.
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    enum Verdict: Equatable {
        case http1
        case http2
        /// Every byte so far is the preface's: wait for more.
        case undecided
    }

    /// What the bytes received so far make of the connection.
    static func classify(_ bytes: ByteBufferView) -> Verdict {
        for (index, byte) in zip(Self.preface.indices, bytes) where byte != Self.preface[index] {
            return .http1
        }
        return bytes.count >= Self.preface.count ? .http2 : .undecided
    }

    private enum State {
        /// The first bytes, while they are a prefix of the preface (at most its 24 bytes).
        case detecting(ByteBuffer?)
        /// The preface came; the HTTP/1.1 handlers are leaving the pipeline (HTTP/2's are added
        /// once the decoder's removal completes) and what arrives meanwhile waits here.
        case switching(ByteBuffer)
        case done
    }

    private let environment: ProxyEnvironment
    private var state = State.detecting(nil)

    init(environment: ProxyEnvironment) {
        self.environment = environment
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        switch self.state {
        case .detecting(let held):
            if var held {
                held.writeBuffer(&bytes)
                bytes = held
            }
            switch Self.classify(bytes.readableBytesView) {
            case .undecided:
                self.state = .detecting(bytes)
            case .http1:
                self.state = .done
                context.fireChannelRead(self.wrapInboundOut(bytes))
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            case .http2:
                self.switchToHTTP2(context, bytes)
            }
        case .switching(var held):
            held.writeBuffer(&bytes)
            self.state = .switching(held)
        case .done:
            context.fireChannelRead(data)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.flushAsHTTP1(context)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { self.flushAsHTTP1(context) }
        context.fireUserInboundEventTriggered(event)
    }

    /// The connection ended within the preface: the HTTP/1.1 handlers answer what came.
    private func flushAsHTTP1(_ context: ChannelHandlerContext) {
        switch self.state {
        case .detecting(let held?):
            self.state = .done
            context.fireChannelRead(self.wrapInboundOut(held))
        case .switching:
            self.state = .done
        case .detecting(nil), .done:
            break
        }
    }

    /// Removes what `GatewayServer.configureClientPipeline` added behind this handler, then,
    /// once the decoder is gone, adds HTTP/2's and hands it the bytes.
    private func switchToHTTP2(_ context: ChannelHandlerContext, _ bytes: ByteBuffer) {
        self.state = .switching(bytes)
        let sync = context.pipeline.syncOperations
        let decoderRemoved = context.eventLoop.makePromise(of: Void.self)
        do {
            sync.removeHandler(context: try sync.context(handlerType: ClientConnectionHandler.self), promise: nil)
            sync.removeHandler(context: try sync.context(handlerType: ClientRequestDecoder.self), promise: decoderRemoved)
        } catch {
            decoderRemoved.fail(error)
        }
        decoderRemoved.futureResult.assumeIsolated().whenComplete { result in
            guard case .switching(let bytes) = self.state else { return }
            self.state = .done
            do {
                try result.get()
                try GatewayServer.configureHTTP2Connection(context.channel, environment: self.environment, transport: .plain)
            } catch {
                context.close(promise: nil)
                return
            }
            context.fireChannelRead(self.wrapInboundOut(bytes))
            context.fireChannelReadComplete()
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
