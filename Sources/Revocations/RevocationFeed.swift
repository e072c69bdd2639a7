import Logging
import NIOConcurrencyHelpers
import NIOCore
import RedisClient
import TokenAuth

/// Keeps every event loop's revocation list in step with the store: messages on the channel
/// as they come, and a full read of the stored revocations whenever the subscription is
/// (re-)established and every `resyncInterval`, so a message missed while disconnected is
/// picked up within that interval. Lists only ever grow (and shed expired entries), so a
/// resync merges, never replaces.
///
/// The feed reads the store; what holds the lists (the data plane's event loops) is reached
/// through the two callbacks, so this module knows nothing of the data plane.
public final class RevocationFeed: Sendable {
    private let client: RedisClient
    private let subscriber: RedisSubscriber
    private let store: RevocationStore
    /// One revocation, as published.
    private let revoke: @Sendable (RevocationMessage) async -> Void
    /// The store's full list, to merge into every list and prune at `now` (Unix seconds).
    private let merge: @Sendable (RevocationList, _ now: Int64) async -> Void
    private let loop: any EventLoop
    private let logger: Logger
    private let resyncTask: NIOLockedValueBox<RepeatedTask?> = NIOLockedValueBox(nil)

    public static let resyncInterval = TimeAmount.seconds(30)

    public init(
        client: RedisClient, url: RedisURL, store: RevocationStore, loop: any EventLoop, logger: Logger,
        revoke: @escaping @Sendable (RevocationMessage) async -> Void,
        merge: @escaping @Sendable (RevocationList, _ now: Int64) async -> Void
    ) {
        self.client = client
        self.store = store
        self.revoke = revoke
        self.merge = merge
        self.loop = loop
        self.logger = logger
        let holder = FeedHolder()
        self.subscriber = RedisSubscriber(
            url: url, channels: [store.channel], eventLoop: loop, logger: logger,
            onConnected: { holder.feed?.resynchronize(reason: "subscribed") },
            onMessage: { _, payload in holder.feed?.received(payload) }
        )
        holder.feed = self
    }

    public func start() {
        self.subscriber.start()
        let task = self.loop.scheduleRepeatedTask(initialDelay: Self.resyncInterval, delay: Self.resyncInterval) { [weak self] _ in
            self?.resynchronize(reason: "periodic")
        }
        self.resyncTask.withLockedValue { $0 = task }
    }

    public func shutdown() async {
        self.resyncTask.withLockedValue { $0?.cancel() }
        try? await self.subscriber.shutdown().get()
    }

    private func received(_ payload: [UInt8]) {
        guard let message = RevocationMessage(String(decoding: payload, as: UTF8.self)) else {
            self.logger.warning("ignoring a malformed revocation message")
            return
        }
        let revoke = self.revoke
        Task { await revoke(message) }
    }

    private func resynchronize(reason: String) {
        let store = self.store
        self.readStored().whenComplete { [self] result in
            switch result {
            case .success(let (list, count)):
                let merge = self.merge
                Task { await merge(list, UnixTime.nowSeconds()) }
                self.logger.debug("revocations resynchronized", metadata: ["reason": "\(reason)", "entries": "\(count)"])
            case .failure(let error):
                self.logger.warning("cannot read revocations; will retry", metadata: ["reason": "\(reason)", "error": "\(error)", "pattern": "\(store.keyPattern)"])
            }
        }
    }

    /// Every stored revocation: the keys from every primary (`scanKeys`), their messages read
    /// per slot (`mget`), so it is the same on one Redis and on a cluster, where the keys spread
    /// over the shards (a revocation is one key: one write to one slot).
    private func readStored() -> EventLoopFuture<(RevocationList, Int)> {
        self.client.scanKeys(on: self.loop, matching: self.store.keyPattern).flatMap { keys in
            self.client.mget(on: self.loop, keys)
        }.map { values in
            var list = RevocationList()
            var count = 0
            for value in values {
                guard let text = value.string, let message = RevocationMessage(text) else { continue }
                message.apply(to: &list)
                count += 1
            }
            return (list, count)
        }
    }
}

/// Lets the subscriber's callbacks reach the feed that owns the subscriber.
private final class FeedHolder: @unchecked Sendable {
    // Set once, before the subscriber starts; read afterwards only.
    weak var feed: RevocationFeed?
}
