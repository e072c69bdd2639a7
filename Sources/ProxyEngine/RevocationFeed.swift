import Logging
import NIOConcurrencyHelpers
import NIOCore
import RedisClient
import TokenAuth

#if canImport(Glibc)
import Glibc
#endif

/// Where revocations live in the shared store. Each revocation is one key holding its
/// `RevocationMessage` text, expiring when no token it covers can still be valid, and is
/// announced on one channel so every gateway node hears of it at once.
public struct RevocationStore: Sendable {
    public let keyPrefix: String

    public init(keyPrefix: String) {
        self.keyPrefix = keyPrefix
    }

    public var channel: String { "\(self.keyPrefix):revocations" }
    var keyPattern: String { "\(self.keyPrefix):revoked:*" }

    func key(for message: RevocationMessage) -> String {
        switch message {
        case .token(let jwtID, _): "\(self.keyPrefix):revoked:jti:\(jwtID)"
        case .tenant(let tenant, _, _): "\(self.keyPrefix):revoked:tenant:\(tenant)"
        }
    }

    /// Stores and announces a revocation. Succeeds with the number of gateway nodes listening.
    public func revoke(_ message: RevocationMessage, using client: RedisClient, on loop: any EventLoop, now: Int64) -> EventLoopFuture<Int64> {
        let until: Int64 = switch message {
        case .token(_, let expiresAt): expiresAt
        case .tenant(_, _, let until): until
        }
        // Kept a minute past the last moment it matters, never less than a second.
        let seconds = max(1, until - now + 60)
        return client.send(on: loop, ["SET", self.key(for: message), message.text, "EX", String(seconds)]).flatMap { stored in
            if let error = stored.errorMessage { return loop.makeFailedFuture(RevocationError(description: error)) }
            return client.send(on: loop, ["PUBLISH", self.channel, message.text]).map { $0.int64 ?? 0 }
        }
    }
}

public struct RevocationError: Error, CustomStringConvertible {
    public let description: String
}

/// Keeps every event loop's revocation list in step with the store: messages on the channel
/// as they come, and a full read of the stored revocations whenever the subscription is
/// (re-)established and every `resyncInterval`, so a message missed while disconnected is
/// picked up within that interval. Lists only ever grow (and shed expired entries), so a
/// resync merges, never replaces.
public final class RevocationFeed: Sendable {
    private let client: RedisClient
    private let subscriber: RedisSubscriber
    private let store: RevocationStore
    private let server: GatewayServer
    private let loop: any EventLoop
    private let logger: Logger
    private let resyncTask: NIOLockedValueBox<RepeatedTask?> = NIOLockedValueBox(nil)

    public static let resyncInterval = TimeAmount.seconds(30)

    public init(client: RedisClient, url: RedisURL, store: RevocationStore, server: GatewayServer, loop: any EventLoop, logger: Logger) {
        self.client = client
        self.store = store
        self.server = server
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
        let server = self.server
        Task { await server.revoke(message) }
    }

    private func resynchronize(reason: String) {
        let store = self.store
        self.scan(cursor: "0", collected: RevocationList(), count: 0).whenComplete { [self] result in
            switch result {
            case .success(let (list, count)):
                let server = self.server
                Task { await server.mergeRevocations(list, now: Int64(time(nil))) }
                self.logger.debug("revocations resynchronized", metadata: ["reason": "\(reason)", "entries": "\(count)"])
            case .failure(let error):
                self.logger.warning("cannot read revocations; will retry", metadata: ["reason": "\(reason)", "error": "\(error)", "pattern": "\(store.keyPattern)"])
            }
        }
    }

    /// SCAN the revocation keys, MGET their messages, and build the list.
    private func scan(cursor: String, collected: RevocationList, count: Int) -> EventLoopFuture<(RevocationList, Int)> {
        self.client.send(on: self.loop, ["SCAN", cursor, "MATCH", self.store.keyPattern, "COUNT", "1000"]).flatMap { reply in
            guard let parts = reply.elements, parts.count == 2, let next = parts[0].string, let keys = parts[1].elements?.compactMap(\.string) else {
                return self.loop.makeFailedFuture(RevocationError(description: reply.errorMessage ?? "unexpected SCAN reply"))
            }
            let values: EventLoopFuture<[RESPValue]> = keys.isEmpty
                ? self.loop.makeSucceededFuture([])
                : self.client.send(on: self.loop, ["MGET"] + keys).map { $0.elements ?? [] }
            return values.flatMap { values in
                var list = collected
                var added = 0
                for value in values {
                    guard let text = value.string, let message = RevocationMessage(text) else { continue }
                    message.apply(to: &list)
                    added += 1
                }
                if next == "0" { return self.loop.makeSucceededFuture((list, count + added)) }
                return self.scan(cursor: next, collected: list, count: count + added)
            }
        }
    }
}

/// Lets the subscriber's callbacks reach the feed that owns the subscriber.
private final class FeedHolder: @unchecked Sendable {
    // Set once, before the subscriber starts; read afterwards only.
    weak var feed: RevocationFeed?
}
