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

    init(
        issuer: String, keyID: String, subject: String, audience: [String], expiresAt: Int64,
        issuedAt: Int64?, notBefore: Int64?, jwtID: String?, tenant: String, role: String?, node: String?
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
    }
}
