import NIOCore
import RedisClient
import TokenAuth

/// Where revocations live in the shared store. Each revocation is one key holding its
/// `RevocationMessage` text, expiring when no token it covers can still be valid, and is
/// announced on one channel so every gateway node hears of it at once.
///
/// The keys carry no hash tag: a revocation is one key, written alone, so on a Redis Cluster they
/// may spread over every shard; the feed reads them from every primary (`RedisClient.scanKeys`,
/// `RedisClient.mget`). The layout is the same on one Redis and on a cluster, so moving a
/// deployment to a cluster (copying its keys) changes nothing here.
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

    /// Stores and announces a revocation. Succeeds with the number of gateway nodes listening —
    /// on a Redis Cluster, only those subscribed on the node that took the `PUBLISH` (it
    /// reaches the subscribers of every node all the same).
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
