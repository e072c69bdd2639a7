import Hierarchy
import Logging
import NIOCore
import RedisClient

extension AdminService {
    /// Reads what the operation is about, lets it judge, and stores what it decides: a grant
    /// changed only if it is still as read (else read and judge again, a bounded number of
    /// times), its audit record in the same step; a revoked grant's token revoked on every node
    /// through the revocation store before the answer.
    func supportGrant(_ operation: SupportGrantOperation, number: Int, on loop: any EventLoop) -> EventLoopFuture<AdminResponse> {
        let grants = SupportGrantStore(admin: self.store)
        let customer = operation.customer.leaf.rawValue
        let stored: EventLoopFuture<[String]>
        switch operation.kind {
        case .request, .list:
            // Listing and requesting are where grants ended past keeping are removed: the one
            // adds to the hash, the other reads it whole anyway.
            stored = grants.all(customer: customer, client: self.client, on: loop).flatMap { texts in
                grants.remove(customer: customer, ids: operation.trimmed(texts), client: self.client, on: loop).map { texts }
            }
        case .approve(let id), .refuse(let id), .revoke(let id), .token(let id):
            stored = grants.get(customer: customer, id: id, client: self.client, on: loop).map { $0.map { [$0] } ?? [] }
        }
        let auditKey = self.store.auditKey(oem: operation.customer.oem.rawValue)
        return stored.flatMap { texts -> EventLoopFuture<AdminResponse> in
            switch operation.judge(texts) {
            case .respond(let response):
                if response.status >= 400 { self.writes.supportGrant(.refused) }
                return loop.makeSucceededFuture(response)
            case .audited(let audit, let response):
                return self.store.appendAudit(oem: operation.customer.oem.rawValue, record: audit.json.text, client: self.client, on: loop).map {
                    self.logger.notice("support token issued", metadata: self.metadata(operation, audit))
                    return response
                }
            case .write(let expected, let next, let audit, let revocation, let response):
                return grants.write(
                    customer: customer, id: operation.grantID ?? "", expected: expected, next: next, auditKey: auditKey, audit: audit.json.text,
                    client: self.client, on: loop
                ).flatMap { written -> EventLoopFuture<AdminResponse> in
                    guard written else {
                        guard number < Self.maxAttempts else {
                            self.writes.supportGrant(.storeBusy)
                            return loop.makeSucceededFuture(AdminProblem.storeBusy.response(requestID: operation.requestID))
                        }
                        return self.supportGrant(operation, number: number + 1, on: loop)
                    }
                    self.writes.supportGrant(.committed)
                    self.logger.notice("support grant changed", metadata: self.metadata(operation, audit))
                    guard let revocation else { return loop.makeSucceededFuture(response) }
                    return self.revoker(revocation, loop, operation.now).map { _ in response }
                }
            }
        }.recover { error in
            self.writes.supportGrant(.storeUnavailable)
            self.logger.warning("cannot read or change a support grant", metadata: ["error": "\(error)", "request-id": "\(operation.requestID)"])
            return AdminProblem.storeUnavailable.response(requestID: operation.requestID)
        }
    }

    private func metadata(_ operation: SupportGrantOperation, _ audit: AuditRecord) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "action": "\(audit.action.rawValue)", "customer": "\(operation.customer)", "actor": "\(audit.actor)", "role": "\(audit.role.rawValue)",
            "request-id": "\(operation.requestID)",
        ]
        if let grant = operation.grantID { metadata["grant"] = "\(grant)" }
        if audit.changes.first?.after?["breakGlass"] == .bool(true) { metadata["break-glass"] = "true" }
        return metadata
    }

    /// The customer's support sessions, newest first, from its OEM's audit stream (where the
    /// data plane appends them as `session` entries next to the admin changes' `record`s).
    func supportSessions(oem: String, customer: NodePath, limit: Int, requestID: String, on loop: any EventLoop) -> EventLoopFuture<AdminResponse> {
        // An OEM's stream holds every change and session of all its customers: read a bounded
        // window of it, newest first.
        let window = min(limit * 50, 50_000)
        return self.client.send(on: loop, ["XREVRANGE", self.store.auditKey(oem: oem), "+", "-", "COUNT", String(window)]).flatMapThrowing { reply in
            guard let entries = reply.elements else { throw AdminStore.StoreError(description: reply.errorMessage ?? "unexpected reply to XREVRANGE") }
            var sessions: [JSONValue] = []
            for entry in entries where sessions.count < limit {
                guard let parts = entry.elements, parts.count == 2, let fields = parts[1].elements else { continue }
                var index = 0
                while index + 1 < fields.count {
                    if fields[index].string == "session", let text = fields[index + 1].string, let json = JSONValue.parse(Array(text.utf8)),
                        json["customer"]?.string == customer.description
                    {
                        sessions.append(json)
                    }
                    index += 2
                }
            }
            return AdminResponse.json(200, .object(["sessions": .array(sessions)]))
        }.recover { error in
            self.logger.warning("cannot read support sessions", metadata: ["error": "\(error)", "request-id": "\(requestID)"])
            return AdminProblem.storeUnavailable.response(requestID: requestID)
        }
    }
}
