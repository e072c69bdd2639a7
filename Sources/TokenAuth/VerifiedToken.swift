/// The claims of a token whose signature was checked with its issuer's pinned key and whose
/// time, lifetime, audience and tenant claims passed the issuer's policy.
///
/// Only `TokenVerifier` creates these (the initializer is internal to the module), so a value of
/// this type is evidence of verification. Whether `tenant` lies inside the issuer's subtree, and
/// whether `jwtID` is revoked, is for the caller to decide: this module knows no tenant tree.
/// Times are unix seconds.
public struct VerifiedToken: Sendable, Hashable {
    public let issuer: String
    /// The `kid` of the key that verified the signature.
    public let keyID: String
    public let subject: String
    /// `aud`, as one or several strings; contains the issuer's configured audience.
    public let audience: [String]
    public let expiresAt: Int64
    public let issuedAt: Int64?
    public let notBefore: Int64?
    public let jwtID: String?
    /// The value of the issuer's tenant claim: the customer the token speaks for.
    public let tenant: String
    /// Admin tokens: the role (`platform-admin`, `oem-admin`, …), not interpreted here.
    public let role: String?
    /// Admin tokens: the node administered, not interpreted here.
    public let node: String?
    /// Support tokens (`role: support`): the grant they were minted for (`grant`, `ticket`,
    /// `scope` claims); nil when the token has no `grant` claim. Only the data plane decides
    /// whether the issuer may mint such tokens (the gateway's own support issuer).
    public let support: SupportClaims?

    init(
        issuer: String, keyID: String, subject: String, audience: [String], expiresAt: Int64,
        issuedAt: Int64?, notBefore: Int64?, jwtID: String?, tenant: String, role: String?, node: String?, support: SupportClaims? = nil
    ) {
        self.issuer = issuer
        self.keyID = keyID
        self.subject = subject
        self.audience = audience
        self.expiresAt = expiresAt
        self.issuedAt = issuedAt
        self.notBefore = notBefore
        self.jwtID = jwtID
        self.tenant = tenant
        self.role = role
        self.node = node
        self.support = support
    }
}

/// The claims a support token carries about its grant, as signed.
public struct SupportClaims: Sendable, Hashable {
    /// The support grant's id (also the token's `jti`, so revoking the grant revokes the token).
    public let grant: String
    /// The ticket the grant was requested under.
    public let ticket: String
    /// `read-only`, or `routes:` and the catalog route prefixes allowed, comma-separated.
    public let scope: String

    public init(grant: String, ticket: String, scope: String) {
        self.grant = grant
        self.ticket = ticket
        self.scope = scope
    }
}
