import NIOCore
import NIOHTTP1

/// Told when the first byte of a new request arrives.
protocol RequestStartObserver: AnyObject {
    func firstByteArrived()
}

/// The first handler of an HTTP/1.1 client connection: reads the client's requests with
/// `ClientRequestParser` and hands their parts to the connection handler — one call per part,
/// directly (`consumer`) — where SwiftNIO's `HTTPRequestDecoder` under a `ByteToMessageHandler`
/// sent each down the pipeline (one handler where those were two, and the first-byte detector
/// in front of them a third).
///
/// It tells the connection handler when the first byte of a new request arrives, so the
/// keep-alive idle timer can give way to the (shorter) header-read timer: complete heads come
/// too late to catch a slow client. Armed per request by a flag, not a closure: a closure
/// built per keep-alive request was an allocation of its own on every request.
///
/// A parser error goes down the pipeline once (`errorCaught`, an `HTTPParserError`); nothing
/// read after it is parsed. After a `CONNECT` or an upgrade nothing more is parsed either, and
/// what is left when the handler leaves the pipeline (a WebSocket's tunnel takes over) is
/// dropped: RFC 6455 §4.1 has the client wait for the `101` before it sends a frame.
final class ClientRequestDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ClientRequestPart

    /// The connection handler; weak, as the pipeline owns both.
    weak var observer: (any RequestStartObserver)?
    /// The connection handler behind this decoder, handed each part directly rather than
    /// through the pipeline; without one (a decoder alone), parts go down the pipeline. The
    /// pipeline's hop boxed each part in an `NIOAny` and cast it back, twice per request.
    weak var consumer: ClientConnectionHandler?
    /// Set by the connection handler while it waits for a request; fires once, then disarms.
    var armed = false

    private var parser: ClientRequestParser
    /// Bytes read and not parsed yet: the start of a part not whole yet. Emptied between reads
    /// (`Self.nothing`), so an idle connection holds no read buffer.
    private var unread = ClientRequestDecoder.nothing
    private static let nothing = ByteBuffer()
    /// A part is being handed on: a read it causes is parsed by the loop already running.
    private var handingOn = false
    private var failed = false

    /// - Parameter maxHeadBytes: the most bytes a head (request line and fields) may take.
    init(maxHeadBytes: Int) {
        self.parser = ClientRequestParser(maxHeadBytes: maxHeadBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.armed {
            self.armed = false
            self.observer?.firstByteArrived()
        }
        // After an error nothing is read; after a `CONNECT` or an upgrade nothing is HTTP, and
        // what follows would only pile up until the handler leaves (then it is dropped): it is
        // dropped as it comes, so a client that sends on cannot grow the connection's memory.
        guard !self.failed, !self.parser.isUpgraded else { return }
        var bytes = self.unwrapInboundIn(data)
        if self.unread.readableBytes == 0 {
            self.unread = bytes
        } else {
            self.unread.writeBuffer(&bytes)
        }
        self.parseAndHandOn(context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, !self.failed {
            // The client half-closed: a request it left unfinished is an error (llhttp's "stream
            // ended at an unexpected time"), answered before the event is passed on.
            do {
                try self.parser.endOfInput(unread: self.unread.readableBytes)
            } catch {
                self.failed = true
                self.unread = Self.nothing
                context.fireErrorCaught(error)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Bytes read and held, not parsed yet.
    var heldBytes: Int { self.unread.readableBytes }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.unread = Self.nothing
    }

    private func parseAndHandOn(context: ChannelHandlerContext) {
        guard !self.handingOn else { return }
        self.handingOn = true
        defer { self.handingOn = false }
        // Asked until it has nothing: a part can be owed with no bytes left (the `.end` of a
        // request without a body).
        while !self.failed {
            let part: ClientRequestPart?
            do {
                part = try self.parser.next(&self.unread)
            } catch {
                self.failed = true
                self.unread = Self.nothing
                context.fireErrorCaught(error)
                return
            }
            guard let part else {
                if self.unread.readableBytes == 0 { self.unread = Self.nothing }
                return
            }
            if let consumer = self.consumer {
                consumer.requestPartDecoded(part)
            } else {
                context.fireChannelRead(self.wrapInboundOut(part))
            }
        }
    }
}

/// The client connection's decoder as a handler of its own, outside a connection: for
/// `request-decode-benchmark` (bench/request-decode.sh), which times it against SwiftNIO's.
@_spi(Benchmarks) public func makeClientRequestDecoder(maxHeadBytes: Int) -> any ChannelHandler {
    ClientRequestDecoder(maxHeadBytes: maxHeadBytes)
}
