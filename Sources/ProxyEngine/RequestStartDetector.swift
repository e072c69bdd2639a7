import NIOCore

/// Sits in front of the HTTP decoder and tells the connection handler when the first byte of a
/// new request arrives, so the keep-alive idle timer can give way to the (shorter) header-read
/// timer. The decoder only reports complete heads, which is too late to catch a slow client.
final class RequestStartDetector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Armed by the connection handler while it waits for a request; fired once, then disarmed.
    var onFirstByte: (() -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let onFirstByte = self.onFirstByte {
            self.onFirstByte = nil
            onFirstByte()
        }
        context.fireChannelRead(data)
    }
}
