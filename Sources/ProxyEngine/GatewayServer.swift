import CoreMetrics
import EdgeTLS
import GatewayConfig
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import Quotas
import TokenAuth

/// The data plane's listener (HTTP/1.1, and HTTP/2 per `listener.http2`) and everything it owns: per-loop upstream pools, the quiescing helper
/// that drains connections on shutdown.
public final class GatewayServer: Sendable {
    private let serverChannel: any Channel
    private let quiescing: ServerQuiescingHelper
    private let group: any EventLoopGroup
    private let logger: Logger
    private let environments: [NIOLoopBound<ProxyEnvironment>]
    private let healthChecker: NIOLoopBound<HealthChecker>
    /// The shared store's quota admission, to give leases back on shutdown; nil without Redis.
    private let quotas: QuotaAdmission?

    /// The address the listener is bound to (useful when the settings asked for port 0).
    public var localAddress: SocketAddress? { self.serverChannel.localAddress }

    private init(
        serverChannel: any Channel, quiescing: ServerQuiescingHelper, group: any EventLoopGroup, logger: Logger,
        environments: [NIOLoopBound<ProxyEnvironment>], healthChecker: NIOLoopBound<HealthChecker>, quotas: QuotaAdmission?
    ) {
        self.healthChecker = healthChecker
        self.quotas = quotas
        self.serverChannel = serverChannel
        self.quiescing = quiescing
        self.group = group
        self.logger = logger
        self.environments = environments
    }

