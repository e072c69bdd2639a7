import GatewayConfig
import NIOCore
import NIOHTTP1

/// What an upstream connection reports to the exchange currently using it. All calls happen on
/// the connection's event loop, which is also the client connection's loop.
protocol UpstreamExchangeDelegate: AnyObject {
    /// `consuming`: a head's field list is then edited in place, not copied (`RequestPhases.respond`).
    func upstreamReceived(_ part: consuming UpstreamResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged()
    func upstreamClosed(_ connection: UpstreamConnection, error: (any Error)?)
    /// True while the client cannot take more response bytes: the upstream is not read.
    var upstreamShouldPauseReading: Bool { get }
}

/// One keep-alive HTTP/1.1 connection to an upstream endpoint: the last handler of its client
/// channel, speaking HTTP/1.1 itself (`UpstreamRequestWriter`, `UpstreamResponseParser`). It
/// relays response parts to the exchange that leased it, and holds reads back while that
/// exchange's client is not writable (response backpressure).
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let id: Int
    /// The endpoint, and the TLS context the connection was made with: the pool it returns to.
    let target: UpstreamTarget
    var endpoint: GatewaySettings.Endpoint { self.target.endpoint }
    weak var delegate: (any UpstreamExchangeDelegate)?
    /// Called when the connection closes while no exchange holds it (idle in the pool).
    var onIdleClose: (() -> Void)?
    /// While idle in the pool: when its idle time runs out (the pool closes it then).
    var idleUntil: NIODeadline?
    /// Completed exchanges on this connection; a failure on a reused connection may just mean
    /// the upstream closed it while idle, which makes a retry of a replayable request safe.
    var completedExchanges = 0
    private(set) var isClosed = false
    private var context: ChannelHandlerContext?
    private var readPending = false
    private var lastError: (any Error)?
    private var writer = UpstreamRequestWriter()
    private var parser = UpstreamResponseParser()
    /// Bytes read and not yet parsed: part of a head, or after a `101` the new protocol's.
    private var unread: ByteBuffer?
    /// Inside `channelRead`: a removal asked for meanwhile (a WebSocket taking the connection
    /// over at the `101`'s end) waits until the read's parts are handed on.
    private var reading = false
    private var removal: ChannelHandlerContext.RemovalToken?
    /// Bytes written since the last flush. A request without a body asks for a flush three
    /// times (after its head, at its end, at the end of the client's read that brought both);
    /// an empty flush still went down the pipeline to the socket's write path.
    private var unflushed = false

    init(id: Int, target: UpstreamTarget) {
        self.id = id
        self.target = target
    }

    var isWritable: Bool { self.context?.channel.isWritable ?? false }
    /// The connection's channel, while the handler is in its pipeline.
    var channel: (any Channel)? { self.context?.channel }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func write(_ part: UpstreamRequestPart) {
        guard let context = self.context else { return }
        do {
            switch part {
            case .head(let head):
                self.parser.requestSent(head.method)
                context.write(self.wrapOutboundOut(try self.writer.head(head, allocator: context.channel.allocator)), promise: nil)
                self.unflushed = true
            case .body(let data):
                HTTP1Writing.writeBody(data, chunked: self.writer.isChunked, on: context, promise: nil)
                self.unflushed = true
            case .end(let trailers):
                // A body framed by its length ends with nothing to write.
                if let end = try self.writer.end(trailers, allocator: context.channel.allocator) {
                    context.write(self.wrapOutboundOut(end), promise: nil)
                    self.unflushed = true
                }
            }
        } catch {
            self.lastError = error
            context.close(promise: nil)
        }
    }

    func flush() {
        guard self.unflushed else { return }
        self.unflushed = false
        self.context?.flush()
    }

    func close() {
        guard !self.isClosed else { return }
        self.context?.close(promise: nil)
    }

    /// The client drained: deliver the read that was held back.
    func resumeReading() {
        guard self.readPending, let context = self.context else { return }
        self.readPending = false
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        if var unread = self.unread.take() {
            unread.writeBuffer(&buffer)
            buffer = unread
        }
        if self.parser.isUpgraded {
            self.unread = buffer
            return
        }
        guard self.delegate != nil else {
            // Bytes on an idle connection: the upstream is not speaking HTTP/1.1 keep-alive as
            // agreed. The connection cannot be trusted for the next request.
            context.close(promise: nil)
            return
        }
        self.reading = true
        defer { self.finishReading(context: context) }
        do {
            while let part = try self.parser.next(&buffer) {
                if case .end = part, self.parser.isUpgraded {
                    // Bytes behind a `101` belong to the new protocol: kept for whoever takes
                    // the connection over (handed on when this handler leaves the pipeline).
                    self.unread = buffer
                    buffer.clear()
                }
                guard let delegate = self.delegate else {
                    // The exchange let go of the connection inside its response: the rest
                    // cannot be relayed, and the connection is not fit for another one.
                    context.close(promise: nil)
                    return
                }
                delegate.upstreamReceived(part)
            }
        } catch {
            self.lastError = error
            context.close(promise: nil)
            return
        }
        if buffer.readableBytes > 0 {
            buffer.discardReadBytes()
            self.unread = buffer
        }
    }

    private func finishReading(context: ChannelHandlerContext) {
        self.reading = false
        if let removal = self.removal.take() { self.leave(context: context, removal: removal) }
    }

    /// Leaving the pipeline (a WebSocket takes the connection over): the bytes read behind the
    /// `101` go on to the handlers after this one.
    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        if self.reading {
            self.removal = removalToken
        } else {
            self.leave(context: context, removal: removalToken)
        }
    }

    private func leave(context: ChannelHandlerContext, removal: ChannelHandlerContext.RemovalToken) {
        if let unread = self.unread.take(), unread.readableBytes > 0 {
            context.fireChannelRead(self.wrapInboundOut(unread))
        }
        context.leavePipeline(removalToken: removal)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.delegate?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.delegate?.upstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        do {
            if let end = try self.parser.endOfInput(unread: self.unread?.readableBytes ?? 0), let delegate = self.delegate {
                delegate.upstreamReceived(end)
            }
        } catch {
            self.lastError = self.lastError ?? error
        }
        self.isClosed = true
        if let delegate = self.delegate {
            self.delegate = nil
            delegate.upstreamClosed(self, error: self.lastError)
        } else {
            self.onIdleClose?()
        }
        self.onIdleClose = nil
        self.idleUntil = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.lastError = error
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if self.delegate?.upstreamShouldPauseReading == true {
            self.readPending = true
        } else {
            context.read()
        }
    }
}
