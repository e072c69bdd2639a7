import CertificateUploads
import GatewayConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Quotas
import RedisClient
import TenantHealthStore
import TokenAuth

/// Carries out what `AdminEngine` decides: commits changes to the store, reads audit logs.
/// A commit that loses the compare-and-set (another node or request committed first, or a
/// failover lost the revision it was computed on) is judged again on the store's tree — its
/// `If-Match` may have gone stale meanwhile — a bounded number of times.
public final class AdminService: Sendable {
    private let latest: LatestTree
    /// Brings the store's newest tree into `latest` after a lost compare-and-set.
    private let feed: TreeFeed
    let store: AdminStore
    /// Uploaded portal certificates: next to the tree, under the same key prefix.
    private let certificates: CertificateStore
    let client: RedisClient
    let logger: Logger
    /// Stores and announces a token revocation (the data plane's revocation store); returns
    /// the number of gateway nodes that heard it.
    public typealias Revoker = @Sendable (RevocationMessage, _ loop: any EventLoop, _ now: Int64) -> EventLoopFuture<Int64>
    let revoker: Revoker
    /// Where customers' usage per day is read.
    private let usage: UsageMeter
    /// Where the nodes' per-minute tenant figures are read; nil: none are (health answers
    /// without figures).
    private let health: TenantHealthStore?
    /// Unix seconds; injected so that tests control time.
    private let clock: @Sendable () -> Int64
    let writes = AdminWriteMetrics()
    /// Fetches an issuer's keys from its identity provider, for changes that name one; nil:
    /// such changes are refused.
    public typealias IssuerKeyFetching = @Sendable (FetchedIssuer) async -> Result<[String], IssuerKeyFetchError>
    private let fetchIssuerKeys: IssuerKeyFetching?
    /// A compaction is under way; another is not started meanwhile.
    private let compacting = NIOLockedValueBox(false)

    static let maxAttempts = 3

    public init(
        latest: LatestTree, feed: TreeFeed, store: AdminStore, client: RedisClient, revoker: @escaping Revoker, usage: UsageMeter, health: TenantHealthStore? = nil,
        logger: Logger, clock: @escaping @Sendable () -> Int64 = UnixTime.nowSeconds, fetchIssuerKeys: IssuerKeyFetching? = nil
    ) {
        self.fetchIssuerKeys = fetchIssuerKeys
        self.revoker = revoker
        self.usage = usage
        self.health = health
        self.latest = latest
        self.feed = feed
        self.store = store
        self.certificates = CertificateStore(keyPrefix: store.keyPrefix)
        self.client = client
        self.logger = logger
        self.clock = clock
    }

    public func handle(_ request: AdminRequest, on loop: any EventLoop) -> EventLoopFuture<AdminResponse> {
        self.attempt(request, number: 1, on: loop)
    }

