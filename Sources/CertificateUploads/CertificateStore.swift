import NIOCore
import RedisClient

/// Where uploaded certificates live in the shared store: next to the tenant tree, under the same
/// hash tag (`{admin}`, one Redis Cluster slot), so that a change, its audit record (in the OEM's
/// audit stream) and its announcement are one atomic script.
///
/// - `PREFIX:{admin}:certificates` — a hash: portal domain → the record (`StoredCertificate`).
/// - `PREFIX:{admin}:certificates:versions` — a hash: portal domain → its record's version. Kept
///   after a deletion, so a version is never given twice for one domain.
/// - `PREFIX:{admin}:certificates:revision` — +1 per change of any certificate: what every node
///   polls.
/// - channel `PREFIX:{admin}:certificates:changes` — each new revision, as it is committed.
public struct CertificateStore: Sendable {
    public let keyPrefix: String

    public init(keyPrefix: String) {
        self.keyPrefix = keyPrefix
    }

    var base: String { "\(self.keyPrefix):{admin}" }
    public var recordsKey: String { "\(self.base):certificates" }
    public var versionsKey: String { "\(self.base):certificates:versions" }
    public var revisionKey: String { "\(self.base):certificates:revision" }
    public var channel: String { "\(self.base):certificates:changes" }

    public struct StoreError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The domain's record and its version, read together (version 0: never uploaded; a version
    /// without a record: deleted).
    static let readScript = """
        return {redis.call('HGET', KEYS[1], ARGV[1]) or '0', redis.call('HGET', KEYS[2], ARGV[1])}
        """

    /// Compare-and-set on the domain's version: the record is written (or, with an empty record,
    /// deleted) only if the version is still the one the change was judged on; then the revision
    /// moves on, the audit record is appended and the revision announced — all or nothing.
    /// Returns `{1, revision}` or `{0, current version}`.
    static let changeScript = """
        local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
        if current ~= tonumber(ARGV[2]) then return {0, current} end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
        if ARGV[4] == '' then redis.call('HDEL', KEYS[2], ARGV[1]) else redis.call('HSET', KEYS[2], ARGV[1], ARGV[4]) end
        local revision = redis.call('INCR', KEYS[3])
        if ARGV[5] ~= '' then redis.call('XADD', KEYS[4], '*', 'record', ARGV[5]) end
        redis.call('PUBLISH', ARGV[6], revision)
        return {1, revision}
        """

    /// Every record and the revision they make, read together.
    static let listScript = """
        return {redis.call('GET', KEYS[1]) or '0', redis.call('HVALS', KEYS[2])}
        """

    /// The domain's current state: its version and record.
    public struct Current: Sendable, Equatable {
        /// 0 when the domain never had a certificate.
        public var version: Int64
        public var record: StoredCertificate?

        public init(version: Int64, record: StoredCertificate?) {
            self.version = version
            self.record = record
        }
    }

    public func current(domain: String, client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<Current> {
        client.send(on: loop, ["EVAL", Self.readScript, "2", self.versionsKey, self.recordsKey, domain]).flatMapThrowing { reply in
            guard let parts = reply.elements, parts.count == 2, let version = parts[0].int64 else {
                throw StoreError(description: reply.errorMessage ?? "unexpected reply to the certificate read script")
            }
            if parts[1].isNull { return Current(version: version, record: nil) }
            guard let text = parts[1].string, let record = StoredCertificate(storedText: text) else {
                throw StoreError(description: "the stored certificate of \(domain) cannot be read")
            }
            return Current(version: version, record: record)
        }
    }

    public enum ChangeResult: Sendable, Equatable {
        /// Written; the certificates' revision is now `revision`.
        case committed(revision: Int64)
        /// Someone else changed the domain first; its version is `current`.
        case conflict(current: Int64)
    }

    /// Writes `record` (its `version` must be `base` + 1) or, with nil, deletes the domain's record
    /// (as version `base` + 1), if the domain is still at `base`. `audit` is the audit stream's key
    /// and the record to append to it.
    public func change(
        domain: String, base: Int64, record: StoredCertificate?, audit: (stream: String, record: String)?, client: RedisClient, on loop: any EventLoop
    ) -> EventLoopFuture<ChangeResult> {
        precondition(record.map { $0.version == base + 1 && $0.domain == domain } ?? true, "a record is written as the next version of its own domain")
        let keys = [self.versionsKey, self.recordsKey, self.revisionKey, audit?.stream ?? "\(self.base):audit:none"]
        let args = [domain, String(base), String(base + 1), record?.storedText ?? "", audit?.record ?? "", self.channel]
        // Plain EVAL, as for the tree: certificate changes are rare.
        return client.send(on: loop, ["EVAL", Self.changeScript, String(keys.count)] + keys + args).flatMapThrowing { reply in
            guard let parts = reply.elements, parts.count == 2, let flag = parts[0].int64, let value = parts[1].int64 else {
                throw StoreError(description: reply.errorMessage ?? "unexpected reply to the certificate change script")
            }
            return flag == 1 ? .committed(revision: value) : .conflict(current: value)
        }
    }

    /// Every stored record and the revision they make. A record that cannot be read is left out
    /// and named in `unreadable` (by its position: nothing of it is trusted).
    public func all(client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<(revision: Int64, records: [StoredCertificate], unreadable: Int)> {
        client.send(on: loop, ["EVAL", Self.listScript, "2", self.revisionKey, self.recordsKey]).flatMapThrowing { reply in
            guard let parts = reply.elements, parts.count == 2, let revision = parts[0].int64,
                let values = parts[1].elements
            else {
                throw StoreError(description: reply.errorMessage ?? "unexpected reply to the certificate list script")
            }
            let records = values.compactMap { $0.string.flatMap(StoredCertificate.init(storedText:)) }
            return (revision, records.sorted { $0.domain < $1.domain }, values.count - records.count)
        }
    }

    /// Writes back records a node had read, under their revision, into a store that lost them
    /// (flushed, replaced by an empty instance) — only while the store has no revision at all,
    /// so of several nodes noticing at once one writes, and a store in use is never touched.
    /// `ARGV`: the channel, then domain, version and record of each, then the revision.
    static let restoreScript = """
        if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
        for i = 2, #ARGV - 1, 3 do
          redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
          redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
        end
        redis.call('SET', KEYS[1], ARGV[#ARGV])
        redis.call('PUBLISH', ARGV[1], ARGV[#ARGV])
        return 1
        """

    /// True if the records were written back, false if the store had a revision again.
    public func restore(_ records: [StoredCertificate], revision: Int64, client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<Bool> {
        let keys = [self.revisionKey, self.recordsKey, self.versionsKey]
        let args = [self.channel] + records.flatMap { [$0.domain, String($0.version), $0.storedText] } + [String(revision)]
        return client.send(on: loop, ["EVAL", Self.restoreScript, String(keys.count)] + keys + args).flatMapThrowing { reply in
            guard let written = reply.int64 else { throw StoreError(description: reply.errorMessage ?? "unexpected reply to the certificate restore script") }
            return written == 1
        }
    }

    /// The revision alone (0: no certificate was ever uploaded): what every node polls.
    public func revision(client: RedisClient, on loop: any EventLoop) -> EventLoopFuture<Int64> {
        client.send(on: loop, ["GET", self.revisionKey]).flatMapThrowing { reply in
            if reply.isNull { return 0 }
            guard let revision = reply.int64 else { throw StoreError(description: reply.errorMessage ?? "unexpected reply to GET") }
            return revision
        }
    }
}
