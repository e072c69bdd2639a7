import Logging
import NIOCore
import Synchronization

/// Finds the primary of a master set through its Sentinels (`redis-sentinel://`), and moves the
/// connections that follow it when it changes. It implements the Redis "Sentinel client"
/// guidelines:
///
/// - **Resolution at connect.** Each connection attempt of a follower asks the Sentinels, in
///   order, `SENTINEL get-master-addr-by-name`; the first to answer moves to the front. Attempts
///   that overlap share one round of questions. Nothing is asked on the request path.
/// - **Verification.** A new connection counts only once the server answers `ROLE` with
///   `master`; otherwise the attempt fails (`notPrimary`) and the follower asks again after its
///   backoff's pause.
/// - **Announcements.** One connection subscribes to `+switch-master` on a Sentinel (the next
///   Sentinel when that one is lost; after every (re)subscription the primary is asked again,
///   since announcements made meanwhile are gone). When the primary changes, every follower
///   closes a connection to another server and reconnects to the new one at once.
/// - **Demotion.** A command connection answered `READONLY` (a primary turned replica that no
///   announcement reached us about) closes and resolves again.
///
/// While no primary can be reached the followers' backoff reports Redis unavailable, so
/// commands fail at once (`unavailable`) as with one server.
///
/// Sentinels are asked without credentials; the URL's login is for the primary. With
/// `rediss-sentinel://` both the Sentinels and the primary are spoken to over TLS.
///
/// Thread-safe; its state is confined to `eventLoop`, where resolutions and the announcement
/// subscription run.
final class SentinelPrimaryLocator: Sendable {
    let masterName: String
    let eventLoop: any EventLoop
    private let url: RedisURL
    private let configuration: RedisClient.Configuration
    private let logger: Logger
    private let metrics: RedisMetrics
    private let state: NIOLoopBoundBox<State>

    private struct State {
        var sentinels: SentinelList
        /// The last primary named or announced; `nil` before the first answer.
        var primary: RedisURL.Node?
        /// The round of questions under way, shared by the attempts that overlap it.
        var resolving: EventLoopFuture<RedisURL.Node>?
        var followers: [Follower] = []
        var watcher: RedisSubscriber?
        /// Counts the watcher's connection attempts: attempt n goes to Sentinel n mod count.
        var watchAttempts = 0
        var isShutDown = false
    }

    /// A connection driver that follows the primary, held weakly: it goes with its owner.
    private struct Follower: Sendable {
        let driver: NIOLoopBound<WeakDriver>
    }

    private final class WeakDriver {
        weak var driver: ReconnectingConnection?
        init(_ driver: ReconnectingConnection) { self.driver = driver }
    }

    /// `nil` unless `url` is `redis-sentinel://` (or `rediss-sentinel://`).
    init?(url: RedisURL, eventLoop: any EventLoop, configuration: RedisClient.Configuration, logger: Logger, metrics: RedisMetrics?) {
        guard case .sentinel(let masterName) = url.topology else { return nil }
        self.masterName = masterName
        self.url = url
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics ?? RedisMetrics()
        self.state = NIOLoopBoundBox.makeBoxSendingValue(State(sentinels: SentinelList(url.nodes)), eventLoop: eventLoop)
    }

