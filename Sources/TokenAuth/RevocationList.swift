/// Revoked tokens, as one event loop knows them: single tokens by `jti` until their expiry, and
/// whole tenants' tokens issued before a moment. A value type owned by one loop; the gateway
/// keeps every loop's copy in step from the shared store (Redis) and its revocation messages.
///
/// Checked on every request, cached token or not, so a revocation takes effect as soon as the
/// loop hears of it — the verified-token cache never outlives one.
public struct RevocationList: Sendable, Equatable {
    /// jti → unix seconds after which the entry can be forgotten (the token's own expiry).
    private var tokens: [String: Int64] = [:]
    /// tenant → (tokens issued before this unix second are revoked, forget the entry after).
    private var tenants: [String: (issuedBefore: Int64, until: Int64)] = [:]

    public init() {}

    public var count: Int { self.tokens.count + self.tenants.count }

    public mutating func revoke(jwtID: String, until expiresAt: Int64) {
        self.tokens[jwtID] = max(self.tokens[jwtID] ?? 0, expiresAt)
    }

    /// Every token of `tenant` issued at or before `issuedBefore` (or without `iat`) is revoked;
    /// the entry is kept until `until`, the longest a token issued before then can live.
    public mutating func revoke(tenant: String, issuedBefore: Int64, until: Int64) {
        let previous = self.tenants[tenant]
        self.tenants[tenant] = (max(previous?.issuedBefore ?? 0, issuedBefore), max(previous?.until ?? 0, until))
    }

    public func isRevoked(_ token: VerifiedToken) -> Bool {
        if let jwtID = token.jwtID, self.tokens[jwtID] != nil { return true }
        if let tenant = self.tenants[token.tenant] {
            // `iat` is whole seconds: a token from the revocation's own second may predate it, so
            // it is revoked too. A token without iat cannot prove it is newer.
            return (token.issuedAt ?? Int64.min) <= tenant.issuedBefore
        }
        return false
    }

    /// Drops entries whose tokens have all expired.
    public mutating func prune(now: Int64) {
        self.tokens = self.tokens.filter { $0.value >= now }
        self.tenants = self.tenants.filter { $0.value.until >= now }
    }

    /// Merges another list (a resynchronization after a reconnect).
    public mutating func merge(_ other: RevocationList) {
        for (jwtID, until) in other.tokens { self.revoke(jwtID: jwtID, until: until) }
        for (tenant, entry) in other.tenants { self.revoke(tenant: tenant, issuedBefore: entry.issuedBefore, until: entry.until) }
    }

    public static func == (lhs: RevocationList, rhs: RevocationList) -> Bool {
        lhs.tokens == rhs.tokens && lhs.tenants.mapValues { [$0.issuedBefore, $0.until] } == rhs.tenants.mapValues { [$0.issuedBefore, $0.until] }
    }
}

/// The wire form of one revocation, as stored and published: `jti <jti> <expires-at>` or
/// `tenant <tenant> <issued-before> <until>`, unix seconds.
public enum RevocationMessage: Sendable, Equatable {
    case token(jwtID: String, expiresAt: Int64)
    case tenant(String, issuedBefore: Int64, until: Int64)

    public init?(_ text: String) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        switch parts.first {
        case "jti" where parts.count == 3:
            guard let expiresAt = Int64(parts[2]) else { return nil }
            self = .token(jwtID: String(parts[1]), expiresAt: expiresAt)
        case "tenant" where parts.count == 4:
            guard let before = Int64(parts[2]), let until = Int64(parts[3]) else { return nil }
            self = .tenant(String(parts[1]), issuedBefore: before, until: until)
        default:
            return nil
        }
    }

    public var text: String {
        switch self {
        case .token(let jwtID, let expiresAt): "jti \(jwtID) \(expiresAt)"
        case .tenant(let tenant, let before, let until): "tenant \(tenant) \(before) \(until)"
        }
    }

    public func apply(to list: inout RevocationList) {
        switch self {
        case .token(let jwtID, let expiresAt): list.revoke(jwtID: jwtID, until: expiresAt)
        case .tenant(let tenant, let before, let until): list.revoke(tenant: tenant, issuedBefore: before, until: until)
        }
    }
}
