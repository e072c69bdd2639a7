import Logging
import NIOCore
import Synchronization

/// `RedisClient`'s cluster mode (`redis-cluster://` URLs): a `ClusterLoopRouter` per event loop
/// — its copy of the slot map and one pipelined connection per node, confined to the loop —
/// and, shared by the loops, the reading of the slot map.
///
/// Why the map is read here and not per loop: a slot migration or a failover makes every loop
/// see `MOVED` (or a node down) at about the same moment. One `CLUSTER SLOTS` then serves every
/// loop: a read requested while another is in flight, or less than `minimumRefreshInterval`
/// after the last one started, is coalesced into it (go-redis does the same). The new map is
/// handed to each loop on the loop itself, so routing never takes a lock; the lock here is
/// taken only to decide whether to read a map, never per command.
///
/// Until a first map is read, commands wait for it; when it cannot be read from any node
/// (seeds included) the read is retried with `ReconnectBackoff`, in the background, and
/// commands fail fast with `unavailable` meanwhile.
final class RedisClusterClient: Sendable {
    static let minimumRefreshInterval = TimeAmount.milliseconds(100)

    let url: RedisURL
    private let configuration: RedisClient.Configuration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let metrics: RedisMetrics
    /// One router per loop of the group, made on its loop at first use; the dictionary never
    /// changes after `init`.
    private let routers: [ObjectIdentifier: NIOLoopBoundBox<ClusterLoopRouter?>]
    private let refresh: Mutex<RefreshState>

    private struct RefreshState {
        var map: RedisSlotMap?
        var inFlight = false
        var lastStarted = NIODeadline.uptimeNanoseconds(0)
        /// A read is scheduled after a failed one (no map yet): requests for a read join it.
        var retryScheduled = false
        var failures: ReconnectBackoff
        /// Maps read, for tests and logs.
        var completed = 0
    }

