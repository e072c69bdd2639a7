import Logging
import NIOCore

/// Keeps one `RedisConnection` alive on one event loop: connects, and after a failed attempt or
/// a lost connection tries again when `ReconnectBackoff` says, for as long as it is not shut
/// down. The driver of the backoff state machine: it applies its actions and feeds it events.
///
/// Loop-confined (not `Sendable`); every method runs on `eventLoop`. The callbacks run there too.
final class ReconnectingConnection {
    let eventLoop: any EventLoop
    private let url: RedisURL
    private let configuration: RedisClient.Configuration
    private let logger: Logger
    private let metrics: RedisMetrics?
    private(set) var backoff: ReconnectBackoff
    /// The established connection; `nil` while connecting, backing off, or shut down.
    private(set) var connection: RedisConnection?
    private(set) var isShutDown = false
    private var isConnecting = false
    private var retryTimer: Scheduled<Void>?
    private var random = SystemRandomNumberGenerator()

    /// Where the next attempt connects: `url` itself unless the owner says otherwise (a
    /// Sentinel asked for the current primary, the next seed of a cluster). A failure counts as
    /// a failed attempt.
    var resolveTarget: () -> EventLoopFuture<RedisURL>
    /// The server of the established connection, or of the attempt under way.
    private(set) var target: RedisURL
    /// Runs on each new connection before it counts as established (the subscriber subscribes
    /// here). A failure counts as a failed attempt and closes the connection.
    var prepare: (RedisConnection) -> EventLoopFuture<Void>
    /// A connection is established and prepared.
    var onEstablished: (RedisConnection) -> Void = { _ in }
    /// An attempt failed (the established connection being lost is not an attempt).
    var onAttemptFailed: (RedisClientError) -> Void = { _ in }

    init(url: RedisURL, eventLoop: any EventLoop, configuration: RedisClient.Configuration, logger: Logger, metrics: RedisMetrics? = nil) {
        self.metrics = metrics
        self.url = url
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.logger = logger
        self.backoff = ReconnectBackoff(configuration: configuration.backoff)
        self.prepare = { $0.eventLoop.makeSucceededVoidFuture() }
        self.target = url
        self.resolveTarget = { [eventLoop] in eventLoop.makeSucceededFuture(url) }
    }

    /// Starts an attempt unless one is running, a connection is up, or a retry is scheduled
    /// (a retry is never brought forward: that is what keeps a down Redis from being hammered).
    func connectIfIdle() {
        self.eventLoop.preconditionInEventLoop()
        guard !self.isShutDown, self.connection == nil, !self.isConnecting, self.retryTimer == nil else { return }
        self.attempt()
    }

    /// Attempts now instead of when the backoff's scheduled retry comes, unless an attempt is
    /// running or a connection is up. For news that the target changed (a Sentinel announced a
    /// new primary): the backoff protects a server that is down, not one just named.
    func retryNow() {
        self.eventLoop.preconditionInEventLoop()
        guard !self.isShutDown, self.connection == nil, !self.isConnecting else { return }
        self.retryTimer?.cancel()
        self.attempt()
    }

    /// Cancels any retry and closes the connection. Final.
    func shutdown() -> EventLoopFuture<Void> {
        self.eventLoop.preconditionInEventLoop()
        self.isShutDown = true
        self.retryTimer?.cancel()
        self.retryTimer = nil
        // The callbacks may hold the owner; dropping them breaks the cycle.
        self.prepare = { $0.eventLoop.makeSucceededVoidFuture() }
        self.resolveTarget = { [eventLoop, url] in eventLoop.makeSucceededFuture(url) }
        self.onEstablished = { _ in }
        self.onAttemptFailed = { _ in }
        let connection = self.connection
        self.connection = nil
        if connection != nil { self.metrics?.connections.decrement() }
        return connection?.close() ?? self.eventLoop.makeSucceededVoidFuture()
    }

    private func attempt() {
        self.retryTimer = nil
        self.isConnecting = true
        self.resolveTarget()
        .assumeIsolated()
        .flatMap { [weak self, configuration, logger, metrics, eventLoop] target in
            self?.target = target
            return RedisConnection.connect(
                to: target, on: eventLoop,
                timeout: configuration.connectTimeout,
                responseTimeout: configuration.responseTimeout,
                logger: logger,
                metrics: metrics
            )
        }
        .flatMap { [prepare] connection in
            prepare(connection).assumeIsolated()
                .map { connection }
                .flatMapError { error in
                    connection.close()
                    return connection.eventLoop.makeFailedFuture(error)
                }
                .nonisolated()
        }
        .whenComplete { [weak self] result in
            guard let self else {
                if case .success(let connection) = result { connection.close() }
                return
            }
            self.isConnecting = false
            switch result {
            case .success(let connection):
                self.established(connection)
            case .failure(let error):
                let reason = error as? RedisClientError ?? .connectionFailed
                self.metrics?.connectFailures.increment()
                self.onAttemptFailed(reason)
                self.scheduleRetry(after: reason)
            }
        }
    }

    private func established(_ connection: RedisConnection) {
        guard !self.isShutDown else {
            connection.close()
            return
        }
        if !self.backoff.isAvailable {
            self.logger.info("redis reachable again", metadata: ["redis": "\(self.target)", "failedAttempts": "\(self.backoff.consecutiveFailures)"])
        }
        self.backoff.connected()
        self.connection = connection
        self.metrics?.connections.increment()
        connection.closeFuture.assumeIsolated().whenComplete { [weak self] _ in
            guard let self, self.connection === connection else { return }
            self.metrics?.connections.decrement()
            self.connection = nil
            self.scheduleRetry(after: .connectionClosed)
        }
        self.onEstablished(connection)
    }

    private func scheduleRetry(after reason: RedisClientError) {
        guard !self.isShutDown else { return }
        let wasAvailable = self.backoff.isAvailable
        let now = Int64(clamping: NIODeadline.now().uptimeNanoseconds)
        switch self.backoff.connectionFailed(now: now, using: &self.random) {
        case .retry(let delay):
            // One line per outage, not one per attempt.
            if wasAvailable {
                self.logger.warning("redis unavailable; reconnecting with backoff", metadata: ["redis": "\(self.target)", "reason": "\(reason.slug)"])
            } else {
                self.logger.debug("redis still unavailable", metadata: ["redis": "\(self.target)", "reason": "\(reason.slug)", "retryInMs": "\(delay / 1_000_000)"])
            }
            self.retryTimer = self.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay)) { [weak self] in
                self?.attempt()
            }
        }
    }
}
