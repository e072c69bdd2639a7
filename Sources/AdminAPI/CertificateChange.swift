import Certificates
import CertificateUploads
import Foundation
import Hierarchy

/// A read of a node's uploaded certificates, for the service to fetch from the store.
public struct CertificateRead: Sendable {
    /// The node's id and path.
    public let node: String
    public let path: NodePath
    /// One domain's certificate; nil: every certificate of the node.
    public let domain: String?
    /// The tree the request was judged in: a certificate is `served` when its domain is still
    /// its node's portal domain there.
    public let tree: TenantSnapshot
    public let now: Int64
    public let requestID: String

    /// The answer, from the records the store holds (those of other nodes are left out here).
    public func response(_ records: [StoredCertificate]) -> AdminResponse {
        let own = records.filter { $0.node == self.node }.sorted { $0.domain < $1.domain }
        guard let domain = self.domain else {
            return .json(200, .object(["certificates": .array(own.map { CertificateJSON.encode($0, path: self.path, tree: self.tree, now: self.now) })]))
        }
        guard let record = own.first(where: { $0.domain == domain }) else {
            return AdminProblem.certificateNotFound.response(requestID: self.requestID)
        }
        return .json(200, CertificateJSON.encode(record, path: self.path, tree: self.tree, now: self.now), etag: CertificateJSON.etag(record))
    }
}

/// An upload or deletion of one portal domain's certificate, authorized and validated by the
/// engine (the chain checked against the key, the time and the domain). What is left needs the
/// domain's stored record: the preconditions, and what to write — `judge`, a pure function of
/// that record, which the service runs after reading it and again after a lost compare-and-set.
public struct CertificateChange: Sendable {
    public enum Kind: Sendable {
        /// The key is the PEM as uploaded; it is sealed when the record is made, and nothing
        /// else keeps it.
        case put(chainPEM: String, keyPEM: String, summary: CertificateSummary, keyEncryptionKey: KeyEncryptionKey)
        case delete
    }

    public let kind: Kind
    public let domain: String
    /// The id and path of the node whose portal domain it is.
    public let node: String
    public let path: NodePath
    public let tree: TenantSnapshot
    /// The tenant tree's revision the change was judged on (a dry run reports it).
    public let treeRevision: Int64
    /// `If-Match`: the ETags (or `*`) of which one must be the current record's; nil: none sent.
    public let ifMatch: [String]?
    /// `If-None-Match: *`: only if the node has no certificate for the domain yet.
    public let ifNoneMatch: Bool
    public let isDryRun: Bool
    public let actor: String
    public let role: AdminRole
    public let requestID: String
    public let now: Int64

    /// What to do once the domain's stored state is known.
    public enum Decision: Sendable {
        case respond(AdminResponse)
        /// Write `record` (nil: delete) as the version after `base`, with its audit record.
        case write(base: Int64, record: StoredCertificate?, audit: AuditRecord, response: AdminResponse)
    }