    /// Binds the listener of `configuration.settings.listener`. Listener settings (address,
    /// port, event loops) and the upstream pool's bounds are fixed for the life of the server;
    /// everything else follows `install`.
    ///
    /// - Parameter metrics: where the data plane's metrics go (swift-metrics); nil keeps none,
    ///   and then the request path counts nothing at all.
    /// - Parameter tls: with `listener.tls`, the certificates the listener presents; every
    ///   connection is then TLS. Its snapshot may be replaced at any time (reload, uploads);
    ///   the listener's TLS context is made here, once.
    public static func start(
        configuration: GatewayConfiguration, group: any EventLoopGroup, quotas: QuotaAdmission? = nil, usage: UsageMeter? = nil,
        logger: Logger, observer makeObserver: (@Sendable (any EventLoop) -> (any RequestObserver)?)? = nil, metrics: (any MetricsFactory)? = nil,
        tls: EdgeTLS? = nil, unknownKey: (@Sendable (String) -> Void)? = nil
    ) async throws -> GatewayServer {
        let settings = configuration.settings
        let sslContext = try tls?.makeServerContext(applicationProtocols: EdgeTLS.applicationProtocols(http2: settings.listener.http2.enabled))
        // One environment per event loop, built on that loop: the pool inside is loop-confined.
        var environments: [ObjectIdentifier: NIOLoopBound<ProxyEnvironment>] = [:]
        let loopCount = Array(group.makeIterator()).count
        for loop in group.makeIterator() {
            environments[ObjectIdentifier(loop)] = try await loop.submit {
                let pool = UpstreamPool(eventLoop: loop, settings: settings.upstreamPool)
                let loopMetrics = metrics.map { LoopMetrics(factory: $0) }
                let observers = [metrics.map { RequestMetrics(factory: $0) as any RequestObserver }, makeObserver?(loop)].compactMap { $0 }
                let environment = ProxyEnvironment(
                    configuration: configuration, generation: 1, pool: pool, loopCount: loopCount, quotas: quotas, usage: usage, logger: logger,
                    observer: observers.count > 1 ? RequestObservers(observers) : observers.first, metrics: loopMetrics,
                    unknownKey: unknownKey
                )
                let bound = NIOLoopBound(environment, eventLoop: loop)
                loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                    loopMetrics?.poolSampled(bound.value.pool.occupancy)
                    // Locally decided refusals reach the usage store once a second per loop.
                    if let usage, !bound.value.quotaGate.pendingRefusals.isEmpty { bound.value.quotaGate.pendingRefusals.flush(to: usage, on: loop) }
                    bound.value.repeatedWarnings.flush(logger: logger, now: loop.now.uptimeNanoseconds)
                }
                return bound
            }.get()
        }
        let loopEnvironments = environments
        let healthChecker = try await Self.startHealthChecker(
            configuration: configuration, on: group.next(), environments: Array(environments.values), metrics: metrics, logger: logger
        )
        let quiescing = ServerQuiescingHelper(group: group)

        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 4)
            // A client that half-closes after its request still gets the answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let environment = loopEnvironments[ObjectIdentifier(channel.eventLoop)]?.value else {
                        throw ChannelError.ioOnClosedChannel
                    }
                    if let sslContext {
                        try Self.configureTLSClientPipeline(channel, context: sslContext, environment: environment)
                    } else {
                        try Self.configureClientPipeline(channel.pipeline.syncOperations, environment: environment)
                    }
                }
            }
            .bind(host: settings.listener.address, port: settings.listener.port)
            .get()
        return GatewayServer(
            serverChannel: channel, quiescing: quiescing, group: group, logger: logger, environments: Array(environments.values),
            healthChecker: healthChecker, quotas: quotas
        )
    }

    /// The process's health checker, on `loop`; its verdicts reach every loop's router.
    private static func startHealthChecker(
        configuration: GatewayConfiguration, on loop: any EventLoop, environments: [NIOLoopBound<ProxyEnvironment>], metrics: (any MetricsFactory)?,
        logger: Logger
    ) async throws -> NIOLoopBound<HealthChecker> {
        try await loop.submit {
            let checker = HealthChecker(eventLoop: loop, logger: logger, metrics: metrics.map { HealthMetrics(factory: $0) }) { unhealthy in
                for environment in environments {
                    environment.eventLoop.execute { environment.value.router.setUnhealthy(unhealthy) }
                }
            }
            checker.configure(configuration.settings.cells, tls: configuration.upstreamTLS)
            return NIOLoopBound(checker, eventLoop: loop)
        }.get()
    }

    /// Whether this process should get traffic (`/readyz`), judged from the configuration in
    /// force, the health checker's verdicts and every loop's connection to the quota store.
    public func readiness() async -> Readiness {
        guard let first = self.environments.first else { return Readiness(reasons: [.noConfiguration]) }
        guard let settings = try? await first.eventLoop.submit({ first.value.configuration.settings }).get() else {
            return Readiness(reasons: [.noConfiguration])
        }
        let checker = self.healthChecker
        let unhealthy = (try? await checker.eventLoop.submit { checker.value.unhealthy }.get()) ?? []
        var reachable: Bool?
        if let quotas = self.quotas {
            reachable = true
            for environment in self.environments {
                let up = try? await environment.eventLoop.submit { quotas.storeState(on: environment.eventLoop) == .reachable }.get()
                if up != true { reachable = false }
            }
        }
        let cells = settings.cells.map { cell in
            Readiness.Cell(
                id: cell.id, kind: cell.kind, region: cell.region, fallback: cell.fallback, endpoints: cell.endpoints.count,
                healthyEndpoints: cell.endpoints.count { !unhealthy.contains(CellEndpoint(cell: cell.id, endpoint: $0)) }
            )
        }
        return Readiness.evaluate(configured: true, cells: cells, quotaStoreReachable: reachable, failModes: settings.quotaFailModes)
    }

    /// Applies one revocation on every event loop (from the store's publish channel).
    public func revoke(_ message: RevocationMessage) async {
        for environment in self.environments {
            try? await environment.eventLoop.submit { message.apply(to: &environment.value.revocations) }.get()
        }
    }

    /// Merges the store's full list into every loop's (after a reconnect, when messages may
    /// have been missed, and periodically), dropping expired entries. Revocations are never
    /// undone, so merging cannot lose one that arrived meanwhile.
    public func mergeRevocations(_ list: RevocationList, now: Int64) async {
        for environment in self.environments {
            try? await environment.eventLoop.submit {
                environment.value.revocations.merge(list)
                environment.value.revocations.prune(now: now)
            }.get()
        }
    }

    /// Installs the key sets fetched from identity providers on every event loop, each in one
    /// step between two events (`IssuerKeyFetcher`'s `publish`).
    /// Does not wait: calls made one after another from one thread arrive in that order on
    /// every loop, so a newer set is never overtaken by an older one.
    public func installFetchedKeys(_ sets: FetchedKeySets) {
        for environment in self.environments {
            environment.eventLoop.execute { environment.value.fetchedKeys = sets }
        }
    }

    /// Installs a new configuration on every event loop. Each loop swaps it in one step between
    /// two events; exchanges already running keep the configuration they started with. Returns
    /// once every loop has it.
    public func install(_ configuration: GatewayConfiguration, generation: Int) async {
        for environment in self.environments {
            try? await environment.eventLoop.submit {
                environment.value.configuration = configuration
                environment.value.generation = generation
            }.get()
        }
        let checker = self.healthChecker
        try? await checker.eventLoop.submit { checker.value.configure(configuration.settings.cells, tls: configuration.upstreamTLS) }.get()
    }

    /// The handlers of one client connection, in order: the request decoder
    /// (`ClientRequestDecoder`, which also tells when a request's first byte arrives), then the
    /// connection handler, which pipelines, answers errors and writes its responses as bytes
    /// itself (`ClientResponseWriter`). With `listener.http2.cleartext` on a plain
    /// listener the h2c preface detector goes first; it turns the connection into HTTP/2 when the
    /// preface comes (over TLS, ALPN chooses instead).
    static func configureClientPipeline(
        _ sync: ChannelPipeline.SynchronousOperations, environment: ProxyEnvironment, transport: ClientTransport = .plain
    ) throws {
        let http2 = environment.configuration.settings.listener.http2
        if case .plain = transport, http2.enabled, http2.cleartext {
            try sync.addHandler(HTTP2PrefaceDetector(environment: environment))
        }
        let decoder = ClientRequestDecoder(maxHeadBytes: RequestHeadValidation.decoderLimit(for: environment.configuration.settings.limits))
        try sync.addHandler(decoder)
        try sync.addHandler(ClientConnectionHandler(environment: environment, carrier: .http1Connection(decoder), transport: transport))
    }

    /// Stops accepting, lets in-flight exchanges finish (idle keep-alive connections close at
    /// once), and after `grace` closes whatever is still open. Returns when every client
    /// connection is closed.
    public func shutdown(grace: Duration) async {
        let checker = self.healthChecker
        try? await checker.eventLoop.submit { checker.value.stop() }.get()
        let loop = self.group.any()
        let drained = loop.makePromise(of: Void.self)
        self.quiescing.initiateShutdown(promise: drained)
        let deadline = loop.scheduleTask(in: .milliseconds(grace.milliseconds)) { [logger] in
            logger.warning("shutdown grace period over; closing the remaining connections")
        }
        let graceOver = deadline.futureResult
        let first = loop.makePromise(of: Bool.self)
        drained.futureResult.whenComplete { _ in first.succeed(true) }
        graceOver.whenComplete { _ in first.succeed(false) }
        let drainedInTime = (try? await first.futureResult.get()) ?? false
        deadline.cancel()
        if !drainedInTime {
            // Hard stop: the event loop group's shutdown closes every channel still open.
            self.serverChannel.close(promise: nil)
        }
        // Units leased and not used go back to the shared store for the other nodes.
        if let quotas = self.quotas {
            for environment in self.environments {
                try? await environment.eventLoop.flatSubmit {
                    let value = environment.value
                    return quotas.send(value.quotaGate.returnLeases(now: value.wallClock.nowMicroseconds), on: value.eventLoop)
                }.get()
            }
        }
    }
}
