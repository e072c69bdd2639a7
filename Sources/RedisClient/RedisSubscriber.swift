import Logging
import NIOCore

/// Listens to Redis pub/sub channels on a connection of its own, and keeps listening: when the
/// connection is lost it reconnects with `ReconnectBackoff` and subscribes again, for as long
/// as it is not shut down. (A subscribed RESP2 connection can carry nothing else, hence its own.)
///
/// Why `onConnected`: messages published while the subscriber was disconnected are gone — pub/sub
/// does not queue them. `onConnected` runs after every successful (re-)subscription, including
/// the first, so the owner can reload what it may have missed (the revoked-token list, the
/// tenant tree version) instead of trusting a stream with a hole in it.
///
/// Contracts:
/// - Both callbacks run on `eventLoop`, one at a time, in the order Redis sent the events.
/// - `onConnected` runs once all `channels` are confirmed. A message on a channel confirmed
///   earlier may be delivered just before it; nothing is delivered twice.
/// - `payload` is the message's bytes, unchanged (binary-safe).
/// - Never gives up; `isConnected` and the logs (one warning per outage) tell an outage.
/// - On a Redis Cluster (`redis-cluster://`) it subscribes on any node — a `PUBLISH` reaches
///   every node's subscribers — and after a loss on the next node in turn
///   (`ClusterSubscriberTargets`).
/// - With a `redis-sentinel://` URL it subscribes on the primary the Sentinels name and moves
///   when they switch (`onConnected` runs again, on the new primary).
public final class RedisSubscriber: Sendable {
    public let eventLoop: any EventLoop
    public let channels: [String]
    private let url: RedisURL
    private let configuration: RedisClient.Configuration
    private let logger: Logger
    private let onConnected: @Sendable () -> Void
    private let onMessage: @Sendable (_ channel: String, _ payload: [UInt8]) -> Void
    private let driver: NIOLoopBoundBox<ReconnectingConnection?>
    /// `redis-sentinel://`: subscribes on the current primary, and moves with it.
    private let sentinel: SentinelPrimaryLocator?
    /// Where each attempt connects instead of `url` (the Sentinel locator's own subscription).
    private let resolveTarget: (@Sendable () -> EventLoopFuture<RedisURL>)?

    /// Does nothing until `start()`.
    /// - Parameters:
    ///   - channels: at least one channel name (exact names, not patterns).
    ///   - configuration: connect timeout and backoff; the response timeout bounds nothing here
    ///     but the login, since a subscription has no replies to wait for.
    public convenience init(
        url: RedisURL,
        channels: [String],
        eventLoop: any EventLoop,
        configuration: RedisClient.Configuration = RedisClient.Configuration(),
        logger: Logger = Logger(label: "erp-gateway.redis.subscriber"),
        onConnected: @escaping @Sendable () -> Void,
        onMessage: @escaping @Sendable (_ channel: String, _ payload: [UInt8]) -> Void
    ) {
        self.init(
            url: url, channels: channels, eventLoop: eventLoop, configuration: configuration, logger: logger,
            resolveTarget: nil, onConnected: onConnected, onMessage: onMessage
        )
    }

    init(
        url: RedisURL,
        channels: [String],
        eventLoop: any EventLoop,
        configuration: RedisClient.Configuration,
        logger: Logger,
        resolveTarget: (@Sendable () -> EventLoopFuture<RedisURL>)?,
        onConnected: @escaping @Sendable () -> Void,
        onMessage: @escaping @Sendable (_ channel: String, _ payload: [UInt8]) -> Void
    ) {
        precondition(!channels.isEmpty, "a subscriber needs at least one channel")
        self.url = url
        self.channels = channels
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.logger = logger
        self.onConnected = onConnected
        self.onMessage = onMessage
        self.driver = NIOLoopBoundBox.makeEmptyBox(valueType: ReconnectingConnection.self, eventLoop: eventLoop)
        self.resolveTarget = resolveTarget
        self.sentinel = SentinelPrimaryLocator(url: url, eventLoop: eventLoop, configuration: configuration, logger: logger, metrics: nil)
    }

    /// Connects and subscribes in the background. Calling it again does nothing.
    public func start() {
        self.eventLoop.execute {
            guard self.driver.value == nil else { return }
            let driver = ReconnectingConnection(url: self.url, eventLoop: self.eventLoop, configuration: self.configuration, logger: self.logger)
            driver.prepare = { [self] connection in self.subscribe(connection) }
            if self.url.topology == .cluster {
                // Any node of a cluster, in turn: see ClusterSubscriberTargets.
                ClusterSubscriberTargets(url: self.url).steer(driver)
            }
            driver.onEstablished = { [self] _ in self.onConnected() }
            if let resolveTarget = self.resolveTarget { driver.resolveTarget = resolveTarget }
            self.sentinel?.follow(driver, leavingOnReadOnly: false)
            self.driver.value = driver
            driver.connectIfIdle()
        }
    }

    /// True while subscribed. Call on `eventLoop`.
    public var isConnected: Bool {
        self.driver.value?.connection != nil
    }

    /// Unsubscribes by closing the connection, and stops reconnecting. Final.
    public func shutdown() -> EventLoopFuture<Void> {
        self.eventLoop.flatSubmit {
            guard let driver = self.driver.value else {
                // Never started: make a later start() a no-op too.
                let driver = ReconnectingConnection(url: self.url, eventLoop: self.eventLoop, configuration: self.configuration, logger: self.logger)
                self.driver.value = driver
                return driver.shutdown()
            }
            let sentinel = self.sentinel
            return driver.shutdown().flatMap { sentinel?.shutdown() ?? self.eventLoop.makeSucceededVoidFuture() }
        }
    }

    /// Sends SUBSCRIBE; succeeds when Redis has confirmed every channel, fails (and the driver
    /// retries) when the connection closes first or the confirmations take longer than the
    /// connect timeout.
    private func subscribe(_ connection: RedisConnection) -> EventLoopFuture<Void> {
        let confirmed = self.eventLoop.makePromise(of: Void.self)
        var awaiting = Set(self.channels)
        connection.setPushHandler { [self] push in
            guard let (kind, channel, payload) = Self.parse(push) else {
                self.logger.warning("unexpected push from redis on a subscribed connection")
                return
            }
            switch kind {
            case "message":
                self.onMessage(channel, payload)
            case "subscribe":
                awaiting.remove(channel)
                if awaiting.isEmpty {
                    confirmed.succeed()
                }
            default:
                break
            }
        }
        let command: RedisCommand
        do {
            command = try RedisCommand(["SUBSCRIBE"] + self.channels)
        } catch {
            confirmed.fail(error)
            return confirmed.futureResult
        }
        connection.sendExpectingPushes(command)
        let timeout = self.eventLoop.scheduleTask(in: self.configuration.connectTimeout) {
            confirmed.fail(RedisClientError.connectionFailed)
        }
        connection.closeFuture.whenComplete { _ in
            confirmed.fail(RedisClientError.connectionClosed)
        }
        confirmed.futureResult.whenComplete { _ in timeout.cancel() }
        return confirmed.futureResult
    }

    /// `[kind, channel, payload-or-count]`, the shape of every RESP2 pub/sub push.
    private static func parse(_ push: RESPValue) -> (kind: String, channel: String, payload: [UInt8])? {
        guard let elements = push.elements, elements.count == 3,
              let kind = elements[0].string, let channel = elements[1].string
        else { return nil }
        return (kind, channel, elements[2].bytes ?? [])
    }
}
