import Foundation
import NIOCore
import RedisClient

/// Where the tenant tree lives once the admin API is on: in the shared store, under the key
/// prefix, every key in one Redis Cluster slot (hash tag `{admin}`) so that a change, its revision,
/// its audit record and its announcement are one atomic script.
///
/// - `PREFIX:{admin}:tree` — the whole tree, in the tree file's format, keys inline, as of
///   revision `PREFIX:{admin}:tree-revision` (its last compaction).
/// - `PREFIX:{admin}:deltas` — a hash: for each revision after that one (and a few before), the
///   change that made it (`TreeDelta`). The tree at revision N is the tree text with the deltas up
///   to N applied.
/// - `PREFIX:{admin}:revision` — the global revision: 1 for the seed, +1 per change.
/// - `PREFIX:{admin}:audit:OEM` — a stream per OEM, one entry per change, append-only.
/// - `PREFIX:{admin}:deleted` — soft-deleted nodes by id, as they were when deleted.
/// - channel `PREFIX:{admin}:changes` — each new revision number, as it is committed.
///
/// Why a delta log and not the whole tree per change: at 100,000 customers the tree's text is
/// tens of MiB and writing it takes seconds (`bench/tree-compile.sh` prints the figure), so a
/// change that rewrote it would cost every write seconds and make every node read and parse all
/// of it. A change writes its delta (a few hundred bytes for one node); every node applies the
/// deltas it has not seen to the tree it holds. Every `compactionInterval` revisions the node
/// that committed one writes the whole tree once, off the write path (`compact`), so that a node
/// starting up reads one text and a bounded number of deltas.
public struct AdminStore: Sendable {
    public let keyPrefix: String

    public init(keyPrefix: String) {
        self.keyPrefix = keyPrefix
    }

    var base: String { "\(self.keyPrefix):{admin}" }
    public var treeKey: String { "\(self.base):tree" }
    public var treeRevisionKey: String { "\(self.base):tree-revision" }
    public var deltasKey: String { "\(self.base):deltas" }
    public var revisionKey: String { "\(self.base):revision" }
    public var deletedKey: String { "\(self.base):deleted" }
    public var channel: String { "\(self.base):changes" }
    public func auditKey(oem: String) -> String { "\(self.base):audit:\(oem)" }

    /// Deltas logged before the whole tree is written again.
    public static let compactionInterval: Int64 = 100
    /// Deltas kept below a compaction, so that a node a little behind still catches up by deltas.
    public static let deltasKeptBelowCompaction: Int64 = 20
    /// At most this many deltas are read in one go; a node further behind reads the whole tree.
    public static let maxDeltasRead: Int64 = 1000

    /// Compare-and-set on the revision: the change is stored only if the stored revision is
    /// still the one the change was computed on; then the revision moves on, the audit record is
    /// appended, a deleted node is kept, and the new revision is announced — all or nothing.
    /// `ARGV[8]`, when given, is the change as a delta, logged under the new revision; otherwise
    /// `ARGV[2]` is the whole tree, which replaces the stored one and empties the log.
    /// `ARGV[7]`, when given, is the revision to store instead of the next one: a seed written
    /// back by a node that already knows a later tree keeps its number.
    /// Returns `{1, new revision, revision of the stored whole tree}` or `{0, current revision, 0}`.
    static let commitScript = """
        local current = tonumber(redis.call('GET', KEYS[1]) or '0')
        if current ~= tonumber(ARGV[1]) then return {0, current, 0} end
        local nextRevision = current + 1
        if ARGV[7] ~= '' then nextRevision = tonumber(ARGV[7]) end
        if ARGV[8] ~= '' then
          -- A store written before the log existed holds its tree at the current revision.
          if redis.call('EXISTS', KEYS[5]) == 0 then redis.call('SET', KEYS[5], current) end
          redis.call('HSET', KEYS[6], nextRevision, ARGV[8])
        else
          redis.call('SET', KEYS[2], ARGV[2])
          redis.call('SET', KEYS[5], nextRevision)
          redis.call('DEL', KEYS[6])
        end
        redis.call('SET', KEYS[1], nextRevision)
        if ARGV[3] ~= '' then redis.call('XADD', KEYS[3], '*', 'revision', nextRevision, 'record', ARGV[3]) end
        if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[4], ARGV[5]) end
        redis.call('PUBLISH', ARGV[6], nextRevision)
        return {1, nextRevision, tonumber(redis.call('GET', KEYS[5]))}
        """

