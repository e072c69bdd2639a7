import Logging
import NIOCore

/// One pipelined connection from one event loop to one Redis server, opened when first used and
/// re-opened with `ReconnectBackoff` whenever it is lost, with the commands that wait for its
/// first connect: a standalone Redis's (or the Sentinel-named primary's) connection of one loop,
/// or a loop's connection to one node of a Redis Cluster.
///
/// Contracts: while the server is known to be down commands fail at once with `unavailable`;
/// only commands sent before the first connection exists wait for it. `onTrouble`, when given,
/// runs on every failed attempt and every lost connection: a cluster router's cue to read the
/// slot map again (the node may have failed over).
///
/// Loop-confined (not `Sendable`).
final class ServerConnection {
    let driver: ReconnectingConnection
    /// Only before the first connection is established.
    private var waiting: [(command: RedisCommand, promise: EventLoopPromise<RESPValue>)] = []

    init(
        url: RedisURL, eventLoop: any EventLoop, configuration: RedisClient.Configuration, logger: Logger,
        metrics: RedisMetrics, onTrouble: (() -> Void)? = nil
    ) {
        self.driver = ReconnectingConnection(url: url, eventLoop: eventLoop, configuration: configuration, logger: logger, metrics: metrics)
        self.driver.onEstablished = { [unowned self] connection in
            if let onTrouble {
                connection.closeFuture.assumeIsolated().whenComplete { [weak self] _ in
                    // Closed on purpose (shut down, or the node left the map): no news.
                    if let self, !self.driver.isShutDown { onTrouble() }
                }
            }
            let waiting = self.waiting
            self.waiting = []
            for (command, promise) in waiting {
                connection.send(command, promise: promise)
            }
        }
        self.driver.onAttemptFailed = { [unowned self] error in
            let waiting = self.waiting
            self.waiting = []
            for (_, promise) in waiting {
                promise.fail(error)
            }
            onTrouble?()
        }
    }

    /// The server connected to (or being connected to).
    var node: RedisURL.Node { self.driver.target.nodes[0] }

    /// False from a failed attempt or a lost connection until the next connection.
    var isAvailable: Bool { self.driver.backoff.isAvailable }

    func send(_ command: RedisCommand, promise: EventLoopPromise<RESPValue>) {
        if self.driver.isShutDown {
            promise.fail(RedisClientError.shutDown)
        } else if let connection = self.driver.connection {
            connection.send(command, promise: promise)
        } else if !self.driver.backoff.isAvailable {
            promise.fail(RedisClientError.unavailable)
        } else {
            self.waiting.append((command, promise))
            self.driver.connectIfIdle()
        }
    }

    func connectIfIdle() {
        if self.driver.connection == nil, !self.driver.isShutDown { self.driver.connectIfIdle() }
    }

    func shutdown() -> EventLoopFuture<Void> {
        let waiting = self.waiting
        self.waiting = []
        for (_, promise) in waiting {
            promise.fail(RedisClientError.shutDown)
        }
        return self.driver.shutdown()
    }
}
