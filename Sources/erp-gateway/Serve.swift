import AccessLog
import AdminAPI
import ArgumentParser
import CertificateUploads
import Dispatch
import EdgeTLS
import GatewayConfig
import IssuerKeyFetch
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProxyEngine
import Quotas
import RedisClient
import Revocations
import SupportSessionLog
import TenantHealthStore

#if canImport(Glibc)
import Glibc
#endif

/// `erp-gateway serve`: loads the configuration, starts the listener, reloads on SIGHUP or when
/// a configuration file changes, and on SIGTERM or SIGINT stops accepting, lets in-flight
/// requests finish within the grace period and exits 0.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway.")

    @Option(name: .long, help: "Path of the settings file (YAML).")
    var config: String

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(name: .long, help: "Log format: text (one line of text a message) or json (one JSON object a line). Access-log lines are JSON in both.")
    var logFormat: LogFormat = .text

    @Option(name: .long, help: "How often to look for changed configuration files, in milliseconds (0: only on SIGHUP).")
    var watchIntervalMs: Int = 1000

    func run() async throws {
        let (level, format) = (self.logLevel, self.logFormat)
        let accessLines = BufferedLines(flushInterval: .milliseconds(200))
        // Whatever way `run` ends, the access lines still waiting are written.
        defer { accessLines.flush() }
        LoggingSystem.bootstrap { label in format.handler(label: label, level: level, accessLines: accessLines) }
        let logger = Logger(label: "erp-gateway")

        var initial = try loadConfigurationOrExit(path: self.config)
        let settings = initial.settings
        // The listener's certificates are checked before anything starts, like the settings.
        var tlsFiles: EdgeTLS.LoadedFiles?
        if let tls = settings.listener.tls {
            do {
                tlsFiles = try EdgeTLS.loadFiles(tls, source: self.config)
            } catch {
                printToStandardError(error.description)
                throw ExitCode(2)
            }
        }
        let events = ServeEvents.start(watchInterval: self.watchIntervalMs)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: settings.listener.eventLoops ?? System.coreCount)
        // Metrics are kept only with an ops listener to read them; the backend is bootstrapped
        // before the Redis client and the data plane make theirs. The listener answers from
        // now on: not ready until the data plane listens.
        var ops: OpsListener?
        if let opsSettings = settings.ops {
            let listener = OpsListener()
            do {
                try await listener.start(opsSettings, loop: group.next())
                ops = listener
                logger.notice("ops listener started", metadata: ["address": "\(listener.localAddress.map { "\($0)" } ?? "?")"])
            } catch {
                logger.critical("cannot start the ops listener", metadata: ["address": "\(opsSettings.address):\(opsSettings.port)", "error": "\(error)"])
                try? await group.shutdownGracefully()
                throw ExitCode(1)
            }
        }
        // TLS at the listener: the files' certificates now, uploads later; the expiry gauge needs
        // the metrics backend bootstrapped above.
        let edgeTLS = tlsFiles.map { files in
            EdgeTLS(files: files, logger: logger, gauges: ops.map { CertificateExpiryGauges(factory: $0.factory, label: MetricCatalog.tlsCertificateExpiry) })
        }

        // The shared store: quotas and revocations. Unreachable at start is fine (the client
        // reconnects by itself); an unusable URL means both are off, said loudly.
        var redis: (client: RedisClient, url: RedisURL, prefix: String)?
        if let redisSettings = settings.redis {
            do {
                let url = try redisSettings.clientURL()
                redis = (RedisClient(url: url, group: group, logger: logger), url, redisSettings.keyPrefix)
                // Connected now, not at the first request: readiness and the fail modes know at once
                // whether Redis is there, even on a node that has served nothing yet.
                redis?.client.connect()
            } catch {
                logger.error("redis.url is not usable; quotas and token revocation are off", metadata: ["error": "\(error)"])
            }
        } else {
            logger.warning("no redis configured: quotas are not enforced and token revocation is off")
        }

        // With the admin API the tree lives in the shared store; the file only seeds it.
        var administration: Administration?
        if let admin = settings.admin, let redis {
            do {
                administration = try await Administration.open(
                    settingsPath: self.config, settings: settings, admin: admin, redis: redis, events: events, logger: logger
                )
                initial = administration!.latest.current.configuration
            } catch let error as ConfigurationError {
                printToStandardError(error.description)
                try? await redis.client.shutdown().get()
                try? await group.shutdownGracefully()
                throw ExitCode(2)
            } catch {
                logger.critical("\(error)")
                try? await redis.client.shutdown().get()
                try? await group.shutdownGracefully()
                throw ExitCode(1)
            }
        } else if settings.admin != nil {
            logger.error("the admin API is off: it keeps the tenant tree in redis, and redis.url is not usable")
        }

        // Usage per customer per day: metered by the data plane and by tenant health (errors).
        let usage = redis.map { UsageMeter(redis: $0.client, prefix: $0.prefix, retentionDays: settings.usageRetentionDays) }
        // Per-partner and per-OEM figures per minute, published to the shared store.
        var health: TenantHealthPublisher?
        if let redis, let usage {
            health = try? await TenantHealthPublisher.start(
                group: group, settings: settings.tenantHealth,
                store: TenantHealthStore(redis: redis.client, prefix: redis.prefix, retentionMinutes: settings.tenantHealth.retentionMinutes),
                usage: usage, logger: logger
            )
        }
        // The access log and traces, as the settings ask.
        let observing = RequestObserving(settings: settings, logger: logger)
        observing.start(logger: logger)
        let accessAndTraces = observing.factory
        // Support engineers' requests, recorded in their customers' audit streams.
        var sessions: SupportSessionLog?
        if let support = settings.supportAccess, let redis {
            let store = AdminStore(keyPrefix: redis.prefix)
            sessions = SupportSessionLog(
                client: redis.client, streamKey: { store.auditKey(oem: $0) }, capacity: support.sessionBuffer, loop: group.next(), logger: logger,
                metrics: ops?.factory
            )
            sessions?.start()
        }
        var observer: (@Sendable (any EventLoop) -> (any RequestObserver)?)?
        if health != nil || accessAndTraces != nil || sessions != nil {
            observer = { [health, sessions] loop in
                let observers: [any RequestObserver] = [health?.observer(on: loop), accessAndTraces?(loop), sessions?.observer()].compactMap { $0 }
                return observers.count > 1 ? RequestObservers(observers) : observers.first
            }
        }

        // The key fetcher starts once the server can take its key sets; until then an unknown
        // `kid` has nobody to tell (and there are no keys to miss).
        let keyFetcher = NIOLockedValueBox<IssuerKeyFetcher?>(nil)
        var started: GatewayServer?
        do {
            started = try await GatewayServer.start(
                configuration: initial, group: group, quotas: redis.map { QuotaAdmission(redis: $0.client, prefix: $0.prefix, usageRetentionDays: settings.usageRetentionDays) },
                usage: usage, logger: logger,
                observer: observer, metrics: ops?.factory, tls: edgeTLS,
                unknownKey: { issuer in keyFetcher.withLockedValue { $0 }?.unknownKey(issuer: issuer) }
            )
        } catch {
            logger.critical("cannot start the listener", metadata: ["address": "\(settings.listener.address):\(settings.listener.port)", "error": "\(error)"])
            await health?.shutdown()
            await administration?.shutdown()
            await observing.shutdown()
            try? await redis?.client.shutdown().get()
            await ops?.close()
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        if let server = started {
            ops?.serving(server)
            ops?.generation.record(1)
            // Issuers' keys from their identity providers, fetched on a thread of their own and
            // published to every event loop.
            let fetcher = Self.startKeyFetcher(initial, server: server, metrics: ops?.factory, logger: logger)
            keyFetcher.withLockedValue { $0 = fetcher }
            // Revocations reach every node through the shared store.
            var feed: RevocationFeed?
            if let redis {
                feed = RevocationFeed(
                    client: redis.client, url: redis.url, store: RevocationStore(keyPrefix: redis.prefix), loop: group.next(), logger: logger,
                    revoke: { await server.revoke($0) }, merge: { await server.mergeRevocations($0, now: $1) }
                )
                feed?.start()
                logger.notice("revocation feed started", metadata: ["redis": "\(redis.url)"])
            }
            // Uploaded portal certificates reach every node with a key-encryption key the same way,
            // on a thread of their own: opening keys and installing certificates for TLS never
            // hold up an event loop of the data plane.
            var certificates: CertificateFeed?
            var certificateThread: MultiThreadedEventLoopGroup?
            if let redis, let uploads = initial.settings.certificateUploads {
                let thread = MultiThreadedEventLoopGroup(numberOfThreads: 1)
                certificateThread = thread
                certificates = CertificateFeed(
                    client: redis.client, url: redis.url, store: CertificateStore(keyPrefix: redis.prefix), loop: thread.next(), logger: logger,
                    onChange: { records in Self.serveUploadedCertificates(records, on: edgeTLS) }
                )
                certificates?.adopt(tree: initial.tenants, keyEncryptionKey: uploads.keyEncryptionKey)
                certificates?.start()
                logger.notice("certificate feed started", metadata: ["key-encryption-key": "\(uploads.keyEncryptionKey.identifier)"])
            }
            // Certificates near their end are logged again every day.
            let expiryWatch = edgeTLS?.watchExpiry(on: group.next())
            await Self.serve(
                server, initial: initial, path: self.config, events: events, latest: administration?.latest, certificates: certificates,
                tls: edgeTLS, administration: administration, keyFetcher: fetcher, ops: ops, logger: logger
            )
            expiryWatch?.cancel()
            // After the drain, so the requests that finished during it are in the last figures.
            await health?.shutdown()
            await administration?.shutdown()
            await feed?.shutdown()
            await certificates?.shutdown()
            try? await certificateThread?.shutdownGracefully()
            keyFetcher.withLockedValue { $0 = nil }
            await fetcher?.shutdown()
            // After the drain: the last requests' spans and support sessions are queued by now.
            await observing.shutdown()
            await sessions?.shutdown()
            try? await redis?.client.shutdown().get()
        }
        // The server (and the quiescing helper in it) must go while its event loops still run.
        ops?.serving(nil)
        await ops?.close()
        started = nil
        try? await group.shutdownGracefully()
        logger.notice("stopped")
    }
}

