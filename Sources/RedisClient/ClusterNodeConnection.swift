import Logging
import NIOCore

/// One pipelined connection from one event loop to one node of a Redis Cluster, opened when
/// first used and re-opened with `ReconnectBackoff` whenever it is lost: what `RedisClient`'s
/// per-loop slot is for a standalone Redis, per node. (That slot is left as it is so the
/// standalone path stays exactly what it was.)
///
/// Contracts, as for a standalone Redis: while the node is known to be down commands fail at
/// once with `unavailable`; only commands sent before the first connection exists wait for it.
/// `onTrouble` runs on every failed attempt and every lost connection: the router's cue to
/// read the slot map again (the node may have failed over).
///
/// Loop-confined (not `Sendable`).
final class ClusterNodeConnection {
    let node: RedisURL.Node
    let driver: ReconnectingConnection
    /// Only before the first connection is established.
    private var waiting: [(command: RedisCommand, promise: EventLoopPromise<RESPValue>)] = []

    init(
        node: RedisURL.Node, url: RedisURL, eventLoop: any EventLoop, configuration: RedisClient.Configuration, logger: Logger,
        metrics: RedisMetrics, onTrouble: @escaping () -> Void
    ) {
        self.node = node
        self.driver = ReconnectingConnection(url: url.standalone(at: node), eventLoop: eventLoop, configuration: configuration, logger: logger, metrics: metrics)
        self.driver.onEstablished = { [unowned self] connection in
            connection.closeFuture.assumeIsolated().whenComplete { [weak self] _ in
                // Closed on purpose (shut down, or the node left the map): no news.
                if let self, !self.driver.isShutDown { onTrouble() }
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
            onTrouble()
        }
    }

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
