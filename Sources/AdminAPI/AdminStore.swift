import Foundation
import NIOCore
import RedisClient

/// Where the tenant tree lives once the admin API is on: in the shared store, under the key
/// prefix, every key in one Redis Cluster slot (hash tag `{admin}`) so that a change, its revision,
/// its audit record and its announcement are one atomic script.
///
/// - `PREFIX:{admin}:tree` — the whole tree, in the tree file's format, keys inline.
/// - `PREFIX:{admin}:revision` — the global revision: 1 for the seed, +1 per change.
/// - `PREFIX:{admin}:audit:OEM` — a stream per OEM, one entry per change, append-only.
/// - `PREFIX:{admin}:deleted` — soft-deleted nodes by id, as they were when deleted.
/// - channel `PREFIX:{admin}:changes` — each new revision number, as it is committed.
public struct AdminStore: Sendable {
    public let keyPrefix: String

    public init(keyPrefix: String) {
        self.keyPrefix = keyPrefix
    }

    var base: String { "\(self.keyPrefix):{admin}" }
    public var treeKey: String { "\(self.base):tree" }
    public var revisionKey: String { "\(self.base):revision" }
    public var deletedKey: String { "\(self.base):deleted" }
    public var channel: String { "\(self.base):changes" }
    public func auditKey(oem: String) -> String { "\(self.base):audit:\(oem)" }

    /// Compare-and-set on the revision: the tree is replaced only if the stored revision is
    /// still the one the change was computed on; then the revision moves on, the audit record is
    /// appended, a deleted node is kept, and the new revision is announced — all or nothing.
    /// `ARGV[7]`, when given, is the revision to store instead of the next one: a seed written
    /// back by a node that already knows a later tree keeps its number.
    /// Returns `{1, new revision}` or `{0, current revision}`.
    static let commitScript = """
        local current = tonumber(redis.call('GET', KEYS[1]) or '0')
        if current ~= tonumber(ARGV[1]) then return {0, current} end
        local nextRevision = current + 1
        if ARGV[7] ~= '' then nextRevision = tonumber(ARGV[7]) end
        redis.call('SET', KEYS[2], ARGV[2])
        redis.call('SET', KEYS[1], nextRevision)
        if ARGV[3] ~= '' then redis.call('XADD', KEYS[3], '*', 'revision', nextRevision, 'record', ARGV[3]) end
        if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[4], ARGV[5]) end
        redis.call('PUBLISH', ARGV[6], nextRevision)
        return {1, nextRevision}
        """

    public enum CommitResult: Sendable, Equatable {
        case committed(revision: Int64)
        /// Someone else committed first; the store is at `current`.
        case conflict(current: Int64)
    }

    public struct StoreError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Commits `text` as the revision after `base` (or as `revision`, for a seed). `audit` is
    /// `(OEM, record)`; seeding passes none.
    public func commit(
        text: String, base: Int64, revision: Int64? = nil, audit: (oem: String, record: String)?, deleted: (id: String, record: String)?,
        client: RedisClient, on loop: any EventLoop
    ) -> EventLoopFuture<CommitResult> {
        let keys = [self.revisionKey, self.treeKey, self.auditKey(oem: audit?.oem ?? "none"), self.deletedKey]
        let args = [String(base), text, audit?.record ?? "", deleted?.id ?? "", deleted?.record ?? "", self.channel, revision.map(String.init) ?? ""]
        // Plain EVAL: admin changes are rare, so sending the script each time costs nothing
        // worth caching, and nothing depends on a script surviving a Redis restart.
        return client.send(on: loop, ["EVAL", Self.commitScript, String(keys.count)] + keys + args).flatMapThrowing { reply in
            guard let parts = reply.elements, parts.count == 2, let flag = parts[0].int64, let revision = parts[1].int64 else {
                throw StoreError(description: reply.errorMessage ?? "unexpected reply to the commit script")
            }
            return flag == 1 ? .committed(revision: revision) : .conflict(current: revision)
        }
    }

    /// Appends a record that is not part of a tree change (a token revocation).
    public func appendAudit(oem: String, record: String, client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<Void> {
        client.send(on: loop, ["XADD", self.auditKey(oem: oem), "*", "record", record]).flatMapThrowing { reply in
            if let error = reply.errorMessage { throw StoreError(description: error) }
        }
    }

    /// The stored revision alone (0: nothing stored yet): what every node polls.
    public func revision(client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<Int64> {
        client.send(on: loop, ["GET", self.revisionKey]).flatMapThrowing { reply in
            if reply.isNull { return 0 }
            guard let revision = reply.int64 else { throw StoreError(description: reply.errorMessage ?? "unexpected reply to GET") }
            return revision
        }
    }

    /// The stored tree and its revision, read together; nil when nothing is stored yet.
    public func load(client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<(revision: Int64, text: String)?> {
        client.send(on: loop, ["MGET", self.revisionKey, self.treeKey]).flatMapThrowing { reply in
            guard let parts = reply.elements, parts.count == 2 else { throw StoreError(description: reply.errorMessage ?? "unexpected reply to MGET") }
            guard let revision = parts[0].int64, let text = parts[1].string else { return nil }
            return (revision, text)
        }
    }

    /// The newest `count` audit records of one OEM, newest first.
    public func audit(oem: String, count: Int, client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<[AuditRecord]> {
        client.send(on: loop, ["XREVRANGE", self.auditKey(oem: oem), "+", "-", "COUNT", String(count)]).flatMapThrowing { reply in
            guard let entries = reply.elements else { throw StoreError(description: reply.errorMessage ?? "unexpected reply to XREVRANGE") }
            return entries.compactMap { entry -> AuditRecord? in
                // [id, [field, value, field, value, …]]
                guard let parts = entry.elements, parts.count == 2, let fields = parts[1].elements else { return nil }
                var index = 0
                while index + 1 < fields.count {
                    if fields[index].string == "record", let text = fields[index + 1].string, let json = JSONValue.parse(Array(text.utf8)) {
                        return AuditRecord(json: json)
                    }
                    index += 2
                }
                return nil
            }
        }
    }
}