    private func attempt(_ request: AdminRequest, number: Int, on loop: any EventLoop) -> EventLoopFuture<AdminResponse> {
        let now = self.clock()
        switch AdminEngine.handle(request, tree: self.latest.current, now: now) {
        case .respond(let response):
            // A refused change is answered here; a read is too, and is not counted.
            if request.method != "GET", response.status >= 400 {
                if request.target.contains("/revocations") {
                    self.writes.revocation(.refused)
                } else if request.target.contains("/support-grants") {
                    self.writes.supportGrant(.refused)
                } else if request.target.contains("/certificates") {
                    self.writes.certificate(.refused)
                } else {
                    self.writes.tree(.refused)
                }
            }
            return loop.makeSucceededFuture(response)

        case .readAudit(let oem, let subtree, let limit):
            return self.store.audit(oem: oem, count: limit, client: self.client, on: loop).map { records in
                AdminEngine.auditResponse(records, subtree: subtree)
            }.recover { error in
                self.logger.warning("cannot read the audit log", metadata: ["error": "\(error)", "request-id": "\(request.requestID)"])
                return AdminProblem.storeUnavailable.response(requestID: request.requestID)
            }

        case .readUsage(let customers, let day):
            let reads = customers.map { path in
                self.usage.read(oem: path.oem, customer: path.leaf, days: [day], on: loop).map { days in (path: path, day: days[0]) }
            }
            return EventLoopFuture.whenAllSucceed(reads, on: loop).map { rows in
                AdminEngine.usageResponse(rows, day: day)
            }.recover { error in
                self.logger.warning("cannot read usage", metadata: ["error": "\(error)", "request-id": "\(request.requestID)"])
                return AdminProblem.storeUnavailable.response(requestID: request.requestID)
            }

        case .readHealth(let read):
            let figures: EventLoopFuture<[Int64: [String]]>
            if let tenant = read.figures, let health = self.health {
                figures = health.read(tenant, minutes: read.minutes, on: loop)
            } else {
                figures = loop.makeSucceededFuture([:])
            }
            let usage = EventLoopFuture.whenAllSucceed(read.customers.map { path in
                self.usage.read(oem: path.oem, customer: path.leaf, days: [read.day], on: loop).map { $0[0] }
            }, on: loop)
            return figures.and(usage).map { published, days in
                AdminEngine.healthResponse(read, published: published, usage: days)
            }.recover { error in
                self.logger.warning("cannot read tenant health", metadata: ["error": "\(error)", "request-id": "\(request.requestID)"])
                return AdminProblem.storeUnavailable.response(requestID: request.requestID)
            }

        case .revoke(let revocation):
            return self.revoker(revocation.message, loop, now).flatMap { _ in
                self.store.appendAudit(oem: revocation.oem, record: revocation.audit.json.text, client: self.client, on: loop)
            }.map {
                self.logger.notice("tokens revoked through the admin API", metadata: [
                    "node": "\(revocation.audit.node)", "actor": "\(revocation.audit.actor)", "request-id": "\(request.requestID)",
                ])
                self.writes.revocation(.committed)
                return revocation.response
            }.recover { error in
                self.writes.revocation(.storeUnavailable)
                self.logger.warning("cannot revoke", metadata: ["error": "\(error)", "request-id": "\(request.requestID)"])
                return AdminProblem.storeUnavailable.response(requestID: request.requestID)
            }

        case .readCertificates(let read):
            let records: EventLoopFuture<[StoredCertificate]>
            if let domain = read.domain {
                records = self.certificates.current(domain: domain, client: self.client, on: loop).map { current in current.record.map { [$0] } ?? [] }
            } else {
                records = self.certificates.all(client: self.client, on: loop).map(\.records)
            }
            return records.map(read.response).recover { error in
                self.logger.warning("cannot read certificates", metadata: ["error": "\(error)", "request-id": "\(request.requestID)"])
                return AdminProblem.storeUnavailable.response(requestID: request.requestID)
            }

        case .changeCertificate(let change):
            return self.changeCertificate(change, number: 1, on: loop)

        case .supportGrant(let operation):
            return self.supportGrant(operation, number: 1, on: loop)

        case .readSupportSessions(let oem, let customer, let limit):
            return self.supportSessions(oem: oem, customer: customer, limit: limit, requestID: request.requestID, on: loop)

        case .fetchIssuerKeys(let fetches):
            guard let fetch = self.fetchIssuerKeys else {
                self.writes.tree(.refused)
                return loop.makeSucceededFuture(AdminProblem.invalidChange.response(requestID: request.requestID, errors: fetches.map {
                    FieldProblem(node: $0.node, field: $0.field, message: "this gateway cannot fetch keys from identity providers")
                }))
            }
            let promise = loop.makePromise(of: AdminResponse.self)
            promise.completeWithTask {
                var keys: [String: [String]] = [:]
                var problems: [FieldProblem] = []
                for entry in fetches {
                    switch await fetch(entry.issuer) {
                    case .success(let found): keys[entry.issuer.issuer] = found
                    case .failure(let error): problems.append(FieldProblem(node: entry.node, field: entry.field, message: "keys not fetched: \(error)"))
                    }
                }
                if !problems.isEmpty {
                    self.writes.tree(.refused)
                    return AdminProblem.invalidChange.response(requestID: request.requestID, errors: problems)
                }
                var checked = request
                checked.fetchedIssuerKeys = keys
                return try await self.attempt(checked, number: number, on: loop).get()
            }
            return promise.futureResult

        case .commit(let commit):
            // This node draws the new revision's commit id.
            let id = StoreRevision.newID()
            return self.store.commit(
                commit.write, base: commit.base, id: id, audit: (commit.oem, commit.audit.json.text),
                deleted: commit.deleted.map { ($0.id, $0.record.text) }, client: self.client, on: loop
            ).flatMap { result, treeRevision in
                switch result {
                case .committed(let revision):
                    let next = StoredTree(revision: revision, commitID: id, document: commit.next.document, configuration: commit.next.configuration)
                    self.latest.offer(next)
                    self.logger.notice("admin change committed", metadata: [
                        "revision": "\(revision)", "node": "\(commit.audit.node)", "action": "\(commit.audit.action.rawValue)",
                        "actor": "\(commit.audit.actor)", "request-id": "\(request.requestID)",
                    ])
                    self.writes.tree(.committed)
                    if revision - treeRevision >= AdminStore.compactionInterval { self.compact(next, on: loop) }
                    return loop.makeSucceededFuture(commit.response)
                case .conflict:
                    guard number < Self.maxAttempts else {
                        self.writes.tree(.storeBusy)
                        return loop.makeSucceededFuture(AdminProblem.storeBusy.response(requestID: request.requestID))
                    }
                    // Bring the store's tree in (a newer one, or the one a failover went back
                    // to), then judge the request again on it.
                    return self.feed.synchronize(reason: "commit conflict").hop(to: loop).flatMap { _ in
                        self.attempt(request, number: number + 1, on: loop)
                    }
                }
            }.recover { error in
                self.writes.tree(.storeUnavailable)
                self.logger.warning("cannot commit an admin change", metadata: ["error": "\(error)", "request-id": "\(request.requestID)"])
                return AdminProblem.storeUnavailable.response(requestID: request.requestID)
            }
        }
    }