    public enum CommitResult: Sendable, Equatable {
        case committed(revision: Int64)
        /// Someone else committed first; the store is at `current`.
        case conflict(current: Int64)
    }

    public struct StoreError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Commits `text`, the whole tree, as the revision after `base` (or as `revision`, for a
    /// seed or a write-back). `audit` is `(OEM, record)`; seeding passes none.
    public func commit(
        text: String, base: Int64, revision: Int64? = nil, audit: (oem: String, record: String)?, deleted: (id: String, record: String)?,
        client: RedisClient, on loop: any EventLoop
    ) -> EventLoopFuture<CommitResult> {
        self.commit(.whole(text), base: base, revision: revision, audit: audit, deleted: deleted, client: client, on: loop).map(\.result)
    }

    /// Commits one change (a delta, or the whole tree) as the revision after `base`. Also says at
    /// which revision the stored whole tree is, for the caller to decide on a compaction.
    func commit(
        _ write: StoredTree.Write, base: Int64, revision: Int64? = nil, audit: (oem: String, record: String)?, deleted: (id: String, record: String)?,
        client: RedisClient, on loop: any EventLoop
    ) -> EventLoopFuture<(result: CommitResult, treeRevision: Int64)> {
        let keys = [self.revisionKey, self.treeKey, self.auditKey(oem: audit?.oem ?? "none"), self.deletedKey, self.treeRevisionKey, self.deltasKey]
        var whole = ""
        var delta = ""
        switch write {
        case .whole(let text): whole = text
        case .delta(let text): delta = text
        }
        let args = [String(base), whole, audit?.record ?? "", deleted?.id ?? "", deleted?.record ?? "", self.channel, revision.map(String.init) ?? "", delta]
        // Plain EVAL: admin changes are rare, so sending the script each time costs nothing
        // worth caching, and nothing depends on a script surviving a Redis restart.
        return client.send(on: loop, ["EVAL", Self.commitScript, String(keys.count)] + keys + args).flatMapThrowing { reply in
            guard let parts = reply.elements, parts.count == 3, let flag = parts[0].int64, let revision = parts[1].int64 else {
                throw StoreError(description: reply.errorMessage ?? "unexpected reply to the commit script")
            }
            return (flag == 1 ? .committed(revision: revision) : .conflict(current: revision), parts[2].int64 ?? 0)
        }
    }

    /// Writes the whole tree as of `revision` and trims the log below it, if the stored whole
    /// tree is older and the store has reached that revision. Returns whether it wrote.
    static let compactScript = """
        local stored = tonumber(redis.call('GET', KEYS[3]) or '0')
        local current = tonumber(redis.call('GET', KEYS[1]) or '0')
        local revision = tonumber(ARGV[1])
        if revision <= stored or revision > current or redis.call('HEXISTS', KEYS[4], revision) == 0 then return 0 end
        redis.call('SET', KEYS[2], ARGV[2])
        redis.call('SET', KEYS[3], revision)
        for _, field in ipairs(redis.call('HKEYS', KEYS[4])) do
          if tonumber(field) <= revision - tonumber(ARGV[3]) then redis.call('HDEL', KEYS[4], field) end
        end
        return 1
        """

    public func compact(text: String, revision: Int64, client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<Bool> {
        let keys = [self.revisionKey, self.treeKey, self.treeRevisionKey, self.deltasKey]
        let args = [String(revision), text, String(Self.deltasKeptBelowCompaction)]
        return client.send(on: loop, ["EVAL", Self.compactScript, String(keys.count)] + keys + args).flatMapThrowing { reply in
            guard let written = reply.int64 else { throw StoreError(description: reply.errorMessage ?? "unexpected reply to the compaction script") }
            return written == 1
        }
    }

    /// The deltas after `revision`, up to the current one, read together with it.
    static let changesScript = """
        local current = tonumber(redis.call('GET', KEYS[1]) or '0')
        local from = tonumber(ARGV[1])
        if current <= from or current - from > tonumber(ARGV[2]) then return {current} end
        local fields = {}
        for revision = from + 1, current do fields[#fields + 1] = tostring(revision) end
        local deltas = redis.call('HMGET', KEYS[2], unpack(fields))
        for index = 1, #deltas do if not deltas[index] then return {current} end end
        return {current, deltas}
        """

    /// What the store has after a revision a node holds.
    public enum Changes: Sendable, Equatable {
        /// Nothing newer.
        case upToDate(current: Int64)
        /// Each revision after the one asked about, as a delta, in order.
        case deltas(current: Int64, [String])
        /// Newer revisions, not all of them as deltas (too far behind, the log compacted, a store
        /// written anew): read the whole tree.
        case wholeTreeNeeded(current: Int64)
    }

    public func changes(after revision: Int64, client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<Changes> {
        let keys = [self.revisionKey, self.deltasKey]
        return client.send(on: loop, ["EVAL", Self.changesScript, String(keys.count)] + keys + [String(revision), String(Self.maxDeltasRead)]).flatMapThrowing { reply in
            guard let parts = reply.elements, let current = parts.first?.int64 else {
                throw StoreError(description: reply.errorMessage ?? "unexpected reply to the changes script")
            }
            if current <= revision { return .upToDate(current: current) }
            guard parts.count == 2, let deltas = parts[1].elements?.compactMap(\.string), deltas.count == Int(current - revision) else {
                return .wholeTreeNeeded(current: current)
            }
            return .deltas(current: current, deltas)
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

    /// The whole tree as of its last compaction and every delta since, read together.
    static let loadScript = """
        local current = redis.call('GET', KEYS[1])
        local text = redis.call('GET', KEYS[2])
        if not current or not text then return {} end
        current = tonumber(current)
        local stored = tonumber(redis.call('GET', KEYS[3]) or current)
        if stored >= current then return {current, text} end
        local fields = {}
        for revision = stored + 1, current do fields[#fields + 1] = tostring(revision) end
        local deltas = {}
        -- In slices: unpack has a limit on how many values it spreads.
        for first = 1, #fields, 1000 do
          local slice = redis.call('HMGET', KEYS[4], unpack(fields, first, math.min(first + 999, #fields)))
          for index = 1, #slice do
            if not slice[index] then return redis.error_reply('the change log of the admin store misses revision ' .. fields[first + index - 1]) end
            deltas[#deltas + 1] = slice[index]
          end
        end
        return {current, text, deltas}
        """

    /// The stored tree — the text of its last compaction and the deltas since — and its revision,
    /// read together; nil when nothing is stored yet.
    public func load(client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<(revision: Int64, text: String, deltas: [String])?> {
        let keys = [self.revisionKey, self.treeKey, self.treeRevisionKey, self.deltasKey]
        return client.send(on: loop, ["EVAL", Self.loadScript, String(keys.count)] + keys).flatMapThrowing { reply in
            guard let parts = reply.elements else { throw StoreError(description: reply.errorMessage ?? "unexpected reply to the load script") }
            guard parts.count >= 2, let revision = parts[0].int64, let text = parts[1].string else { return nil }
            let deltas = parts.count > 2 ? (parts[2].elements ?? []).compactMap(\.string) : []
            return (revision, text, deltas)
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
