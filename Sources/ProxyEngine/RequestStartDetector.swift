import NIOCore

/// Told when the first byte of a new request arrives.
protocol RequestStartObserver: AnyObject {
    func firstByteArrived()
}

/// Sits in front of the HTTP decoder and tells the connection handler when the first byte of a
/// new request arrives, so the keep-alive idle timer can give way to the (shorter) header-read
/// timer. The decoder only reports complete heads, which is too late to catch a slow client.
///
/// Armed per request by a flag, not a closure: a closure built per keep-alive request was an
/// allocation of its own on every request.
final class RequestStartDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The connection handler; weak, as the pipeline owns both.
    weak var observer: (any RequestStartObserver)?
    /// Set by the connection handler while it waits for a request; fires once, then disarms.
    var armed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if self.armed {
            self.armed = false
            self.observer?.firstByteArrived()
        }
        context.fireChannelRead(data)
    }
}
