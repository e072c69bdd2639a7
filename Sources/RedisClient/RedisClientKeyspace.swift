import NIOCore

/// Reads over many keys that work the same on one Redis server and on a Redis Cluster, where
/// the keys spread over shards: `SCAN` on one node sees that node's keys only, and `MGET` over
/// keys of several slots is refused (`CROSSSLOT`).
extension RedisClient {
    /// Every key matching `pattern` (`SCAN … MATCH`), from every primary of a cluster. A key
    /// written or deleted during the scan may be missing or present (`SCAN`'s guarantee); none
    /// present throughout is missed.
    /// - Parameter count: the `COUNT` hint of each `SCAN` step.
    public func scanKeys(on loop: any EventLoop, matching pattern: String, count: Int = 1000) -> EventLoopFuture<[String]> {
        if let cluster = self.cluster {
            return cluster.scanKeys(on: loop, matching: pattern, count: count)
        }
        return self.scanKeys(on: loop, cursor: "0", pattern: pattern, count: count, collected: [])
    }

    /// The values of `keys` in their order, null for a missing key (`MGET`). On a cluster, one
    /// `MGET` per slot, all sent at once.
    public func mget(on loop: any EventLoop, _ keys: [String]) -> EventLoopFuture<[RESPValue]> {
        guard !keys.isEmpty else { return loop.makeSucceededFuture([]) }
        guard self.cluster != nil else {
            return self.send(on: loop, ["MGET"] + keys).flatMapThrowing { try Self.values(of: $0, count: keys.count) }
        }
        var positions: [Int: [Int]] = [:]
        for (index, key) in keys.enumerated() {
            positions[RedisKeySlot.slot(of: key), default: []].append(index)
        }
        let groups = Array(positions.values)
        let replies = groups.map { indices in
            self.send(on: loop, ["MGET"] + indices.map { keys[$0] }).flatMapThrowing { try Self.values(of: $0, count: indices.count) }
        }
        return EventLoopFuture.whenAllSucceed(replies, on: loop).map { replies in
            var values = [RESPValue](repeating: .bulkString(nil), count: keys.count)
            for (indices, reply) in zip(groups, replies) {
                for (index, value) in zip(indices, reply) { values[index] = value }
            }
            return values
        }
    }

    /// Whether the server — on a cluster, the shard — holding `key` is reachable as far as
    /// `loop` knows (see `isAvailable(on:)`). Call on `loop`.
    public func isAvailable(on loop: any EventLoop, key: String) -> Bool {
        if let cluster = self.cluster {
            loop.preconditionInEventLoop()
            return cluster.isAvailable(on: loop, slot: RedisKeySlot.slot(of: key))
        }
        return self.isAvailable(on: loop)
    }

    private func scanKeys(on loop: any EventLoop, cursor: String, pattern: String, count: Int, collected: [String]) -> EventLoopFuture<[String]> {
        self.send(on: loop, ["SCAN", cursor, "MATCH", pattern, "COUNT", String(count)]).flatMap { reply in
            guard let parts = reply.elements, parts.count == 2, let next = parts[0].string, let keys = parts[1].elements?.compactMap(\.string) else {
                return loop.makeFailedFuture(RedisReplyError(reply: reply))
            }
            if next == "0" { return loop.makeSucceededFuture(collected + keys) }
            return self.scanKeys(on: loop, cursor: next, pattern: pattern, count: count, collected: collected + keys)
        }
    }

    /// An `MGET` reply's values; an error reply (or a short array) fails.
    private static func values(of reply: RESPValue, count: Int) throws -> [RESPValue] {
        guard let values = reply.elements, values.count == count else {
            throw RedisReplyError(reply: reply)
        }
        return values
    }
}

/// A reply that is not the shape the command gives: an error reply (its first word only, safe
/// to log), or something else.
public struct RedisReplyError: Error, CustomStringConvertible {
    public let description: String

    init(reply: RESPValue) {
        self.description = reply.errorMessage.map { "Redis answered \($0.split(separator: " ").first ?? "an error")" } ?? "unexpected Redis reply"
    }
}
