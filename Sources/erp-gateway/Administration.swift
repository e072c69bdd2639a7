import AdminAPI
import EdgeTLS
import GatewayConfig
import Hierarchy
import AsyncHTTPClient
import IssuerKeyFetch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Quotas
import RedisClient
import Revocations
import TenantHealthStore

/// The admin API of one gateway process: the store's tree kept current by the feed, the
/// service that changes it, and the listener that serves it.
final class Administration: Sendable {
    let latest: LatestTree
    let feed: TreeFeed
    let service: AdminService
    let listener: AdminServer
    /// The admin listener's certificates with `admin.listener.tls`, reloaded with the settings.
    let tls: EdgeTLS?
    /// One thread of its own: compiling a changed tree (for a write, or a revision from the
    /// store) never holds up an event loop of the data plane.
    private let group: MultiThreadedEventLoopGroup
    /// Fetches identity providers' keys for issuer changes (validation and dry runs).
    private let keyClient: HTTPClient
    /// The fetch bounds and allowed hosts those fetches follow, replaced on reload.
    private let keyFetch: NIOLockedValueBox<GatewaySettings.Authentication.KeyFetch>

    private init(
        latest: LatestTree, feed: TreeFeed, service: AdminService, listener: AdminServer, tls: EdgeTLS?, group: MultiThreadedEventLoopGroup,
        keyClient: HTTPClient, keyFetch: NIOLockedValueBox<GatewaySettings.Authentication.KeyFetch>
    ) {
        self.keyClient = keyClient
        self.keyFetch = keyFetch
        self.tls = tls
        self.latest = latest
        self.feed = feed
        self.service = service
        self.listener = listener
        self.group = group
    }

    /// Reads the store's tree (seeding an empty store with the file's), so the data plane
    /// starts with the store's tree, then starts the feed and the admin listener. When the store
    /// cannot be reached the file's tree serves until it can; the feed then brings the store's
    /// tree in by itself.
    static func open(
        settingsPath: String, settings: GatewaySettings, admin: GatewaySettings.Admin,
        redis: (client: RedisClient, url: RedisURL, prefix: String), events: ServeEvents, logger: Logger
    ) async throws -> Administration {
        // The tree file as the store would hold it: the seed, and the fallback until the store answers.
        let document = try TenantTreeLoader.loadDocument(path: settings.tenantTreePath!, cells: settings.cells)
        let seed = try StoredTree.read(text: TenantTreeWriter.yaml(document), revision: 0, settings: settings, settingsPath: settingsPath)
        let latest = LatestTree(seed, onNewer: { _ in events.deliver(.treeChanged) })
        let store = AdminStore(keyPrefix: redis.prefix)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let feed = TreeFeed(
            client: redis.client, url: redis.url, store: store, latest: latest, loop: loop, logger: logger,
            compile: { text, deltas, revision in try StoredTree.read(text: text, deltas: deltas, revision: revision, settingsPath: settingsPath) }
        )
        let revision = (try? await feed.synchronize(reason: "startup").get()) ?? 0
        if revision == 0 {
            logger.warning("the admin store cannot be read; serving the tenant-tree file until it can", metadata: ["redis": "\(redis.url)"])
        } else {
            logger.notice("tenant tree read from the admin store", metadata: ["revision": "\(revision)"])
        }
        let revocations = RevocationStore(keyPrefix: redis.prefix)
        // The same download the data plane's fetcher makes, so a key set accepted here is one
        // the fetcher accepts too.
        let keyClient = try KeySetDownload.makeClient(caFile: settings.authentication.keyFetch.caFile, group: group)
        let keyFetch = NIOLockedValueBox(settings.authentication.keyFetch)
        let service = AdminService(
            latest: latest, feed: feed, store: store, client: redis.client,
            revoker: { message, loop, now in revocations.revoke(message, using: redis.client, on: loop, now: now) },
            usage: UsageMeter(redis: redis.client, prefix: redis.prefix, retentionDays: settings.usageRetentionDays),
            health: TenantHealthStore(redis: redis.client, prefix: redis.prefix, retentionMinutes: settings.tenantHealth.retentionMinutes), logger: logger,
            fetchIssuerKeys: { issuer in
                let current = keyFetch.withLockedValue { $0 }
                let download = KeySetDownload(client: keyClient, timeout: current.timeout, allowedHosts: current.allowedHosts)
                return await download.outcome(of: issuer).map { $0.keys.map { "\($0.kid) (\($0.algorithm.rawValue))" } }.mapError { IssuerKeyFetchError($0.description) }
            }
        )
        let listener: AdminServer
        var tls: EdgeTLS?
        do {
            // The same TLS as the data plane's listener (versions, suites, resumption), with the
            // admin listener's own certificates; HTTP/1.1 only.
            if let settings = admin.listener.tls {
                tls = EdgeTLS(files: try EdgeTLS.loadFiles(settings, source: settingsPath), logger: logger, gauges: nil)
            }
            listener = try await AdminServer.start(
                host: admin.listener.address, port: admin.listener.port, service: service, loop: loop, logger: logger,
                tls: try tls?.makeServerContext(applicationProtocols: EdgeTLS.applicationProtocols(http2: false))
            )
        } catch {
            await feed.shutdown()
            try? await keyClient.shutdown()
            try? await group.shutdownGracefully()
            throw AdminListenerError(address: "\(admin.listener.address):\(admin.listener.port)", cause: "\(error)")
        }
        feed.start()
        logger.notice("admin listener started", metadata: ["address": "\(listener.localAddress.map { "\($0)" } ?? "?")"])
        return Administration(latest: latest, feed: feed, service: service, listener: listener, tls: tls, group: group, keyClient: keyClient, keyFetch: keyFetch)
    }

    /// Issuer changes validate against the reloaded settings' fetch bounds and allowed hosts
    /// (the CA file, like the fetcher's, is read at start).
    func adopt(keyFetch settings: GatewaySettings.Authentication.KeyFetch) {
        self.keyFetch.withLockedValue { $0 = settings }
    }

    func shutdown() async {
        await self.listener.close()
        await self.feed.shutdown()
        try? await self.keyClient.shutdown()
        try? await self.group.shutdownGracefully()
    }
}

struct AdminListenerError: Error, CustomStringConvertible {
    let address: String
    let cause: String
    var description: String { "cannot start the admin listener on \(self.address): \(self.cause)" }
}

extension Administration {
    /// For the one-shot commands (`explain`, `usage`): the tree every node serves — the admin
    /// store's when the admin API is on and the store holds one, else the configuration's own
    /// (the file's). Says on standard error which one it is when it is not the file's.
    static func servedTree(_ configuration: GatewayConfiguration, settingsPath: String) async -> TenantSnapshot? {
        guard configuration.settings.admin != nil, let redisSettings = configuration.settings.redis, let url = try? redisSettings.clientURL() else {
            return configuration.tenants
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = RedisClient(url: url, group: group)
        let stored = try? await AdminStore(keyPrefix: redisSettings.keyPrefix).load(client: client, on: group.next()).get()
        try? await client.shutdown().get()
        try? await group.shutdownGracefully()
        guard let stored else {
            printToStandardError("the admin store holds no tree or cannot be read: using the tree file")
            return configuration.tenants
        }
        do {
            let tree = try StoredTree.read(text: stored.text, deltas: stored.deltas, revision: stored.revision, settings: configuration.settings, settingsPath: settingsPath)
            printToStandardError("the admin store's tree, revision \(stored.revision)")
            return tree.snapshot
        } catch {
            printToStandardError("the admin store's tree does not compile under these settings: using the tree file\n\(error)")
            return configuration.tenants
        }
    }
}
