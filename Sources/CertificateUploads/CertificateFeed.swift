import Certificates
import CoreMetrics
import Hierarchy
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RedisClient

/// Keeps this node's set of served uploaded certificates at the store's newest: each announced
/// revision as it comes, and a poll of the revision every `pollInterval` as the fallback for a
/// missed announcement or a lost subscription (the tree feed's pattern).
///
/// `onChange` receives the full set this node serves (`ServedCertificates.select`): once the
/// store has been read at start, then after every change of the store, of the tree or of the
/// key-encryption key that changes the set — never the same set twice in a row. It runs on the
/// feed's event loop, one call at a time; a slow consumer delays the next read, nothing else.
/// A record that is not served is logged once by domain, node, version and reason.
public final class CertificateFeed: Sendable {
    private let client: RedisClient
    private let subscriber: RedisSubscriber
    private let store: CertificateStore
    private let loop: any EventLoop
    private let logger: Logger
    private let onChange: @Sendable ([UploadedCertificateRecord]) -> Void
    private let state = NIOLockedValueBox(State())
    private let poller: NIOLockedValueBox<RepeatedTask?> = NIOLockedValueBox(nil)
    private let metrics: UploadedCertificateMetrics

    public static let pollInterval = TimeAmount.seconds(1)

    struct State {
        var tree: TenantSnapshot?
        var keyEncryptionKey: KeyEncryptionKey?
        /// The store's records as last read, and their revision; nil until the first read.
        var loaded: (revision: Int64, records: [StoredCertificate])?
        /// What `onChange` was last given, by domain; nil before the first call.
        var delivered: [String: Identity]?
        /// Records already logged as not served.
        var reported: Set<ServedCertificates.Skipped> = []
    }

    /// What tells two served certificates apart without comparing keys.
    struct Identity: Hashable {
        var node: String
        var version: Int64
        var fingerprint: String
    }

    /// Does nothing until `adopt` and `start`.
    /// - Parameter metrics: where `erp_gateway_uploaded_certificates*` are recorded (the
    ///   process's backend by default; none in tests).
    public init(
        client: RedisClient, url: RedisURL, store: CertificateStore, loop: any EventLoop, logger: Logger,
        metrics: any MetricsFactory = MetricsSystem.factory, onChange: @escaping @Sendable ([UploadedCertificateRecord]) -> Void
    ) {
        self.client = client
        self.store = store
        self.loop = loop
        self.logger = logger
        self.onChange = onChange
        self.metrics = UploadedCertificateMetrics(factory: metrics)
        let holder = CertificateFeedHolder()
        self.subscriber = RedisSubscriber(
            url: url, channels: [store.channel], eventLoop: loop, logger: logger,
            onConnected: { holder.feed?.synchronize(reason: "subscribed") },
            onMessage: { _, payload in
                guard let feed = holder.feed else { return }
                let announced = Int64(String(decoding: payload, as: UTF8.self))
                if announced != feed.state.withLockedValue({ $0.loaded?.revision }) { feed.synchronize(reason: "announced") }
            }
        )
        holder.feed = self
    }

    /// The tree and key-encryption key this node serves with: before `start`, and again with
    /// every configuration it installs (a tree revision, a reloaded settings file). The set is
    /// judged again at once.
    public func adopt(tree: TenantSnapshot?, keyEncryptionKey: KeyEncryptionKey?) {
        self.state.withLockedValue { state in
            state.tree = tree
            state.keyEncryptionKey = keyEncryptionKey
        }
        self.loop.execute { self.deliver(reason: "configuration") }
    }

    public func start() {
        self.subscriber.start()
        let task = self.loop.scheduleRepeatedTask(initialDelay: Self.pollInterval, delay: Self.pollInterval) { [weak self] _ in
            guard let self else { return }
            self.store.revision(client: self.client, on: self.loop).whenSuccess { revision in
                // Any difference, also a lower one: a store that was flushed or replaced.
                if revision != self.state.withLockedValue({ $0.loaded?.revision }) { self.synchronize(reason: "polled") }
            }
        }
        self.poller.withLockedValue { $0 = task }
    }

    public func shutdown() async {
        self.poller.withLockedValue { $0?.cancel() }
        try? await self.subscriber.shutdown().get()
    }