    init(url: RedisURL, group: any EventLoopGroup, configuration: RedisClient.Configuration, logger: Logger, metrics: RedisMetrics) {
        self.url = url
        self.group = group
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.refresh = Mutex(RefreshState(failures: ReconnectBackoff(configuration: configuration.backoff)))
        var routers: [ObjectIdentifier: NIOLoopBoundBox<ClusterLoopRouter?>] = [:]
        for loop in group.makeIterator() {
            routers[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeEmptyBox(valueType: ClusterLoopRouter.self, eventLoop: loop)
        }
        self.routers = routers
    }

    /// Slot maps read so far.
    var mapsRead: Int { self.refresh.withLock { $0.completed } }

    func send(on loop: any EventLoop, _ command: RedisCommand, slot: Int?) -> EventLoopFuture<RESPValue> {
        guard let box = self.routers[ObjectIdentifier(loop)] else {
            return self.send(on: self.group.next(), command, slot: slot).hop(to: loop)
        }
        let promise = loop.makePromise(of: RESPValue.self)
        if loop.inEventLoop {
            self.router(box).send(command, slot: slot, promise: promise)
        } else {
            loop.execute {
                self.router(box).send(command, slot: slot, promise: promise)
            }
        }
        return promise.futureResult
    }

    func scanKeys(on loop: any EventLoop, matching pattern: String, count: Int) -> EventLoopFuture<[String]> {
        guard let box = self.routers[ObjectIdentifier(loop)] else {
            return self.scanKeys(on: self.group.next(), matching: pattern, count: count).hop(to: loop)
        }
        let promise = loop.makePromise(of: [String].self)
        loop.execute {
            self.router(box).scanKeys(matching: pattern, count: count, promise: promise)
        }
        return promise.futureResult
    }

    func isAvailable(on loop: any EventLoop) -> Bool {
        self.routers[ObjectIdentifier(loop)]?.value?.isAvailable ?? true
    }

    func isAvailable(on loop: any EventLoop, slot: Int) -> Bool {
        self.routers[ObjectIdentifier(loop)]?.value?.isAvailable(slot: slot) ?? true
    }

    func connect() {
        for box in self.routers.values {
            box.eventLoop.execute { self.router(box).connect() }
        }
    }

    func shutdown() -> EventLoopFuture<Void> {
        let closed = self.routers.values.map { box in
            box.eventLoop.flatSubmit { self.router(box).shutdown() }
        }
        return EventLoopFuture.andAllComplete(closed, on: self.group.any())
    }

    /// A loop asks for a new map (`MOVED`, a node lost, no map yet). Runs on `router`'s loop,
    /// which reads the map when this request is the one that starts a read.
    func refreshMap(requestedBy router: ClusterLoopRouter) {
        enum Decision {
            case read
            case coalesced
            case coolingDown(RedisSlotMap?)
        }
        let now = NIODeadline.now()
        let decision = self.refresh.withLock { state -> Decision in
            if state.inFlight || state.retryScheduled { return .coalesced }
            if now - state.lastStarted < Self.minimumRefreshInterval { return .coolingDown(state.map) }
            state.inFlight = true
            state.lastStarted = now
            return .read
        }
        switch decision {
        case .coalesced:
            return
        case .coolingDown(let map):
            // A loop that has not had the last map yet (it is on its way) can take it now.
            if let map, !router.hasMap { router.install(map) }
        case .read:
            router.fetchMap().assumeIsolated().whenComplete { result in
                self.mapRead(result, by: router)
            }
        }
    }

    private func mapRead(_ result: Result<RedisSlotMap, any Error>, by router: ClusterLoopRouter) {
        switch result {
        case .success(let map):
            let changed = self.refresh.withLock { state -> Bool in
                state.inFlight = false
                state.failures.connected()
                state.completed += 1
                defer { state.map = map }
                return state.map != map
            }
            self.metrics.slotMapRefreshed.increment()
            if changed {
                self.logger.info("redis cluster slot map read", metadata: ["shards": "\(map.shards.count)", "slots": "\(map.assignedSlots)", "primaries": "\(map.shards.map(\.primary.description).joined(separator: ","))"])
            }
            self.broadcast { $0.install(map) }
        case .failure(let error):
            let now = Int64(clamping: NIODeadline.now().uptimeNanoseconds)
            var random = SystemRandomNumberGenerator()
            let (firstFailure, retry) = self.refresh.withLock { state -> (Bool, Int64?) in
                state.inFlight = false
                let firstFailure = state.failures.isAvailable
                guard case .retry(let delay) = state.failures.connectionFailed(now: now, using: &random), state.map == nil else { return (firstFailure, nil) }
                state.retryScheduled = true
                return (firstFailure, delay)
            }
            self.metrics.slotMapRefreshFailed.increment()
            // One line per outage, not one per attempt.
            if firstFailure {
                self.logger.warning("cannot read the redis cluster's slot map from any node", metadata: ["redis": "\(self.url)", "error": "\(error)"])
            }
            self.broadcast { $0.mapRefreshFailed() }
            if let retry {
                router.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(retry)) {
                    self.refresh.withLock { $0.retryScheduled = false }
                    if !router.isShutDown { self.refreshMap(requestedBy: router) }
                }
            }
        }
    }

    /// Runs `body` on every loop that has a router, on that loop.
    private func broadcast(_ body: @escaping @Sendable (ClusterLoopRouter) -> Void) {
        for box in self.routers.values {
            box.eventLoop.execute {
                if let router = box.value { body(router) }
            }
        }
    }

    private func router(_ box: NIOLoopBoundBox<ClusterLoopRouter?>) -> ClusterLoopRouter {
        if let router = box.value { return router }
        let router = ClusterLoopRouter(cluster: self, eventLoop: box.eventLoop, url: self.url, configuration: self.configuration, logger: self.logger, metrics: self.metrics)
        box.value = router
        // Made after a map was read elsewhere: start from it.
        if let map = self.refresh.withLock({ $0.map }) { router.install(map) }
        return router
    }
}