    /// Writes the whole tree at `tree`'s revision to the store, so that the change log stays
    /// short: serialized on a thread of the shared pool (seconds at 100,000 customers), never on
    /// an event loop and never while a write waits. Nothing depends on it succeeding: the next
    /// commit past the interval tries again.
    private func compact(_ tree: StoredTree, on loop: any EventLoop) {
        let compacting = self.compacting.withLockedValue { busy -> Bool in
            defer { busy = true }
            return !busy
        }
        guard compacting else { return }
        NIOThreadPool.singleton.runIfActive(eventLoop: loop) { tree.text }.flatMap { text in
            self.store.compact(text: text, revision: tree.storeRevision, client: self.client, on: loop)
        }.whenComplete { result in
            self.compacting.withLockedValue { $0 = false }
            switch result {
            case .success(let written):
                if written { self.logger.notice("admin store change log compacted", metadata: ["revision": "\(tree.revision)"]) }
            case .failure(let error):
                self.logger.warning("cannot compact the admin store's change log; the next change tries again", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Reads the domain's stored certificate, judges the change against it (preconditions, what
    /// to write) and commits it if the domain is still at the version read; otherwise reads and
    /// judges again, a bounded number of times.
    private func changeCertificate(_ change: CertificateChange, number: Int, on loop: any EventLoop) -> EventLoopFuture<AdminResponse> {
        self.certificates.current(domain: change.domain, client: self.client, on: loop).flatMap { current -> EventLoopFuture<AdminResponse> in
            switch change.judge(current) {
            case .respond(let response):
                if response.status >= 400 { self.writes.certificate(.refused) }
                return loop.makeSucceededFuture(response)
            case .write(let base, let record, let audit, let response):
                return self.certificates.change(
                    domain: change.domain, base: base, record: record, audit: (self.store.auditKey(oem: change.path.oem.rawValue), audit.json.text),
                    client: self.client, on: loop
                ).flatMap { result in
                    switch result {
                    case .committed(let revision):
                        var metadata: Logger.Metadata = [
                            "domain": "\(change.domain)", "node": "\(change.path)", "version": "\(base + 1)", "revision": "\(revision)",
                            "actor": "\(change.actor)", "request-id": "\(change.requestID)",
                        ]
                        if let record { metadata["fingerprint"] = "\(record.summary.fingerprint)" }
                        self.logger.notice(record == nil ? "portal certificate deleted" : "portal certificate uploaded", metadata: metadata)
                        self.writes.certificate(.committed)
                        return loop.makeSucceededFuture(response)
                    case .conflict:
                        guard number < Self.maxAttempts else {
                            self.writes.certificate(.storeBusy)
                            return loop.makeSucceededFuture(AdminProblem.storeBusy.response(requestID: change.requestID))
                        }
                        return self.changeCertificate(change, number: number + 1, on: loop)
                    }
                }
            }
        }.recover { error in
            self.writes.certificate(.storeUnavailable)
            self.logger.warning("cannot change a certificate", metadata: ["error": "\(error)", "request-id": "\(change.requestID)"])
            return AdminProblem.storeUnavailable.response(requestID: change.requestID)
        }
    }
}

/// Why an identity provider's keys could not be fetched for an admin change; the message is
/// the fetcher's fixed description.
public struct IssuerKeyFetchError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
