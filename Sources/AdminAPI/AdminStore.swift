import Foundation
import NIOCore
import RedisClient

/// Where the tenant tree lives once the admin API is on: in the shared store, under the key
/// prefix, every key in one Redis Cluster slot (hash tag `{admin}`) so that a change, its revision,
/// its audit record and its announcement are one atomic script.
///
/// - `PREFIX:{admin}:tree` — the whole tree, in the tree file's format, keys inline, as of
///   revision `PREFIX:{admin}:tree-revision` (its last compaction), whose commit id is
///   `PREFIX:{admin}:tree-revision-id`.
/// - `PREFIX:{admin}:deltas` — a hash: for each revision after that one (and a few before), the
///   change that made it (`TreeDelta`). The tree at revision N is the tree text with the deltas up
///   to N applied.
/// - `PREFIX:{admin}:revision-ids` — a hash next to the deltas: each logged revision's commit id.
/// - `PREFIX:{admin}:revision` — the global revision: 1 for the seed, +1 per change; and
///   `PREFIX:{admin}:revision-id`, the commit id of that revision.
/// - `PREFIX:{admin}:audit:OEM` — a stream per OEM, one entry per change, append-only.
/// - `PREFIX:{admin}:deleted` — soft-deleted nodes by id, as they were when deleted.
/// - channel `PREFIX:{admin}:changes` — each new revision as `number:id`, as it is committed.
///
/// Why commit ids (`StoreRevision`): Redis replicates asynchronously, so with Sentinel or a
/// cluster a primary can acknowledge and announce a commit and die before its replica has it.
/// The promoted replica is a revision behind, and the next commit takes the lost number again
/// with other content. The number alone would let a node that applied the lost revision take the
/// new one's deltas on top of it (diverging for good), and let it commit a change computed on the
/// lost tree. So a revision is its number and its id: the commit compares both, and a node
/// applies deltas only on the revision the store has under its number; otherwise it reads the
/// whole tree and adopts it, even when its number is not higher. A store written before ids
/// existed has none: its revisions read as `StoreRevision.legacyID` on every side, and the next
/// commit writes a real one.
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
    public var revisionIDKey: String { "\(self.base):revision-id" }
    public var revisionIDsKey: String { "\(self.base):revision-ids" }
    public var treeRevisionIDKey: String { "\(self.base):tree-revision-id" }
    public var deletedKey: String { "\(self.base):deleted" }
    public var channel: String { "\(self.base):changes" }
    public func auditKey(oem: String) -> String { "\(self.base):audit:\(oem)" }

    /// Deltas logged before the whole tree is written again.
    public static let compactionInterval: Int64 = 100
    /// Deltas kept below a compaction, so that a node a little behind still catches up by deltas.
    public static let deltasKeptBelowCompaction: Int64 = 20
    /// At most this many deltas are read in one go; a node further behind reads the whole tree.
    public static let maxDeltasRead: Int64 = 1000

    /// Compare-and-set on the revision, its number and its id: the change is stored only if the
    /// stored revision is still the one the change was computed on; then the revision moves on
    /// under the id the committing node drew, the audit record is appended, a deleted node is
    /// kept, and the new revision is announced — all or nothing. A store without a revision
    /// (nothing stored, or the tree lost) takes a commit on base 0 whatever its base id.
    /// `ARGV[8]`, when given, is the change as a delta, logged under the new revision with its
    /// id; otherwise `ARGV[2]` is the whole tree, which replaces the stored one and empties the
    /// log. `ARGV[7]`, when given, is the revision to store instead of the next one: a seed
    /// written back by a node that already knows a later tree keeps its number (and its id).
    /// Returns `{1, new revision, revision of the stored whole tree}` or `{0, current revision, 0}`.
    static let commitScript = """
        local current = tonumber(redis.call('GET', KEYS[1]) or '0')
        local currentID = redis.call('GET', KEYS[7]) or 'legacy'
        if current ~= tonumber(ARGV[1]) or (current ~= 0 and currentID ~= ARGV[9]) then return {0, current, 0} end
        local nextRevision = current + 1
        if ARGV[7] ~= '' then nextRevision = tonumber(ARGV[7]) end
        if ARGV[8] ~= '' then
          -- A store written before the log existed holds its tree at the current revision.
          if redis.call('EXISTS', KEYS[5]) == 0 then
            redis.call('SET', KEYS[5], current)
            redis.call('SET', KEYS[9], currentID)
          end
          redis.call('HSET', KEYS[6], nextRevision, ARGV[8])
          redis.call('HSET', KEYS[8], nextRevision, ARGV[10])
        else
          redis.call('SET', KEYS[2], ARGV[2])
          redis.call('SET', KEYS[5], nextRevision)
          redis.call('SET', KEYS[9], ARGV[10])
          redis.call('DEL', KEYS[6], KEYS[8])
        end
        redis.call('SET', KEYS[1], nextRevision)
        redis.call('SET', KEYS[7], ARGV[10])
        if ARGV[3] ~= '' then redis.call('XADD', KEYS[3], '*', 'revision', nextRevision, 'record', ARGV[3]) end
        if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[4], ARGV[5]) end
        redis.call('PUBLISH', ARGV[6], nextRevision .. ':' .. ARGV[10])
        return {1, nextRevision, tonumber(redis.call('GET', KEYS[5]))}
        """

    public enum CommitResult: Sendable, Equatable {
        case committed(revision: Int64)
        /// Someone else committed first, or the store does not hold `base` (a failover lost it);
        /// the store is at `current`.
        case conflict(current: Int64)
    }

    public struct StoreError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Commits `text`, the whole tree, as the revision after `base` under the commit id `id` (or
    /// as `revision`, for a seed or a write-back). `audit` is `(OEM, record)`; seeding passes none.
    public func commit(
        text: String, base: StoreRevision, id: String, revision: Int64? = nil, audit: (oem: String, record: String)?,
        deleted: (id: String, record: String)?, client: RedisClient, on loop: any EventLoop
    ) -> EventLoopFuture<CommitResult> {
        self.commit(.whole(text), base: base, id: id, revision: revision, audit: audit, deleted: deleted, client: client, on: loop).map(\.result)
    }

    /// Commits one change (a delta, or the whole tree) as the revision after `base`, under the
    /// commit id `id`. Also says at which revision the stored whole tree is, for the caller to
    /// decide on a compaction.
    func commit(
        _ write: StoredTree.Write, base: StoreRevision, id: String, revision: Int64? = nil, audit: (oem: String, record: String)?,
        deleted: (id: String, record: String)?, client: RedisClient, on loop: any EventLoop
    ) -> EventLoopFuture<(result: CommitResult, treeRevision: Int64)> {
        let keys = [
            self.revisionKey, self.treeKey, self.auditKey(oem: audit?.oem ?? "none"), self.deletedKey, self.treeRevisionKey, self.deltasKey,
            self.revisionIDKey, self.revisionIDsKey, self.treeRevisionIDKey,
        ]
        var whole = ""
        var delta = ""
        switch write {
        case .whole(let text): whole = text
        case .delta(let text): delta = text
        }
        let args = [
            String(base.number), whole, audit?.record ?? "", deleted?.id ?? "", deleted?.record ?? "", self.channel, revision.map(String.init) ?? "", delta,
            base.id, id,
        ]
        // Plain EVAL: admin changes are rare, so sending the script each time costs nothing
        // worth caching, and nothing depends on a script surviving a Redis restart.
        return client.send(on: loop, ["EVAL", Self.commitScript, String(keys.count)] + keys + args).flatMapThrowing { reply in
            guard let parts = reply.elements, parts.count == 3, let flag = parts[0].int64, let revision = parts[1].int64 else {
                throw StoreError(description: reply.errorMessage ?? "unexpected reply to the commit script")
            }
            return (flag == 1 ? .committed(revision: revision) : .conflict(current: revision), parts[2].int64 ?? 0)
        }
    }

    /// Writes the whole tree as of `revision` and trims the log (and the ids next to it) below
    /// it, if the stored whole tree is older and the store holds that revision — its number and
    /// its id: a tree whose revision a failover lost is never written as the store's. Returns
    /// whether it wrote.
    static let compactScript = """
        local stored = tonumber(redis.call('GET', KEYS[3]) or '0')
        local current = tonumber(redis.call('GET', KEYS[1]) or '0')
        local revision = tonumber(ARGV[1])
        if revision <= stored or revision > current or redis.call('HEXISTS', KEYS[4], revision) == 0 then return 0 end
        if (redis.call('HGET', KEYS[5], revision) or 'legacy') ~= ARGV[4] then return 0 end
        redis.call('SET', KEYS[2], ARGV[2])
        redis.call('SET', KEYS[3], revision)
        redis.call('SET', KEYS[6], ARGV[4])
        for _, key in ipairs({KEYS[4], KEYS[5]}) do
          for _, field in ipairs(redis.call('HKEYS', key)) do
            if tonumber(field) <= revision - tonumber(ARGV[3]) then redis.call('HDEL', key, field) end
          end
        end
        return 1
        """

    public func compact(text: String, revision: StoreRevision, client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<Bool> {
        let keys = [self.revisionKey, self.treeKey, self.treeRevisionKey, self.deltasKey, self.revisionIDsKey, self.treeRevisionIDKey]
        let args = [String(revision.number), text, String(Self.deltasKeptBelowCompaction), revision.id]
        return client.send(on: loop, ["EVAL", Self.compactScript, String(keys.count)] + keys + args).flatMapThrowing { reply in
            guard let written = reply.int64 else { throw StoreError(description: reply.errorMessage ?? "unexpected reply to the compaction script") }
            return written == 1
        }
    }

    /// The deltas after the revision a node holds, up to the current one, read together with the
    /// current revision and its id — if the store holds the node's revision under the node's id.
    /// The store's id for a revision is the head's, the one logged next to its delta, or the
    /// compacted tree's; a store without ids (written by an older version) says the legacy id.
    /// A revision whose id is no longer known (its delta trimmed) needs the whole tree.
    /// Returns `{current, current id, kind[, deltas]}`; kind 0 up to date, 1 deltas, 2 whole tree
    /// needed, 3 another history.
    static let changesScript = """
        local current = tonumber(redis.call('GET', KEYS[1]) or '0')
        local currentID = redis.call('GET', KEYS[3]) or 'legacy'
        local from = tonumber(ARGV[1])
        if current == 0 then return {current, currentID, 0} end
        if from > current then return {current, currentID, 3} end
        local fromID = currentID
        if from < current then
          fromID = redis.call('HGET', KEYS[4], from)
          if not fromID and tonumber(redis.call('GET', KEYS[5]) or '-1') == from then fromID = redis.call('GET', KEYS[6]) or 'legacy' end
          if not fromID and redis.call('EXISTS', KEYS[3]) == 0 then fromID = 'legacy' end
          if not fromID then return {current, currentID, 2} end
        end
        if fromID ~= ARGV[2] then return {current, currentID, 3} end
        if current == from then return {current, currentID, 0} end
        if current - from > tonumber(ARGV[3]) then return {current, currentID, 2} end
        local fields = {}
        for revision = from + 1, current do fields[#fields + 1] = tostring(revision) end
        local deltas = redis.call('HMGET', KEYS[2], unpack(fields))
        for index = 1, #deltas do if not deltas[index] then return {current, currentID, 2} end end
        return {current, currentID, 1, deltas}
        """

    /// What the store has after a revision a node holds.
    public enum Changes: Sendable, Equatable {
        /// Nothing newer (or nothing at all: number 0, the store lost its tree).
        case upToDate(current: StoreRevision)
        /// Each revision after the one asked about, as a delta, in order.
        case deltas(current: StoreRevision, [String])
        /// Newer revisions, not all of them as deltas (too far behind, the log compacted, a store
        /// written anew): read the whole tree.
        case wholeTreeNeeded(current: StoreRevision)
        /// The store does not hold the node's revision: under its number it has another id, or
        /// it is at a lower number. A failover lost the node's revision (and maybe more): read
        /// the whole tree and adopt it, whatever its number.
        case anotherHistory(current: StoreRevision)
    }

    public func changes(after held: StoreRevision, client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<Changes> {
        let keys = [self.revisionKey, self.deltasKey, self.revisionIDKey, self.revisionIDsKey, self.treeRevisionKey, self.treeRevisionIDKey]
        let args = [String(held.number), held.id, String(Self.maxDeltasRead)]
        return client.send(on: loop, ["EVAL", Self.changesScript, String(keys.count)] + keys + args).flatMapThrowing { reply in
            guard let parts = reply.elements, parts.count >= 3, let number = parts[0].int64, let id = parts[1].string, let kind = parts[2].int64 else {
                throw StoreError(description: reply.errorMessage ?? "unexpected reply to the changes script")
            }
            let current = StoreRevision(number: number, id: id)
            switch kind {
            case 0: return .upToDate(current: current)
            case 3: return .anotherHistory(current: current)
            case 1:
                guard parts.count == 4, let deltas = parts[3].elements?.compactMap(\.string), deltas.count == Int(number - held.number) else {
                    return .wholeTreeNeeded(current: current)
                }
                return .deltas(current: current, deltas)
            default: return .wholeTreeNeeded(current: current)
            }
        }
    }

    /// Appends a record that is not part of a tree change (a token revocation).
    public func appendAudit(oem: String, record: String, client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<Void> {
        client.send(on: loop, ["XADD", self.auditKey(oem: oem), "*", "record", record]).flatMapThrowing { reply in
            if let error = reply.errorMessage { throw StoreError(description: error) }
        }
    }

    /// The stored revision alone, number and id (number 0: nothing stored yet): what every node
    /// polls.
    public func head(client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<StoreRevision> {
        client.send(on: loop, ["MGET", self.revisionKey, self.revisionIDKey]).flatMapThrowing { reply in
            guard let parts = reply.elements, parts.count == 2 else { throw StoreError(description: reply.errorMessage ?? "unexpected reply to MGET") }
            if parts[0].isNull { return StoreRevision(number: 0, id: StoreRevision.legacyID) }
            guard let number = parts[0].int64 else { throw StoreError(description: "the admin store's revision is not a number") }
            return StoreRevision(number: number, id: parts[1].string ?? StoreRevision.legacyID)
        }
    }

    /// The whole tree as of its last compaction and every delta since, read together.
    /// Returns `{}` or `{current, current id, text[, deltas]}`.
    static let loadScript = """
        local current = redis.call('GET', KEYS[1])
        local text = redis.call('GET', KEYS[2])
        if not current or not text then return {} end
        current = tonumber(current)
        local currentID = redis.call('GET', KEYS[5]) or 'legacy'
        local stored = tonumber(redis.call('GET', KEYS[3]) or current)
        if stored >= current then return {current, currentID, text} end
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
        return {current, currentID, text, deltas}
        """

    /// The stored tree — the text of its last compaction and the deltas since — and its revision
    /// (number and commit id), read together; nil when nothing is stored yet.
    public func load(client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<(revision: Int64, id: String, text: String, deltas: [String])?> {
        let keys = [self.revisionKey, self.treeKey, self.treeRevisionKey, self.deltasKey, self.revisionIDKey]
        return client.send(on: loop, ["EVAL", Self.loadScript, String(keys.count)] + keys).flatMapThrowing { reply in
            guard let parts = reply.elements else { throw StoreError(description: reply.errorMessage ?? "unexpected reply to the load script") }
            guard parts.count >= 3, let revision = parts[0].int64, let id = parts[1].string, let text = parts[2].string else { return nil }
            let deltas = parts.count > 3 ? (parts[3].elements ?? []).compactMap(\.string) : []
            return (revision, id, text, deltas)
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