    /// Makes `driver` connect to the primary: its target is asked of the Sentinels at every
    /// attempt, its connections are verified with `ROLE` before its own `prepare` runs, and it
    /// leaves a server that stops being the primary. With `leavingOnReadOnly`, a `READONLY`
    /// reply closes the connection too (command connections; a subscribed one gets none).
    /// Call on the driver's loop, before its first attempt.
    func follow(_ driver: ReconnectingConnection, leavingOnReadOnly: Bool) {
        driver.eventLoop.preconditionInEventLoop()
        let loop = driver.eventLoop
        let logger = self.logger
        driver.resolveTarget = { [self] in
            self.primaryURL(on: loop)
        }
        let then = driver.prepare
        driver.prepare = { [self] connection in
            if leavingOnReadOnly {
                var left = false
                connection.setErrorReplyHandler { [weak connection] message in
                    guard !left, message.hasPrefix("READONLY"), let connection else { return }
                    left = true
                    logger.warning("redis primary answered READONLY (demoted); reconnecting through the sentinels", metadata: ["master": "\(self.masterName)"])
                    connection.close()
                }
            }
            return self.verifyPrimary(connection).assumeIsolated().flatMap { then(connection) }.nonisolated()
        }
        let follower = Follower(driver: NIOLoopBound(WeakDriver(driver), eventLoop: loop))
        self.eventLoop.execute {
            self.start()
            self.state.value.followers.append(follower)
        }
    }

    /// The primary's URL (the URL's login and database), asked of the Sentinels now; completes
    /// on `loop`. Fails with `primaryUnknown` when no Sentinel names one.
    func primaryURL(on loop: any EventLoop) -> EventLoopFuture<RedisURL> {
        self.eventLoop.flatSubmit {
            self.resolve()
        }
        .map { [url] primary in url.standalone(at: primary) }
        .hop(to: loop)
    }

    /// Stops the announcement subscription. Followers stop with their owners.
    func shutdown() -> EventLoopFuture<Void> {
        self.eventLoop.flatSubmit {
            self.state.value.isShutDown = true
            self.state.value.followers = []
            let watcher = self.state.value.watcher
            self.state.value.watcher = nil
            return watcher?.shutdown() ?? self.eventLoop.makeSucceededVoidFuture()
        }
    }

    // MARK: - On `eventLoop`

    /// Subscribes to the announcements, once.
    private func start() {
        guard self.state.value.watcher == nil, !self.state.value.isShutDown else { return }
        let watcher = RedisSubscriber(
            url: self.sentinelURL(self.url.nodes[0]),
            channels: ["+switch-master"],
            eventLoop: self.eventLoop,
            configuration: self.configuration,
            logger: self.logger,
            resolveTarget: { [self] in
                self.eventLoop.submit {
                    let nodes = self.url.nodes
                    let next = nodes[self.state.value.watchAttempts % nodes.count]
                    self.state.value.watchAttempts += 1
                    return self.sentinelURL(next)
                }
            },
            onConnected: { [self] in
                // Whatever was announced while unsubscribed is lost: ask instead.
                _ = self.resolve()
            },
            onMessage: { [self] _, payload in
                guard let announced = SentinelReplies.Switch(payload: payload), announced.masterName == self.masterName else { return }
                self.adopt(announced.new, from: "+switch-master")
            }
        )
        self.state.value.watcher = watcher
        watcher.start()
    }

    private func resolve() -> EventLoopFuture<RedisURL.Node> {
        if let running = self.state.value.resolving { return running }
        let resolved = self.ask(self.state.value.sentinels.nodes[...])
            .assumeIsolated()
            .map { answer -> RedisURL.Node in
                let (sentinel, primary) = answer
                self.state.value.resolving = nil
                self.state.value.sentinels.answered(sentinel)
                self.adopt(primary, from: "sentinel \(sentinel)")
                return primary
            }
            .flatMapErrorThrowing { error -> RedisURL.Node in
                self.state.value.resolving = nil
                throw error
            }
            .nonisolated()
        self.state.value.resolving = resolved
        return resolved
    }

    /// Asks each of `sentinels` in turn until one names the primary.
    private func ask(_ sentinels: ArraySlice<RedisURL.Node>) -> EventLoopFuture<(sentinel: RedisURL.Node, primary: RedisURL.Node)> {
        guard let sentinel = sentinels.first else {
            return self.eventLoop.makeFailedFuture(RedisClientError.primaryUnknown)
        }
        return self.query(sentinel)
            .map { (sentinel: sentinel, primary: $0) }
            .flatMapError { [self] error in
                self.metrics.sentinelFailures.increment()
                self.logger.debug("redis sentinel did not name the primary", metadata: ["sentinel": "\(sentinel)", "master": "\(self.masterName)", "error": "\(error)"])
                return self.ask(sentinels.dropFirst())
            }
    }

