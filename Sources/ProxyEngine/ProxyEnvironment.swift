import GatewayConfig
import Logging
import NIOCore
import Quotas
import TokenAuth

/// What every client connection on one event loop shares: the configuration in force, the
/// loop's upstream pool and the logger. One per loop, touched only on that loop, so a reload
/// reaches each loop as one task that swaps `configuration` — no locks on the request path.
final class ProxyEnvironment {
    /// Replaced whole on reload. An exchange copies it when it starts and keeps that copy, so
    /// requests in flight finish with the configuration they started with.
    var configuration: GatewayConfiguration {
        didSet {
            // Keys may have been retired or issuers removed: nothing verified under the old
            // configuration is trusted under the new one.
            self.tokenCache = Self.makeCache(self.configuration)
            // Limits may have changed: what was remembered under the old ones no longer holds.
            self.quotaGate.limitsChanged(leases: QuotaLeaseSettings(settings: self.configuration.settings))
            self.wakeForLeaseWork(now: self.wallClock.nowMicroseconds)
            self.router.reconfigure(self.configuration.settings, tls: self.configuration.upstreamTLS)
            self.contextSigners.keep(only: self.configuration.settings.upstreamContext?.signingKeys ?? [])
        }
    }
    /// Counts installed configurations; logged with each reload.
    var generation: Int
    /// Tokens this loop has verified, so a hot token costs a lookup, not a signature check.
    /// Nil when there is nothing to verify or the cache is configured off.
    var tokenCache: VerifiedTokenCache?
    /// The key sets of issuers whose keys are fetched, replaced whole by the process's fetcher
    /// (`GatewayServer.installFetchedKeys`).
    var fetchedKeys = FetchedKeySets.none {
        didSet {
            // A key withdrawn (rotated away, or its set past its bound): tokens it verified are
            // not trusted from the cache any more.
            if Self.withdrawsKeys(from: oldValue, to: self.fetchedKeys) { self.tokenCache = Self.makeCache(self.configuration) }
        }
    }
    /// Tells the fetcher of an unknown `kid`; nil when the process fetches no keys.
    let unknownKeys: UnknownKeySignal?
    /// Revoked tokens, kept in step with the shared store by the revocation feed.
    var revocations = RevocationList()
    /// This loop's admission policy: nodes known to be over a limit (a flood is refused without
    /// touching Redis), the `local` fail mode's rate limits, the refusals decided without
    /// Redis, flushed to `usage` once a second, and the quota leases this loop holds.
    var quotaGate: QuotaGate
    let pool: UpstreamPool
    /// Cells, endpoints and their load on this loop: where each upstream attempt goes.
    let router: CellRouter
    /// Quota admission through the shared store; nil without `redis` (quotas not enforced).
    let quotas: (any QuotaStore)?
    /// Usage per customer per day, in the shared store; nil without `redis`.
    let usage: UsageMeter?
    let logger: Logger
    /// The tenant context's signers, keyed once per signing key.
    var contextSigners = ContextSigners()
    /// When the loop next wakes to send lease work (wall-clock µs), and the task that will;
    /// nil while nothing is due (`wakeForLeaseWork`).
    var leaseWorkAt: Int64?
    var leaseWorkTask: Scheduled<Void>?
    /// Quota refusals of clients that close their connection after each answer, per customer:
    /// a flood that reconnects for every request is paced like one that keeps its connection.
    var closingRefusals = ClosingConnectionRefusals()
    /// Per-request warnings (the quota store down, say) written once, then counted.
    var repeatedWarnings = RepeatedWarnings()
    /// Wall-clock time for token lifetimes, quota windows and the upstream context.
    let wallClock: WallClock
    /// Told of every request that ends on this loop (metrics, access log, traces, tenant
    /// health); nil when nothing observes, and then no record is built.
    let observer: (any RequestObserver)?
    /// The counters the phases feed (quota decisions, token checks, retry refusals, ejections);
    /// nil when no metrics are kept, and then nothing is counted.
    let metrics: LoopMetrics?

    /// The loop everything here belongs to; its `now` is the data plane's elapsed-time clock.
    var eventLoop: any EventLoop { self.pool.eventLoop }

    init(
        configuration: GatewayConfiguration, generation: Int, pool: UpstreamPool, loopCount: Int = 1, quotas: (any QuotaStore)? = nil,
        usage: UsageMeter? = nil, logger: Logger, wallClock: WallClock = .system, observer: (any RequestObserver)? = nil,
        metrics: LoopMetrics? = nil, unknownKey: (@Sendable (String) -> Void)? = nil
    ) {
        self.unknownKeys = unknownKey.map { UnknownKeySignal(eventLoop: pool.eventLoop, send: $0) }
        self.router = CellRouter(eventLoop: pool.eventLoop, settings: configuration.settings, tls: configuration.upstreamTLS, loopCount: loopCount)
        self.quotaGate = QuotaGate(leases: QuotaLeaseSettings(settings: configuration.settings))
        self.configuration = configuration
        self.tokenCache = Self.makeCache(configuration)
        self.generation = generation
        self.pool = pool
        self.quotas = quotas
        self.usage = usage
        self.logger = logger
        self.wallClock = wallClock
        self.observer = observer
        self.metrics = metrics
        self.router.metrics = metrics
    }

    static func withdrawsKeys(from old: FetchedKeySets, to new: FetchedKeySets) -> Bool {
        old.byIssuer.contains { issuer, set in
            guard let replacement = new.byIssuer[issuer] else { return true }
            return replacement !== set && !set.keyIDs.isSubset(of: replacement.keyIDs)
        }
    }

    private static func makeCache(_ configuration: GatewayConfiguration) -> VerifiedTokenCache? {
        guard let capacity = configuration.authentication?.cacheCapacity, capacity > 0 else { return nil }
        return VerifiedTokenCache(capacity: capacity)
    }
}

/// An event loop's line to the key fetcher: an unknown `kid` of a fetched issuer is passed on
/// at most once per `interval` per issuer from this loop, so a flood of made-up `kid`s does not
/// become a flood of tasks on the fetcher's thread (which rate-limits fetches itself).
final class UnknownKeySignal {
    private let eventLoop: any EventLoop
    private let send: @Sendable (String) -> Void
    private var lastSent: [String: NIODeadline] = [:]
    static let interval = TimeAmount.milliseconds(100)

    init(eventLoop: any EventLoop, send: @escaping @Sendable (String) -> Void) {
        self.eventLoop = eventLoop
        self.send = send
    }

    func signal(issuer: String) {
        let now = self.eventLoop.now
        if let last = self.lastSent[issuer], now - last < Self.interval { return }
        // A made-up `iss` never reaches here (only configured fetched issuers do): bounded.
        self.lastSent[issuer] = now
        self.send(issuer)
    }
}