extension Serve {
    /// Where the uploaded portal certificates this node serves arrive: the whole set, once the
    /// store has been read and after every change (`CertificateFeed`, which also logs and counts
    /// them), on the feed's own thread. TLS termination installs the set from here.
    /// Without a TLS listener there is nothing to present them on. `install` logs each one it
    /// cannot load.
    static func serveUploadedCertificates(_ records: [UploadedCertificateRecord], on tls: EdgeTLS?) {
        _ = tls?.install(uploaded: records.map {
            UploadedCertificate(domain: $0.domain, chainPEM: $0.chainPEM, keyPEM: $0.keyPEM, node: $0.node)
        })
    }

    /// The process's key fetcher, publishing to `server`; nil (logged) when its HTTP client
    /// cannot be made. Issuers with fetched keys then stay without keys and refuse with
    /// `issuer-keys-unavailable`.
    static func startKeyFetcher(_ configuration: GatewayConfiguration, server: GatewayServer, metrics: (any MetricsFactory)?, logger: Logger) -> IssuerKeyFetcher? {
        do {
            let fetcher = try IssuerKeyFetcher(settings: configuration.settings.authentication.keyFetch, logger: logger, metrics: metrics) { sets in
                server.installFetchedKeys(sets)
            }
            fetcher.configure(configuration.authentication?.fetchedIssuers ?? [], settings: configuration.settings.authentication.keyFetch)
            return fetcher
        } catch {
            logger.error("issuer keys cannot be fetched", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Serves until SIGTERM or SIGINT, reloading on SIGHUP and file changes, then drains.
    static func serve(
        _ server: GatewayServer, initial: GatewayConfiguration, path: String, events: ServeEvents, latest: LatestTree?, certificates: CertificateFeed?,
        tls: EdgeTLS?, administration: Administration? = nil, keyFetcher: IssuerKeyFetcher? = nil,
        ops: OpsListener?, logger: Logger
    ) async {
        logger.notice("listening", metadata: [
            "address": "\(server.localAddress.map { "\($0)" } ?? "?")",
            "tenants": "\(initial.tenants?.nodeCount ?? 0)",
            "generation": "1",
            "tls": "\(tls != nil)",
        ])

        var reloader = Reloader(path: path, current: initial, latest: latest, servesTLS: tls != nil, logger: logger)
        events.watch(reloader.fingerprintFiles)
        for await event in events.stream {
            switch event {
            case .reload(let reason):
                if let next = reloader.reload(reason: reason) {
                    await server.install(next.configuration, generation: next.generation)
                    keyFetcher?.configure(next.configuration.authentication?.fetchedIssuers ?? [], settings: next.configuration.settings.authentication.keyFetch)
                    administration?.adopt(keyFetch: next.configuration.settings.authentication.keyFetch)
                    // A replaced key-encryption key applies at once; without one nothing uploaded is served.
                    certificates?.adopt(tree: next.configuration.tenants, keyEncryptionKey: next.configuration.settings.certificateUploads?.keyEncryptionKey)
                    // New handshakes present the new certificates; open connections keep theirs.
                    if let files = next.tlsFiles { tls?.install(files) }
                    if let adminTLS = administration?.tls, let settings = next.configuration.settings.admin?.listener.tls {
                        do {
                            adminTLS.install(try EdgeTLS.loadFiles(settings, source: path))
                        } catch {
                            logger.error("admin listener certificates not reloaded; the previous ones still serve", metadata: ["error": "\(error)"])
                        }
                    }
                    ops?.installed(generation: next.generation)
                    logger.notice("configuration reloaded", metadata: [
                        "reason": "\(reason)", "generation": "\(next.generation)", "tenants": "\(next.configuration.tenants?.nodeCount ?? 0)",
                    ])
                } else {
                    ops?.rejected()
                }
                events.watch(reloader.fingerprintFiles)
            case .treeChanged:
                if let next = reloader.adoptLatestTree() {
                    await server.install(next.configuration, generation: next.generation)
                    keyFetcher?.configure(next.configuration.authentication?.fetchedIssuers ?? [], settings: next.configuration.settings.authentication.keyFetch)
                    // A portal domain removed or moved stops its certificate from being served.
                    certificates?.adopt(tree: next.configuration.tenants, keyEncryptionKey: next.configuration.settings.certificateUploads?.keyEncryptionKey)
                    ops?.installed(generation: next.generation)
                    logger.notice("tenant tree installed", metadata: [
                        "revision": "\(reloader.installedRevision)", "generation": "\(next.generation)",
                        "tenants": "\(next.configuration.tenants?.nodeCount ?? 0)",
                    ])
                }
            case .stop(let signal):
                events.finish()
                // From now on /readyz says so, for the load balancers probing during the drain.
                ops?.draining()
                logger.notice("shutting down", metadata: ["signal": "\(signal)", "grace-ms": "\(reloader.current.settings.timeouts.shutdownGrace.milliseconds)"])
                await server.shutdown(grace: reloader.current.settings.timeouts.shutdownGrace)
            }
        }
    }
}

/// Loads the next configuration and decides whether it may replace the current one. A file
/// with errors never replaces anything: every error is logged and the current configuration
/// keeps serving.
struct Reloader {
    let path: String
    private(set) var current: GatewayConfiguration
    private(set) var generation = 1
    /// With the admin API: the store's newest tree, which replaces the tree file.
    let latest: LatestTree?
    private(set) var installedRevision: Int64
    /// The installed revision's commit id: after a failover the store's tree can carry the
    /// installed number (or a lower one) with other content, and must be installed all the same.
    private var installedCommitID: String
    /// The listener terminates TLS: a reload reads its certificate files again.
    let servesTLS: Bool
    let logger: Logger

    init(path: String, current: GatewayConfiguration, latest: LatestTree?, servesTLS: Bool = false, logger: Logger) {
        self.path = path
        self.current = current
        self.latest = latest
        self.installedRevision = latest?.current.revision ?? 0
        self.installedCommitID = latest?.current.commitID ?? StoreRevision.noID
        self.servesTLS = servesTLS
        self.logger = logger
    }

    /// The store's newest tree, when it is another revision than the one installed: a newer one,
    /// or the one the store went back to after a failover (`LatestTree.replace`).
    mutating func adoptLatestTree() -> (configuration: GatewayConfiguration, generation: Int)? {
        guard let tree = self.latest?.current, tree.revision != self.installedRevision || tree.commitID != self.installedCommitID else { return nil }
        self.installedRevision = tree.revision
        self.installedCommitID = tree.commitID
        self.current = tree.configuration
        self.generation += 1
        return (tree.configuration, self.generation)
    }

    var fingerprintFiles: [String] { self.current.files }

    /// The next configuration and, with TLS, the certificate files read again — both loaded
    /// and checked, installed together or not at all: a certificate file that cannot be served
    /// rejects the reload, and the certificates in force keep serving.
    mutating func reload(reason: String) -> (configuration: GatewayConfiguration, generation: Int, tlsFiles: EdgeTLS.LoadedFiles?)? {
        let next: GatewayConfiguration
        var tlsFiles: EdgeTLS.LoadedFiles?
        do {
            if let latest = self.latest {
                // The settings file is read again; the tree stays the store's.
                let stored = latest.current
                let tree = try stored.recompiled(settingsPath: self.path)
                latest.recompiled(tree)
                self.installedRevision = stored.revision
                self.installedCommitID = stored.commitID
                next = tree.configuration
            } else {
                next = try GatewayConfiguration.load(path: self.path)
            }
            if self.servesTLS, let tls = next.settings.listener.tls {
                tlsFiles = try EdgeTLS.loadFiles(tls, source: self.path)
            }
        } catch {
            self.logger.error("configuration rejected; still serving the previous one", metadata: [
                "reason": "\(reason)", "generation": "\(self.generation)", "errors": "\(error.issues.count)",
            ])
            for line in error.description.split(separator: "\n") {
                self.logger.error("configuration error", metadata: ["error": "\(line)"])
            }
            return nil
        }
        if Self.fixedAtStart(next.settings.listener) != Self.fixedAtStart(self.current.settings.listener)
            || next.settings.upstreamPool != self.current.settings.upstreamPool
            || next.settings.redis != self.current.settings.redis || next.settings.ops != self.current.settings.ops
        {
            self.logger.warning("listener, upstreamPool, redis and ops changes take effect at the next restart")
        }
        var tracing = next.settings.tracing
        tracing?.sampling = self.current.settings.tracing?.sampling ?? 0
        if next.settings.certificateUploads != nil, self.current.settings.certificateUploads == nil {
            // The certificate feed starts with the process. A replaced key, or none, applies at once.
            self.logger.warning("certificateUploads was added: this node serves uploaded certificates from its next restart")
        }
        if next.settings.accessLog != self.current.settings.accessLog || tracing != self.current.settings.tracing {
            // tracing.sampling applies at once: each request reads it as it starts.
            self.logger.warning("accessLog and tracing changes (but tracing.sampling) take effect at the next restart")
        }
        self.current = next
        self.generation += 1
        return (next, self.generation, tlsFiles)
    }

    /// The listener as it binds: its certificate files are read again at every reload; the rest
    /// of it (address, port, loops, whether and from which version TLS is spoken) is fixed.
    static func fixedAtStart(_ listener: GatewaySettings.Listener) -> GatewaySettings.Listener {
        var fixed = listener
        fixed.tls?.defaultCertificate = .init(certificate: "", key: "", settingsKey: "")
        fixed.tls?.certificates = []
        return fixed
    }
}

/// Signals and file changes as one stream of events for the serve loop.
final class ServeEvents: @unchecked Sendable {
    enum Event: Sendable {
        case reload(String)
        /// The admin store has a newer tenant tree.
        case treeChanged
        case stop(String)
    }

    let stream: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let queue = DispatchQueue(label: "erp-gateway.events")
    // Touched only on `queue`.
    private var sources: [any DispatchSourceProtocol] = []
    private var watchedFiles: [String] = []
    private var fingerprint: FileFingerprint?

    private init() {
        (self.stream, self.continuation) = AsyncStream.makeStream(of: Event.self)
    }

    /// Signals are caught from now on; files are watched once `watch` names them.
    static func start(watchInterval: Int) -> ServeEvents {
        let events = ServeEvents()
        events.queue.sync {
            events.fingerprint = FileFingerprint(files: [])
            for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT"), (SIGHUP, "SIGHUP")] {
                // The default actions would end the process mid-response (or, for SIGHUP, not
                // reload at all); the dispatch source sees the signal instead.
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: events.queue)
                source.setEventHandler {
                    events.continuation.yield(number == SIGHUP ? .reload("SIGHUP") : .stop(name))
                }
                source.resume()
                events.sources.append(source)
            }
            if watchInterval > 0 {
                let timer = DispatchSource.makeTimerSource(queue: events.queue)
                timer.schedule(deadline: .now() + .milliseconds(watchInterval), repeating: .milliseconds(watchInterval))
                timer.setEventHandler {
                    let now = FileFingerprint(files: events.watchedFiles)
                    if now != events.fingerprint {
                        events.fingerprint = now
                        events.continuation.yield(.reload("file changed"))
                    }
                }
                timer.resume()
                events.sources.append(timer)
            }
        }
        return events
    }

    /// Watches `files` from now on, taking their current state as the baseline, so a rejected
    /// file is not reported again until it changes again.
    func watch(_ files: [String]) {
        self.queue.sync {
            self.watchedFiles = files
            self.fingerprint = FileFingerprint(files: files)
        }
    }

    func deliver(_ event: Event) {
        self.continuation.yield(event)
    }

    func finish() {
        self.queue.sync {
            for source in self.sources where !(source is any DispatchSourceSignal) { source.cancel() }
        }
        self.continuation.finish()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}