    /// Reads every stored record and delivers the set if it changed. Succeeds with the revision
    /// read, or the one known before when the store cannot be read (-1: never read).
    ///
    /// A store that lost its certificates (revision 0 after this node read a later one: flushed,
    /// replaced) gets back the records this node read last, under their revision, as the tree
    /// feed writes back its tree; served certificates are not taken down by a lost store.
    @discardableResult
    public func synchronize(reason: String) -> EventLoopFuture<Int64> {
        self.store.all(client: self.client, on: self.loop).flatMap { read -> EventLoopFuture<Int64> in
            if read.revision == 0, read.records.isEmpty, let previous = self.state.withLockedValue({ $0.loaded }), previous.revision > 0 {
                return self.store.restore(previous.records, revision: previous.revision, client: self.client, on: self.loop).flatMap { written in
                    if written {
                        self.logger.notice("the store had lost the uploaded certificates; wrote back this node's", metadata: [
                            "revision": "\(previous.revision)", "count": "\(previous.records.count)",
                        ])
                    }
                    return self.synchronize(reason: "restored")
                }
            }
            self.state.withLockedValue { $0.loaded = (read.revision, read.records) }
            if read.unreadable > 0 {
                self.logger.error("stored certificates that cannot be read are not served", metadata: ["count": "\(read.unreadable)"])
            }
            self.deliver(reason: reason)
            return self.loop.makeSucceededFuture(read.revision)
        }.flatMapErrorWithEventLoop { error, loop in
            self.logger.warning("cannot read uploaded certificates from the store; will retry", metadata: ["reason": "\(reason)", "error": "\(error)"])
            return loop.makeSucceededFuture(self.state.withLockedValue { $0.loaded?.revision ?? -1 })
        }
    }

    /// On the feed's loop: selects the served set and hands it on when it differs from the last.
    private func deliver(reason: String) {
        self.loop.preconditionInEventLoop()
        let (records, tree, keyEncryptionKey, delivered) = self.state.withLockedValue { ($0.loaded?.records, $0.tree, $0.keyEncryptionKey, $0.delivered) }
        // Nothing before the store has been read: an empty set then would take down certificates
        // another read would give back a moment later.
        guard let records else { return }
        let selection = ServedCertificates.select(records, tree: tree, keyEncryptionKey: keyEncryptionKey)
        self.metrics.record(selection)
        let newlySkipped = self.state.withLockedValue { state in
            let fresh = selection.skipped.filter { !state.reported.contains($0) }
            state.reported = Set(selection.skipped)
            return fresh
        }
        for skipped in newlySkipped {
            self.logger.warning("uploaded certificate not served", metadata: [
                "domain": "\(skipped.domain)", "node": "\(skipped.node)", "version": "\(skipped.version)", "reason": "\(skipped.reason)",
            ])
        }
        let identities = Dictionary(uniqueKeysWithValues: selection.served.map {
            ($0.domain, Identity(node: $0.node, version: $0.version, fingerprint: $0.summary.fingerprint))
        })
        guard identities != delivered else { return }
        self.state.withLockedValue { $0.delivered = identities }
        let before = delivered ?? [:]
        let added = selection.served.filter { before[$0.domain] != identities[$0.domain] }
        let removed = before.keys.filter { identities[$0] == nil }.sorted()
        self.logger.notice("uploaded certificates installed", metadata: [
            "count": "\(selection.served.count)",
            "added": "\(added.map { "\($0.domain) sha256:\($0.summary.fingerprint) v\($0.version)" }.joined(separator: ", "))",
            "removed": "\(removed.joined(separator: ", "))",
            "skipped": "\(selection.skipped.count)",
            "reason": "\(reason)",
        ])
        self.onChange(selection.served)
    }
}

/// Lets the subscriber's callbacks reach the feed that owns the subscriber.
private final class CertificateFeedHolder: @unchecked Sendable {
    // Set once, before the subscriber starts; read afterwards only.
    weak var feed: CertificateFeed?
}

/// `erp_gateway_uploaded_certificates{state}` and
/// `erp_gateway_uploaded_certificates_next_expiry_timestamp_seconds`: what this node serves of
/// the uploaded certificates, and when the first of them expires (alert well before it).
struct UploadedCertificateMetrics: Sendable {
    static let count = "erp_gateway_uploaded_certificates"
    static let nextExpiry = "erp_gateway_uploaded_certificates_next_expiry_timestamp_seconds"

    private let served: CoreMetrics.Gauge
    private let notOwned: CoreMetrics.Gauge
    private let unopened: CoreMetrics.Gauge
    private let expiry: CoreMetrics.Gauge

    init(factory: any MetricsFactory) {
        func gauge(_ state: String) -> CoreMetrics.Gauge {
            CoreMetrics.Gauge(label: Self.count, dimensions: [("state", state)], factory: factory)
        }
        self.served = gauge("served")
        self.notOwned = gauge("not-owned")
        self.unopened = gauge("key-not-opened")
        self.expiry = CoreMetrics.Gauge(label: Self.nextExpiry, dimensions: [], factory: factory)
    }

    func record(_ selection: ServedCertificates.Selection) {
        self.served.record(selection.served.count)
        self.notOwned.record(selection.skipped.filter { $0.reason == .notOwned }.count)
        self.unopened.record(selection.skipped.filter { $0.reason != .notOwned }.count)
        // 0 with nothing served: an alert on it also asks for a value above 0 (operations.md).
        self.expiry.record(selection.served.map(\.summary.notAfter).min() ?? 0)
    }
}
