import Hierarchy
import TokenAuth

/// `POST …/revocations`: token revocations, authorized like any admin action.
extension AdminEngine.Context {
    /// `{"allTokens": true}` on a customer: every token issued for it until now. `{"jti": …,
    /// "expiresAt": …}`: one token. Not a change of the tree: no `If-Match`.
    func revoke(_ target: (source: NodeSource, path: NodePath)) -> AdminOutcome {
        guard let body = self.body() else { return self.refuse(.malformedBody) }
        let label = target.path.description
        let message: RevocationMessage
        let action: AdminAction
        var change: [String: JSONValue] = [:]
        switch (body["allTokens"], body["jti"]) {
        case (.bool(true)?, nil):
            guard target.source.kind == .customer else {
                return self.refuse(.invalidChange, [FieldProblem(node: label, field: "allTokens", message: "tokens speak for customers: revoke on a customer")])
            }
            // Kept as long as the longest token an issuer may mint could live.
            message = .tenant(target.source.id, issuedBefore: self.now, until: self.now + Self.longestTokenLifetime)
            action = .revokeTenantTokens
            change["issuedBefore"] = .integer(self.now)
        case (nil, .string(let jti)?):
            guard !jti.isEmpty, jti.utf8.count <= 256, !jti.contains(where: \.isWhitespace) else {
                return self.refuse(.invalidChange, [FieldProblem(node: label, field: "jti", message: "a jti is 1 to 256 characters without spaces")])
            }
            guard case .integer(let expiresAt)? = body["expiresAt"], expiresAt > 0 else {
                return self.refuse(.invalidChange, [FieldProblem(node: label, field: "expiresAt", message: "the token's expiry (unix seconds) is required")])
            }
            message = .token(jwtID: jti, expiresAt: expiresAt)
            action = .revokeTokenByID
            change["jti"] = .string(jti)
        default:
            return self.refuse(.invalidChange, [FieldProblem(node: label, field: "", message: "give {\"allTokens\": true} or {\"jti\": …, \"expiresAt\": …}")])
        }
        guard AdminAuthorization.decide(self.principal, action, target: target.path) == .allowed else { return self.refuse(.actionForbidden) }
        let audit = AuditRecord(
            time: self.now, actor: self.principal.actor, role: self.principal.role, node: target.path, action: .revokeTokens,
            changes: [AuditRecord.FieldChange(field: "tokens", before: nil, after: .object(change))], requestID: self.requestID
        )
        let response = AdminResponse.json(202, .object(["revoked": .object(change), "node": .string(label)]))
        return .revoke(AdminRevocation(message: message, audit: audit, oem: target.path.oem.rawValue, response: response))
    }

    /// The longest lifetime an issuer may give a token (`maxLifetime` is at most 30 days).
    static let longestTokenLifetime: Int64 = 30 * 24 * 3600
}
