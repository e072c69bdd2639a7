import Logging
import NIOCore

/// A Redis Cluster as one event loop sees it: its copy of the slot map and its connections, one
/// per node it talks to — so a command costs a slot lookup (one array read) and a buffer append
/// on a connection of its own loop, with no lock and no thread hop.
///
/// Routing, in order, for one command:
/// 1. No map yet: wait for the first one (bounded by the connect timeouts of the nodes tried);
///    while none could be read, fail at once with `unavailable`.
/// 2. The primary of the command's slot (a keyless command: the primaries in turn). A slot no
///    shard serves fails with `unavailable`.
/// 3. `MOVED slot node`: ask `RedisClusterClient` for a new map (coalesced over every loop) and
///    send the command again to `node` at once; `ASK slot node`: send `ASKING` and the command
///    to `node`, map unchanged. At most `maximumRedirects` of them, then the reply is the
///    last error.
/// 4. `CLUSTERDOWN`/`TRYAGAIN`: fail with `unavailable`, like a node known to be down, so the
///    callers' fail modes apply.
///
/// Loop-confined (not `Sendable`); every method runs on `eventLoop`.
final class ClusterLoopRouter {
    static let maximumRedirects = 5

    let eventLoop: any EventLoop
    private weak var cluster: RedisClusterClient?
    private let url: RedisURL
    private let configuration: RedisClient.Configuration
    private let logger: Logger
    private let metrics: RedisMetrics

    private var map: RedisSlotMap?
    /// Set when reading a map failed and none was ever read: commands fail fast meanwhile.
    private var mapUnavailable = false
    /// Commands (and scans) waiting for the first map; given nil once it is in, or the error.
    private var awaitingMap: [(RedisClientError?) -> Void] = []
    /// Every node this loop has a connection to (primaries, and redirect targets not yet in
    /// the map).
    private var connections: [RedisURL.Node: ServerConnection] = [:]
    /// The connection to each shard's primary, by shard index of `map`; filled on first use.
    private var shardConnections: [ServerConnection?] = []
    /// `connect()` was called: open every primary's connection as soon as the map is known.
    private var openEveryShard = false
    private var nextKeyless = 0
    private var lastRefreshRequest = NIODeadline.uptimeNanoseconds(0)
    private(set) var isShutDown = false

    init(cluster: RedisClusterClient, eventLoop: any EventLoop, url: RedisURL, configuration: RedisClient.Configuration, logger: Logger, metrics: RedisMetrics) {
        self.cluster = cluster
        self.eventLoop = eventLoop
        self.url = url
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
    }

    // MARK: Commands

    /// - Parameter slot: the slot of the command's key; nil for a keyless command.
    func send(_ command: RedisCommand, slot: Int?, promise: EventLoopPromise<RESPValue>) {
        guard !self.isShutDown else {
            promise.fail(RedisClientError.shutDown)
            return
        }
        guard let map = self.map else {
            self.awaitMap { [unowned self] error in
                if let error { promise.fail(error) } else { self.send(command, slot: slot, promise: promise) }
            }
            return
        }
        let shard: Int
        if let slot {
            guard let owner = map.shardIndex(forSlot: slot) else {
                self.requestRefresh()
                promise.fail(RedisClientError.unavailable)
                return
            }
            shard = owner
        } else {
            shard = self.nextKeyless % map.shards.count
            self.nextKeyless &+= 1
        }
        self.dispatch(command, to: self.shardConnection(shard), asking: false, redirectsLeft: Self.maximumRedirects, promise: promise)
    }

    /// Every key matching `pattern` on every primary (`SCAN` sees one node's keys only).
    func scanKeys(matching pattern: String, count: Int, promise: EventLoopPromise<[String]>) {
        guard !self.isShutDown else {
            promise.fail(RedisClientError.shutDown)
            return
        }
        guard let map = self.map else {
            self.awaitMap { [unowned self] error in
                if let error { promise.fail(error) } else { self.scanKeys(matching: pattern, count: count, promise: promise) }
            }
            return
        }
        // One connection per shard for the whole scan: a cursor belongs to the node that gave it.
        let scans = map.shards.indices.map { index in
            self.scan(self.shardConnection(index), cursor: "0", pattern: pattern, count: count, collected: [])
        }
        EventLoopFuture.whenAllSucceed(scans, on: self.eventLoop).map { $0.flatMap { $0 } }.cascade(to: promise)
    }

