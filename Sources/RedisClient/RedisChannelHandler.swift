import Logging
import NIOCore

/// The last handler of a Redis channel: bytes in → hiredis reader → replies out, matched first
/// in, first out with the commands written; commands out as RESP already formatted by hiredis.
///
/// Confined to its event loop (not `Sendable`, plain `var` state). Contracts:
/// - Every promise handed to `send` is completed exactly once: by its reply, or with a
///   `RedisClientError` when the connection closes first (lost, timed out, unparsable, closed).
/// - Writes are flushed once per event-loop tick, not once per command, so a burst of commands
///   issued while serving a batch of requests leaves in one `writev`.
/// - A reply arriving while no command waits goes to `onPush` (the subscriber's messages);
///   without `onPush` it is a protocol error and the connection closes, since every later
///   reply would be matched to the wrong command.
final class RedisChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let promise: EventLoopPromise<RESPValue>
        /// When the reply is overdue; `.distantFuture` without a response timeout.
        let deadline: NIODeadline
        let sent: NIODeadline
    }

    private let reader = HiredisReader()
    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    private var context: ChannelHandlerContext?
    /// Set once the connection is closing or closed: the error every later command gets.
    private var closedWith: RedisClientError?
    private var flushScheduled = false
    private let responseTimeout: TimeAmount?
    private var watchdog: Scheduled<Void>?
    private let logger: Logger
    private let metrics: RedisMetrics?

    /// Unsolicited replies (pub/sub messages), called on the channel's loop.
    var onPush: ((RESPValue) -> Void)?
    /// Sees the message of every error reply after its command got it (a Sentinel-found
    /// connection leaves a primary that answers `READONLY`), on the channel's loop.
    var onErrorReply: ((String) -> Void)?

    /// - Parameter responseTimeout: how long the oldest pending command may wait for its reply
    ///   before the connection is declared dead and closed; `nil` waits forever.
    init(responseTimeout: TimeAmount?, logger: Logger, metrics: RedisMetrics? = nil) {
        self.responseTimeout = responseTimeout
        self.logger = logger
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.shutDown(with: self.closedWith ?? .connectionClosed)
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.shutDown(with: self.closedWith ?? .connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("redis connection error", metadata: ["error": "\(error)"])
        self.close(with: .connectionClosed)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = self.unwrapInboundIn(data)
        guard buffer.withUnsafeReadableBytes({ self.reader.feed($0) }) else {
            self.close(with: .protocolError)
            return
        }
        while self.closedWith == nil, let output = self.reader.next() {
            switch output {
            case .reply(let value):
                self.deliver(value)
            case .protocolError(let message):
                self.logger.error("unparsable reply from redis", metadata: ["hiredis": "\(message)"])
                self.close(with: .protocolError)
            }
        }
    }

    /// Writes `command`; its reply completes `promise`. With no promise the reply is expected
    /// on `onPush` (SUBSCRIBE, whose confirmations are pushes).
    func send(_ command: RedisCommand, promise: EventLoopPromise<RESPValue>?) {
        guard self.closedWith == nil, let context = self.context else {
            promise?.fail(self.closedWith ?? .connectionClosed)
            return
        }
        if let promise {
            let now = NIODeadline.now()
            let deadline = self.responseTimeout.map { now + $0 } ?? .distantFuture
            self.pending.append(Pending(promise: promise, deadline: deadline, sent: now))
            self.armWatchdog()
        }
        context.write(self.wrapOutboundOut(command.bytes), promise: nil)
        if !self.flushScheduled {
            self.flushScheduled = true
            context.eventLoop.assumeIsolated().execute { [weak self] in
                guard let self else { return }
                self.flushScheduled = false
                self.context?.flush()
            }
        }
    }

    /// Closes the connection; every pending command fails with `error`.
    func close(with error: RedisClientError) {
        guard self.closedWith == nil else { return }
        self.closedWith = error
        self.failPending(with: error)
        self.context?.close(promise: nil)
    }

    private func shutDown(with error: RedisClientError) {
        self.closedWith = self.closedWith ?? error
        self.failPending(with: self.closedWith!)
    }

    private func failPending(with error: RedisClientError) {
        self.watchdog?.cancel()
        self.watchdog = nil
        // A failed promise's callbacks may send again; `closedWith` is already set, so those
        // fail at once instead of joining the queue being drained.
        while let next = self.pending.popFirst() {
            next.promise.fail(error)
        }
    }

    private func deliver(_ value: RESPValue) {
        if let next = self.pending.popFirst() {
            self.metrics?.commandDuration.recordNanoseconds((NIODeadline.now() - next.sent).nanoseconds)
            next.promise.succeed(value)
            if let onErrorReply = self.onErrorReply, case .error(let message) = value {
                onErrorReply(message)
            }
        } else if let onPush = self.onPush {
            onPush(value)
        } else {
            self.logger.error("reply from redis that no command asked for")
            self.close(with: .protocolError)
        }
    }

    /// One timer per connection, not per command: it sleeps until the oldest pending
    /// command's deadline and then either closes the connection or sleeps until the next one.
    private func armWatchdog() {
        guard self.responseTimeout != nil, self.watchdog == nil, let head = self.pending.first, let context else { return }
        self.watchdog = context.eventLoop.assumeIsolated().scheduleTask(deadline: head.deadline) { [weak self] in
            self?.watchdogFired()
        }
    }

    private func watchdogFired() {
        self.watchdog = nil
        guard self.closedWith == nil, let head = self.pending.first else { return }
        if head.deadline <= .now() {
            self.logger.warning("redis reply overdue; closing the connection", metadata: ["pending": "\(self.pending.count)"])
            self.close(with: .responseTimeout)
        } else {
            self.armWatchdog()
        }
    }
}