    private func query(_ sentinel: RedisURL.Node) -> EventLoopFuture<RedisURL.Node> {
        let masterName = self.masterName
        // A connection per question: questions come only with connection attempts, and a
        // connection kept open to a Sentinel would be one more thing to keep alive.
        return RedisConnection.connect(
            to: self.sentinelURL(sentinel), on: self.eventLoop,
            timeout: self.configuration.connectTimeout, responseTimeout: self.configuration.connectTimeout,
            logger: self.logger
        )
        .flatMap { connection in
            connection.send(["SENTINEL", "get-master-addr-by-name", masterName]).always { _ in connection.close() }
        }
        .flatMapThrowing { reply in
            guard let primary = SentinelReplies.primaryAddress(reply) else { throw RedisClientError.primaryUnknown }
            return primary
        }
    }

    private func verifyPrimary(_ connection: RedisConnection) -> EventLoopFuture<Void> {
        connection.send(["ROLE"]).flatMapThrowing { [logger, masterName] reply in
            guard SentinelReplies.isPrimary(reply) else {
                logger.debug("redis server named by the sentinels is not a primary", metadata: ["master": "\(masterName)", "role": "\(reply.elements?.first?.string ?? "?")"])
                throw RedisClientError.notPrimary
            }
        }
    }

    /// Takes `primary` as the current one; when it differs from the last, logs the switch and
    /// sends every follower to it.
    private func adopt(_ primary: RedisURL.Node, from source: String) {
        let previous = self.state.value.primary
        guard previous != primary, !self.state.value.isShutDown else { return }
        self.state.value.primary = primary
        if Self.claim(self.url, primary) {
            if let previous {
                self.metrics.primarySwitches.increment()
                self.logger.warning("redis primary switched", metadata: ["master": "\(self.masterName)", "old": "\(previous)", "new": "\(primary)", "source": "\(source)"])
            } else {
                self.logger.info("redis primary found", metadata: ["master": "\(self.masterName)", "primary": "\(primary)", "source": "\(source)"])
            }
        }
        guard previous != nil else { return }
        for follower in self.state.value.followers {
            follower.driver.eventLoop.execute {
                guard let driver = follower.driver.value.driver else { return }
                Self.leave(driver, for: primary)
            }
        }
    }

    /// On the driver's loop: drop a connection to any other server; a driver waiting out its
    /// backoff tries the new primary now.
    private static func leave(_ driver: ReconnectingConnection, for primary: RedisURL.Node) {
        guard !driver.isShutDown else { return }
        if let connection = driver.connection {
            if driver.target.nodes[0] != primary { connection.close() }
        } else {
            driver.retryNow()
        }
    }

    /// A Sentinel: no login, TLS when the URL says `rediss-sentinel://`.
    private func sentinelURL(_ node: RedisURL.Node) -> RedisURL {
        var url = RedisURL(nodes: [node], topology: .standalone)
        url.tls = self.url.tls
        return url
    }

    /// The primary last logged per master set (the URL's Sentinels and name), over the process.
    /// A gateway has several clients and subscribers, each with its own locator; the first to
    /// learn of a switch logs and counts it, so a switch is one line and one count per process.
    private static let logged = Mutex<[RedisURL: RedisURL.Node]>([:])

    private static func claim(_ url: RedisURL, _ primary: RedisURL.Node) -> Bool {
        // Only where the primary is found matters, not the login to it.
        let key = RedisURL(nodes: url.nodes, topology: url.topology)
        return self.logged.withLock { logged in
            guard logged[key] != primary else { return false }
            logged[key] = primary
            return true
        }
    }
}