    public func judge(_ current: CertificateStore.Current) -> Decision {
        // Another node's record for the domain (one that no longer owns it) is not this node's:
        // it is replaced, never shown, and its details stay out of this node's audit log.
        let existing = current.record.flatMap { $0.node == self.node ? $0 : nil }
        if let ifMatch = self.ifMatch {
            guard let existing, ifMatch.contains("*") || ifMatch.contains(CertificateJSON.etag(existing)) else {
                return .respond(AdminProblem.preconditionFailed.response(requestID: self.requestID))
            }
        }
        if self.ifNoneMatch, existing != nil {
            return .respond(AdminProblem.preconditionFailed.response(requestID: self.requestID))
        }
        let record: StoredCertificate?
        let status: Int
        switch self.kind {
        case .delete:
            guard existing != nil else { return .respond(AdminProblem.certificateNotFound.response(requestID: self.requestID)) }
            record = nil
            status = 204
        case .put(let chainPEM, let keyPEM, let summary, let keyEncryptionKey):
            if let existing, existing.chainPEM == chainPEM, (try? existing.openKey(with: keyEncryptionKey)) != nil {
                // The chain already stored, so the same key, sealed under this key-encryption key:
                // nothing to change. (Sealed under another one, after a rotation, it is sealed again.)
                let json = CertificateJSON.encode(existing, path: self.path, tree: self.tree, now: self.now)
                return .respond(self.isDryRun ? self.dryRun(json, changes: []) : .json(200, json, etag: CertificateJSON.etag(existing)))
            }
            record = StoredCertificate.sealing(
                keyPEM: keyPEM, with: keyEncryptionKey, domain: self.domain, node: self.node, chainPEM: chainPEM, summary: summary,
                uploadedAt: self.now, uploadedBy: self.actor, version: current.version + 1
            )
            status = existing == nil ? 201 : 200
        }
        let changes = [AuditRecord.FieldChange(
            field: "certificates.\(self.domain)", before: existing.map(CertificateJSON.audited), after: record.map(CertificateJSON.audited)
        )]
        let json = record.map { CertificateJSON.encode($0, path: self.path, tree: self.tree, now: self.now) }
        if self.isDryRun { return .respond(self.dryRun(json ?? .null, changes: changes)) }
        let audit = AuditRecord(
            time: self.now, actor: self.actor, role: self.role, node: self.path, action: record == nil ? .deleteCertificate : .putCertificate,
            changes: changes, requestID: self.requestID
        )
        let response: AdminResponse
        if let record, let json {
            response = .json(status, json, etag: CertificateJSON.etag(record))
        } else {
            response = AdminResponse(status: status, body: "")
        }
        return .write(base: current.version, record: record, audit: audit, response: response)
    }

    /// The dry run's answer in the shape of every other: what the change would answer, the
    /// changes, the tenant tree's revision it was judged on.
    private func dryRun(_ result: JSONValue, changes: [AuditRecord.FieldChange]) -> AdminResponse {
        .json(200, .object([
            "dryRun": .bool(true), "node": result, "changes": .array(changes.map(\.json)), "revision": .integer(self.treeRevision),
        ]))
    }
}

/// A stored certificate as the admin API shows it: what the chain says and who uploaded it
/// when. Built from named fields only, so neither the key nor its sealed form can appear.
enum CertificateJSON {
    static func encode(_ record: StoredCertificate, path: NodePath, tree: TenantSnapshot, now: Int64) -> JSONValue {
        let summary = record.summary
        return .object([
            "domain": .string(record.domain),
            "node": .string(path.description),
            "names": .strings(summary.names),
            "subject": .string(summary.subject),
            "issuer": .string(summary.issuer),
            "notBefore": .string(AdminEngine.isoSecond(summary.notBefore)),
            "notAfter": .string(AdminEngine.isoSecond(summary.notAfter)),
            // Whole days left, rounded down; negative once expired.
            "expiresInDays": .integer(Self.floorDiv(summary.notAfter - now, 86_400)),
            "fingerprint": .string(summary.fingerprint),
            "chainLength": .integer(Int64(summary.chainLength)),
            "uploadedAt": .string(AdminEngine.isoSecond(record.uploadedAt)),
            "uploadedBy": .string(record.uploadedBy),
            "version": .integer(record.version),
            "served": .bool(ServedCertificates.isOwned(record, in: tree)),
        ])
    }

    /// A strong validator of the stored record: it changes with every upload (version) and
    /// never with the time (`expiresInDays`) or the tree (`served`).
    static func etag(_ record: StoredCertificate) -> String {
        JSONValue.object([
            "domain": .string(record.domain), "node": .string(record.node), "version": .integer(record.version),
            "fingerprint": .string(record.summary.fingerprint), "uploadedAt": .integer(record.uploadedAt),
        ]).etag
    }

    /// What the audit log keeps of a certificate: enough to tell which one it was.
    static func audited(_ record: StoredCertificate) -> JSONValue {
        .object([
            "fingerprint": .string(record.summary.fingerprint),
            "names": .strings(record.summary.names),
            "notAfter": .string(AdminEngine.isoSecond(record.summary.notAfter)),
            "version": .integer(record.version),
        ])
    }

