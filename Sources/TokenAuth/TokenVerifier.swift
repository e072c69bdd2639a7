/// Verifies bearer tokens against the configured issuers.
///
/// Built once per configuration snapshot and shared by every event loop (all members are
/// immutable). The checks run in a fixed order, and no claim is read before the signature
/// verified with the key pinned for the token's issuer and `kid`:
///
/// 1. size limit, before any parsing;
/// 2. parse (three base64url segments, JSON header and claims via libjwt, no `crit`);
/// 3. issuer (`iss`) known; 4. key (`kid`) known for that issuer — configured, or fetched from
///    its identity provider and still within its bound (`keysUnavailable` otherwise);
/// 5. the header's `alg` equals the key's declared algorithm — the header never chooses one,
///    and `none` equals none of them;
/// 6. signature over the exact `header.payload` bytes with the pinned key;
/// 7. claims: `exp` (required), `nbf`, `iat`, lifetime, `aud`, tenant claim, `sub`, and the
///    types of `jti`, `role`, `node`.
///
/// Revocation and the tenant subtree are the caller's: it has the revocation set and the tree.
public struct TokenVerifier: Sendable {
    /// Tokens longer than this (bytes) are refused unread.
    public let maxTokenBytes: Int

    private let issuers: [String: IssuerPolicy]

    public static let defaultMaxTokenBytes = 8192

    /// - Throws: `IssuerPolicyError.duplicateIssuer` when two policies share an `iss`.
    public init(issuers: [IssuerPolicy], maxTokenBytes: Int = TokenVerifier.defaultMaxTokenBytes) throws(IssuerPolicyError) {
        precondition(maxTokenBytes > 0, "maxTokenBytes must be positive")
        var byIssuer: [String: IssuerPolicy] = [:]
        for policy in issuers {
            guard byIssuer.updateValue(policy, forKey: policy.issuer) == nil else { throw .duplicateIssuer }
        }
        self.issuers = byIssuer
        self.maxTokenBytes = maxTokenBytes
    }

    /// - Parameters:
    ///   - token: the credentials of `Authorization: Bearer`, exactly as received.
    ///   - now: the current time in unix seconds, from the caller's clock.
    ///   - fetched: the key sets of the issuers whose keys are fetched (`IssuerPolicy.keySource`);
    ///     an issuer missing from it has no usable keys yet.
    public func verify(_ token: Substring, now: Int64, fetched: FetchedKeySets = .none) -> Result<VerifiedToken, TokenRejection> {
        Result { () throws(TokenRejection) in try check(token, now: now, fetched: fetched) }
    }

    /// Whether `issuer`'s keys are fetched from its identity provider.
    public func fetchesKeys(of issuer: String) -> Bool {
        if case .fetched = issuers[issuer]?.keySource { return true }
        return false
    }

    /// The token's `iss` when that issuer's keys are fetched: after an `unknownKey` rejection,
    /// whom to ask for a refresh. Parses the token again — only refused tokens come here.
    public func fetchedIssuer(of token: Substring) -> String? {
        guard let issuer = (try? UnverifiedToken.parse(token, maxBytes: maxTokenBytes))?.issuer, fetchesKeys(of: issuer) else { return nil }
        return issuer
    }

    private func check(_ token: Substring, now: Int64, fetched: FetchedKeySets) throws(TokenRejection) -> VerifiedToken {
        guard token.utf8.count <= maxTokenBytes else { throw .tokenTooLarge }
        let unverified = try UnverifiedToken.parse(token, maxBytes: maxTokenBytes)
        guard let issuer = unverified.issuer, let policy = issuers[issuer] else { throw .unknownIssuer }
        let key: VerificationKey
        switch policy.keySource {
        case .configured:
            guard let kid = unverified.kid, let configured = policy.keysByID[kid] else { throw .unknownKey }
            key = configured
        case .fetched(let algorithms):
            guard let set = fetched.byIssuer[issuer], now < set.usableUntil else { throw .keysUnavailable }
            guard let kid = unverified.kid, let found = set.key(id: kid, headerAlgorithm: unverified.headerAlgorithm) else { throw .unknownKey }
            // The set holds pinned algorithms only; checked again so no published key widens them.
            guard let match = found, algorithms.contains(match.algorithm) else { throw .algorithmNotAllowed }
            key = match
        }
        let kid = key.kid
        guard unverified.headerAlgorithm == key.algorithm.rawValue else { throw .algorithmNotAllowed }
        guard let proof = key.checkSignature(of: unverified) else { throw .badSignature }
        return try Self.accept(unverified.claims(checkedBy: proof), issuer: issuer, keyID: kid, policy: policy, now: now)
    }

    /// The claim rules, on claims whose signature verified.
    private static func accept(
        _ claims: SignedClaims, issuer: String, keyID: String, policy: IssuerPolicy, now: Int64
    ) throws(TokenRejection) -> VerifiedToken {
        let skew = policy.clockSkewSeconds
        // The issuer's clock may run up to `skew` ahead of or behind ours.
        let earliest = now.subtractingSaturated(skew)
        let latest = now.addingSaturated(skew)

        guard case .present(let expiresAt) = claims.integer("exp") else { throw .missingExpiry }
        // RFC 7519 §4.1.4: valid only before `exp`.
        guard expiresAt > earliest else { throw .expired }
        let notBefore = try optional(claims.integer("nbf"))
        if let notBefore, notBefore > latest { throw .notYetValid }
        let issuedAt = try optional(claims.integer("iat"))
        if let issuedAt, issuedAt > latest { throw .issuedInFuture }

        let (lifetime, overflow) = expiresAt.subtractingReportingOverflow(issuedAt ?? now)
        guard !overflow, lifetime <= policy.maxLifetimeSeconds else { throw .lifetimeTooLong }

        guard case .present(let audience) = claims.audience(), audience.contains(policy.audience) else {
            throw .wrongAudience
        }
        guard case .present(let tenant) = claims.string(policy.tenantClaim), !tenant.isEmpty else {
            throw .missingTenant
        }
        guard case .present(let subject) = claims.string("sub"), !subject.isEmpty else { throw .missingSubject }

        return VerifiedToken(
            issuer: issuer,
            keyID: keyID,
            subject: subject,
            audience: audience,
            expiresAt: expiresAt,
            issuedAt: issuedAt,
            notBefore: notBefore,
            jwtID: try optional(claims.string("jti")),
            tenant: tenant,
            role: try optional(claims.string("role")),
            node: try optional(claims.string("node")),
            support: try Self.supportClaims(claims)
        )
    }

    /// `grant`, `ticket` and `scope`, read only when `grant` is there (support tokens).
    private static func supportClaims(_ claims: SignedClaims) throws(TokenRejection) -> SupportClaims? {
        guard let grant = try optional(claims.string("grant")) else { return nil }
        guard let ticket = try optional(claims.string("ticket")), let scope = try optional(claims.string("scope")) else { throw .malformed }
        return SupportClaims(grant: grant, ticket: ticket, scope: scope)
    }

    /// An optional claim: absent is fine, the wrong JSON type is not.
    private static func optional<Value>(_ claim: SignedClaims.Claim<Value>) throws(TokenRejection) -> Value? {
        switch claim {
        case .absent: return nil
        case .present(let value): return value
        case .wrongType: throw .malformed
        }
    }
}

extension Int64 {
    fileprivate func addingSaturated(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    fileprivate func subtractingSaturated(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other > 0 ? .min : .max) : difference
    }
}