    /// False only while every primary of the map is known to be down from this loop, or no map
    /// could be read at all: a shard down fails its own keys (fast) and no others.
    var isAvailable: Bool {
        guard self.map != nil else { return !self.mapUnavailable }
        for connection in self.shardConnections where connection?.isAvailable ?? true {
            return true
        }
        return false
    }

    /// Whether the shard serving `slot` is reachable as far as this loop knows.
    func isAvailable(slot: Int) -> Bool {
        guard let map = self.map else { return !self.mapUnavailable }
        guard let shard = map.shardIndex(forSlot: slot) else { return false }
        return self.shardConnections[shard]?.isAvailable ?? true
    }

    var hasMap: Bool { self.map != nil }

    /// Opens every primary's connection now (and again after each new map).
    func connect() {
        self.openEveryShard = true
        if let map = self.map {
            for index in map.shards.indices { self.shardConnection(index).connectIfIdle() }
        } else {
            self.requestRefresh()
        }
    }

    func shutdown() -> EventLoopFuture<Void> {
        self.isShutDown = true
        let awaiting = self.awaitingMap
        self.awaitingMap = []
        for resume in awaiting { resume(RedisClientError.shutDown) }
        let closed = self.connections.values.map { $0.shutdown() }
        self.connections = [:]
        self.shardConnections = []
        return EventLoopFuture.andAllComplete(closed, on: self.eventLoop)
    }

    // MARK: The map

    /// A new map (from this loop or another): route by it, drop connections to nodes that no
    /// longer serve any slot, and release what waited for a map.
    func install(_ map: RedisSlotMap) {
        guard !self.isShutDown else { return }
        if self.map != map {
            let primaries = Set(map.shards.map(\.primary))
            for (node, connection) in self.connections where !primaries.contains(node) {
                _ = connection.shutdown()
                self.connections[node] = nil
            }
            self.map = map
            self.shardConnections = map.shards.map { self.connections[$0.primary] }
        }
        self.mapUnavailable = false
        if self.openEveryShard {
            for index in map.shards.indices { self.shardConnection(index).connectIfIdle() }
        }
        self.resumeAwaiting(with: nil)
    }

    /// Reading a map failed everywhere. A loop with a map keeps routing by it; one without
    /// fails what waits for it, and fails fast until a map is read.
    func mapRefreshFailed() {
        guard !self.isShutDown, self.map == nil else { return }
        self.mapUnavailable = true
        self.resumeAwaiting(with: RedisClientError.unavailable)
    }

    /// Reads `CLUSTER SLOTS` from the first node that answers: nodes this loop is connected to
    /// (no connect needed), then every node of the map it has, then the URL's seeds.
    func fetchMap() -> EventLoopFuture<RedisSlotMap> {
        var candidates: [RedisURL.Node] = []
        var seen = Set<RedisURL.Node>()
        let connected = self.connections.values.filter { $0.driver.connection != nil }.map(\.node)
        for node in connected + (self.map?.nodes ?? []) + self.url.nodes where seen.insert(node).inserted {
            candidates.append(node)
        }
        return self.fetchMap(from: candidates, at: 0)
    }

    private func fetchMap(from candidates: [RedisURL.Node], at index: Int) -> EventLoopFuture<RedisSlotMap> {
        guard index < candidates.count else {
            return self.eventLoop.makeFailedFuture(RedisClientError.unavailable)
        }
        let node = candidates[index]
        let reply: EventLoopFuture<RESPValue>
        if let connection = self.connections[node]?.driver.connection {
            reply = connection.send(Self.clusterSlots)
        } else {
            reply = RedisConnection.connect(
                to: self.url.standalone(at: node), on: self.eventLoop, timeout: self.configuration.connectTimeout,
                responseTimeout: self.configuration.responseTimeout, logger: self.logger
            ).flatMap { connection in
                connection.send(Self.clusterSlots).always { _ in connection.close() }
            }
        }
        return reply.assumeIsolated().flatMapThrowing { reply in
            let map = try RedisSlotMap(clusterSlots: reply, askedHost: node.host)
            guard !map.shards.isEmpty else { throw RedisSlotMap.Malformed(description: "no slot served") }
            return map
        }.flatMapError { error in
            self.logger.debug("cannot read the cluster's slot map here", metadata: ["redis": "\(node)", "error": "\(error)"])
            return self.fetchMap(from: candidates, at: index + 1)
        }.nonisolated()
    }

    // MARK: Private

    private func awaitMap(_ resume: @escaping (RedisClientError?) -> Void) {
        if self.mapUnavailable {
            // Known to be away: fail fast, and look again (the refresh is rate-limited).
            self.requestRefresh()
            resume(RedisClientError.unavailable)
            return
        }
        self.awaitingMap.append(resume)
        self.requestRefresh()
    }