    static func floorDiv(_ value: Int64, _ divisor: Int64) -> Int64 {
        let quotient = value / divisor
        return (value % divisor != 0 && (value < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

extension AdminEngine.Context {
    /// Fields of an upload's body.
    static let certificateFields: Set<String> = ["certificate", "key"]

    /// `PUT …/certificates/{domain}`: the domain must be the node's own portal domain, the chain
    /// must belong to the key, be valid now and cover the domain. Every problem is listed by the
    /// field it is about (`domain`, `certificate`, `key`); the key is never quoted.
    func putCertificate(_ target: (source: NodeSource, path: NodePath), domain: String, tree: TenantSnapshot) -> AdminOutcome {
        guard AdminAuthorization.decide(self.principal, .manageCertificates, target: target.path) == .allowed else { return self.refuse(.actionForbidden) }
        guard let uploads = self.tree.configuration.settings.certificateUploads else { return self.refuse(.certificateUploadsDisabled) }
        guard let body = self.body(), let fields = body.object else { return self.refuse(.malformedBody) }
        let label = target.path.description
        var problems: [FieldProblem] = []
        let ownsDomain = tree.policy(target.path.leaf)?.portalDomains.contains(domain) == true
        if !ownsDomain {
            problems.append(FieldProblem(node: label, field: "domain", message: "'\(domain)' is not a portal domain of \(label)"))
        }
        for field in fields.keys.sorted() where !Self.certificateFields.contains(field) {
            problems.append(FieldProblem(node: label, field: field, message: "is not a field of an upload (certificate, key)"))
        }
        let chainPEM = body["certificate"]?.string, keyPEM = body["key"]?.string
        if chainPEM == nil {
            problems.append(FieldProblem(node: label, field: "certificate", message: "the certificate chain is required: PEM text, the leaf first, then its issuers"))
        }
        if keyPEM == nil {
            problems.append(FieldProblem(node: label, field: "key", message: "the private key is required: PEM text (unencrypted PKCS#8, RSA or EC)"))
        }
        var summary: CertificateSummary?
        if let chainPEM, let keyPEM {
            do {
                summary = try CertificateInspection.check(chainPEM: chainPEM, keyPEM: keyPEM, covering: [domain], now: self.now)
            } catch {
                // Whether it covers a domain the node does not own is beside the point.
                if case .doesNotCover = error, !ownsDomain {} else {
                    problems.append(FieldProblem(node: label, field: error.field, message: error.description))
                }
            }
        }
        guard problems.isEmpty, let chainPEM, let keyPEM, let summary else { return self.refuse(.invalidCertificate, problems) }
        return .changeCertificate(self.certificateChange(
            .put(chainPEM: chainPEM, keyPEM: keyPEM, summary: summary, keyEncryptionKey: uploads.keyEncryptionKey), target, domain: domain, tree: tree
        ))
    }

    /// `DELETE …/certificates/{domain}`: needs no key-encryption key, so a certificate can be
    /// taken down even where uploads are off.
    func deleteCertificate(_ target: (source: NodeSource, path: NodePath), domain: String, tree: TenantSnapshot) -> AdminOutcome {
        guard AdminAuthorization.decide(self.principal, .manageCertificates, target: target.path) == .allowed else { return self.refuse(.actionForbidden) }
        return .changeCertificate(self.certificateChange(.delete, target, domain: domain, tree: tree))
    }

    private func certificateChange(
        _ kind: CertificateChange.Kind, _ target: (source: NodeSource, path: NodePath), domain: String, tree: TenantSnapshot
    ) -> CertificateChange {
        CertificateChange(
            kind: kind, domain: domain, node: target.source.id, path: target.path, tree: tree, treeRevision: self.tree.revision,
            ifMatch: self.request.header("if-match").map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } },
            ifNoneMatch: self.request.header("if-none-match")?.trimmingCharacters(in: .whitespaces) == "*",
            isDryRun: self.isDryRun, actor: self.principal.actor, role: self.principal.role, requestID: self.requestID, now: self.now
        )
    }
}
