import Logging
import NIOCore
import NIOPosix

/// One TCP connection to Redis, bound to one event loop, with many commands in flight
/// (pipelined) and replies matched to commands in order.
///
/// Why one loop: a command written on the connection's own loop costs a buffer append (about
/// 530k pipelined EVALSHA/s measured here); one written from another thread costs a cross-thread
/// hop (about 41k/s). So open the connection on the loop that serves the requests which use it,
/// and send from that loop. Sending from elsewhere is correct, only slower.
///
/// Contracts:
/// - `send` never blocks. Its future completes on `eventLoop`: with the reply — an error reply
///   too, as `RESPValue.error` — or with a `RedisClientError` (`connectionClosed`,
///   `responseTimeout`, `protocolError`, `emptyCommand`). When the connection is lost every
///   pending command fails at once; none is retried (it may have run).
/// - After the first failure the connection stays closed; make a new one (`RedisClient`
///   does, with backoff).
public final class RedisConnection: Sendable {
    public let eventLoop: any EventLoop
    private let channel: any Channel
    private let handler: NIOLoopBound<RedisChannelHandler>

    private init(channel: any Channel, handler: RedisChannelHandler) {
        self.eventLoop = channel.eventLoop
        self.channel = channel
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
    }

    /// Connects, then logs in and selects the database in one pipelined round trip: `AUTH`
    /// (with the username when the URL has one), `SELECT` when the database is not 0, or a
    /// `PING` when there is neither, so that the future only succeeds once Redis has answered.
    ///
    /// - Parameters:
    ///   - timeout: bounds the TCP connect and, separately, the setup round trip.
    ///   - responseTimeout: how long the oldest pending command may go unanswered before the
    ///     connection is closed as dead (`RedisClientError.responseTimeout`); `nil` never.
    ///     Leave it `nil` for blocking commands (`BLPOP`) and long scripts.
    /// - Returns: a future on `eventLoop` failing with `connectionFailed`,
    ///   `authenticationFailed` or `handshakeFailed`.
    public static func connect(
        to url: RedisURL,
        on eventLoop: any EventLoop,
        timeout: TimeAmount = .seconds(1),
        responseTimeout: TimeAmount? = nil,
        logger: Logger = Logger(label: "erp-gateway.redis"),
        metrics: RedisMetrics? = nil
    ) -> EventLoopFuture<RedisConnection> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // `rediss://`: TLS first; the setup round trip below completes only after
                    // the handshake (a refused certificate fails it as `connectionFailed`).
                    if let tls = url.tls {
                        try channel.pipeline.syncOperations.addHandler(tls.handler(connectingTo: url.host))
                    }
                    try channel.pipeline.syncOperations.addHandler(RedisChannelHandler(responseTimeout: responseTimeout, logger: logger, metrics: metrics))
                }
            }
            .connect(host: url.host, port: url.port)
            .flatMapErrorThrowing { error in
                logger.debug("redis connect failed", metadata: ["redis": "\(url)", "error": "\(error)"])
                throw RedisClientError.connectionFailed
            }
            .flatMapThrowing { channel in
                RedisConnection(channel: channel, handler: try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self))
            }
            .flatMap { connection in
                connection.setUp(url, timeout: timeout, logger: logger)
            }
    }

    /// Sends one command (`["SET", "key", "value"]`).
    public func send(_ arguments: [String]) -> EventLoopFuture<RESPValue> {
        do {
            return self.send(try RedisCommand(arguments))
        } catch {
            return self.eventLoop.makeFailedFuture(error)
        }
    }

    /// Sends one command whose arguments are arbitrary bytes (binary-safe: NUL bytes included).
    public func send(_ arguments: [[UInt8]]) -> EventLoopFuture<RESPValue> {
        do {
            return self.send(try RedisCommand(arguments))
        } catch {
            return self.eventLoop.makeFailedFuture(error)
        }
    }

    /// Closes the connection; commands still pending fail with `connectionClosed`. Succeeds
    /// also when the connection was already closed.
    @discardableResult
    public func close() -> EventLoopFuture<Void> {
        self.channel.close().flatMapErrorThrowing { error in
            if let error = error as? ChannelError, error == .alreadyClosed { return }
            throw error
        }
    }

    /// Succeeds when the connection has closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { self.channel.closeFuture }

    func send(_ command: RedisCommand) -> EventLoopFuture<RESPValue> {
        let promise = self.eventLoop.makePromise(of: RESPValue.self)
        self.send(command, promise: promise)
        return promise.futureResult
    }

    func send(_ command: RedisCommand, promise: EventLoopPromise<RESPValue>) {
        if self.eventLoop.inEventLoop {
            self.handler.value.send(command, promise: promise)
        } else {
            self.eventLoop.execute {
                self.handler.value.send(command, promise: promise)
            }
        }
    }

    /// Writes a command whose replies arrive as pushes (SUBSCRIBE). On the loop only.
    func sendExpectingPushes(_ command: RedisCommand) {
        self.handler.value.send(command, promise: nil)
    }

    /// Routes replies no command is waiting for to `handler`. On the loop only.
    func setPushHandler(_ handler: @escaping (RESPValue) -> Void) {
        self.handler.value.onPush = handler
    }

    /// Shows `handler` the message of every error reply, after the command's future has it.
    /// On the loop only.
    func setErrorReplyHandler(_ handler: @escaping (String) -> Void) {
        self.handler.value.onErrorReply = handler
    }

    private func setUp(_ url: RedisURL, timeout: TimeAmount, logger: Logger) -> EventLoopFuture<RedisConnection> {
        var commands: [[String]] = []
        if let password = url.password {
            commands.append(url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if url.database != 0 {
            commands.append(["SELECT", String(url.database)])
        }
        if commands.isEmpty {
            commands.append(["PING"])
        }
        let replies = commands.map { self.send($0) }
        // Only the setup round trip is bounded here; later commands follow `responseTimeout`.
        let deadline = self.eventLoop.scheduleTask(in: timeout) { [channel] in
            channel.close(promise: nil)
        }
        let names = commands.map { $0[0] }
        return EventLoopFuture.whenAllComplete(replies, on: self.eventLoop)
            .flatMapThrowing { results in
                deadline.cancel()
                for (name, result) in zip(names, results) {
                    switch result {
                    case .failure:
                        throw RedisClientError.connectionFailed
                    case .success(.error(let message)):
                        logger.warning("redis refused connection setup", metadata: ["redis": "\(url)", "command": "\(name)", "reply": "\(message.prefix(80))"])
                        if name == "AUTH" || message.hasPrefix("NOAUTH") {
                            throw RedisClientError.authenticationFailed
                        }
                        throw RedisClientError.handshakeFailed
                    case .success:
                        continue
                    }
                }
                return self
            }
            .flatMapError { error in
                self.channel.close(promise: nil)
                return self.eventLoop.makeFailedFuture(error)
            }
    }
}