    private func resumeAwaiting(with error: RedisClientError?) {
        let awaiting = self.awaitingMap
        self.awaitingMap = []
        for resume in awaiting { resume(error) }
    }

    /// Asks for a new map, at most once per `minimumRefreshInterval` from this loop while it
    /// has one: a shard down refuses every command for it, and each refusal asks — this keeps
    /// those requests off the shared lock.
    private func requestRefresh() {
        guard !self.isShutDown else { return }
        let now = NIODeadline.now()
        if self.map != nil, now - self.lastRefreshRequest < RedisClusterClient.minimumRefreshInterval { return }
        self.lastRefreshRequest = now
        self.cluster?.refreshMap(requestedBy: self)
    }

    private func shardConnection(_ index: Int) -> ServerConnection {
        if let connection = self.shardConnections[index] { return connection }
        let connection = self.connection(to: self.map!.shards[index].primary)
        self.shardConnections[index] = connection
        return connection
    }

    private func connection(to node: RedisURL.Node) -> ServerConnection {
        if let connection = self.connections[node] { return connection }
        let connection = ServerConnection(
            url: self.url.standalone(at: node), eventLoop: self.eventLoop, configuration: self.configuration, logger: self.logger, metrics: self.metrics,
            onTrouble: { [weak self] in self?.requestRefresh() }
        )
        self.connections[node] = connection
        return connection
    }

    private func dispatch(_ command: RedisCommand, to connection: ServerConnection, asking: Bool, redirectsLeft: Int, promise: EventLoopPromise<RESPValue>) {
        if asking {
            // Its reply only matters through the command's: without it the node answers MOVED.
            connection.send(Self.asking, promise: self.eventLoop.makePromise())
        }
        let reply = self.eventLoop.makePromise(of: RESPValue.self)
        connection.send(command, promise: reply)
        reply.futureResult.assumeIsolated().whenComplete { result in
            switch result {
            case .success(.error(let message)):
                guard let redirect = RedisClusterRedirect(errorReply: message, askedHost: connection.node.host) else {
                    promise.succeed(.error(message))
                    return
                }
                switch redirect {
                case .unavailable:
                    self.requestRefresh()
                    promise.fail(RedisClientError.unavailable)
                case .moved(_, let node):
                    self.metrics.movedRedirects.increment()
                    self.requestRefresh()
                    self.redirect(command, to: node, asking: false, redirectsLeft: redirectsLeft, lastReply: message, promise: promise)
                case .ask(_, let node):
                    self.metrics.askRedirects.increment()
                    self.redirect(command, to: node, asking: true, redirectsLeft: redirectsLeft, lastReply: message, promise: promise)
                }
            case .success(let value):
                promise.succeed(value)
            case .failure(let error):
                if error as? RedisClientError == .unavailable { self.requestRefresh() }
                promise.fail(error)
            }
        }
    }

    private func redirect(
        _ command: RedisCommand, to node: RedisURL.Node, asking: Bool, redirectsLeft: Int, lastReply: String, promise: EventLoopPromise<RESPValue>
    ) {
        guard redirectsLeft > 0, !self.isShutDown else {
            promise.succeed(.error(lastReply))
            return
        }
        self.dispatch(command, to: self.connection(to: node), asking: asking, redirectsLeft: redirectsLeft - 1, promise: promise)
    }

    private func scan(_ connection: ServerConnection, cursor: String, pattern: String, count: Int, collected: [String]) -> EventLoopFuture<[String]> {
        let reply = self.eventLoop.makePromise(of: RESPValue.self)
        do {
            self.dispatch(try RedisCommand(["SCAN", cursor, "MATCH", pattern, "COUNT", String(count)]), to: connection, asking: false, redirectsLeft: 0, promise: reply)
        } catch {
            reply.fail(error)
        }
        return reply.futureResult.assumeIsolated().flatMap { reply in
            guard let parts = reply.elements, parts.count == 2, let next = parts[0].string, let keys = parts[1].elements?.compactMap(\.string) else {
                return self.eventLoop.makeFailedFuture(RedisReplyError(reply: reply))
            }
            if next == "0" { return self.eventLoop.makeSucceededFuture(collected + keys) }
            return self.scan(connection, cursor: next, pattern: pattern, count: count, collected: collected + keys)
        }.nonisolated()
    }

    // Neither can fail: both have arguments.
    private static let clusterSlots = try! RedisCommand(["CLUSTER", "SLOTS"])
    private static let asking = try! RedisCommand(["ASKING"])
}
