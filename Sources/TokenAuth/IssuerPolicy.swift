/// What the gateway accepts from one token issuer (one `iss`): its keys and its claim rules.
///
/// Validated once at construction, immutable after. Which customers the issuer may speak for
/// (its subtree) is not here: `VerifiedToken.issuer` and `.tenant` let the caller check that
/// against the tenant tree.
public struct IssuerPolicy: Sendable {
    /// The exact `iss` value.
    public let issuer: String
    /// Must appear in the token's `aud` (a string or one element of an array).
    public let audience: String
    /// Upper bound on `exp − iat` (or `exp − now` without `iat`), in seconds.
    public let maxLifetimeSeconds: Int64
    /// Tolerance for the issuer's clock on `exp`, `nbf` and `iat`, in seconds.
    public let clockSkewSeconds: Int64
    /// The claim naming the customer the token speaks for.
    public let tenantClaim: String
    /// Every active key; several during a rotation. Key ids are unique. Empty for an issuer
    /// whose keys are fetched.
    public let keys: [VerificationKey]
    /// Where the issuer's keys come from.
    public let keySource: KeySource

    public enum KeySource: Sendable, Hashable {
        /// `keys`, from the configuration.
        case configured
        /// The issuer's identity provider (JWKS), published by the fetcher as `FetchedKeySets`;
        /// only keys for these algorithms are ever used.
        case fetched(algorithms: Set<SigningAlgorithm>)
    }

    let keysByID: [String: VerificationKey]

    public static let defaultClockSkewSeconds: Int64 = 30
    public static let defaultTenantClaim = "tenant"

    public init(
        issuer: String,
        audience: String,
        maxLifetimeSeconds: Int64,
        clockSkewSeconds: Int64 = IssuerPolicy.defaultClockSkewSeconds,
        tenantClaim: String = IssuerPolicy.defaultTenantClaim,
        keys: [VerificationKey],
        keySource: KeySource = .configured
    ) throws(IssuerPolicyError) {
        guard !issuer.isEmpty else { throw .emptyIssuer }
        guard !audience.isEmpty else { throw .emptyAudience }
        guard maxLifetimeSeconds > 0 else { throw .nonPositiveLifetime }
        guard clockSkewSeconds >= 0 else { throw .negativeClockSkew }
        guard !tenantClaim.isEmpty else { throw .emptyTenantClaim }
        if case .fetched(let algorithms) = keySource {
            guard keys.isEmpty else { throw .keysAndFetchedKeys }
            guard !algorithms.isEmpty, algorithms.allSatisfy(\.isAsymmetric) else { throw .noFetchableAlgorithm }
        }
        var keysByID: [String: VerificationKey] = [:]
        for key in keys {
            guard keysByID.updateValue(key, forKey: key.kid) == nil else { throw .duplicateKeyID }
        }
        self.issuer = issuer
        self.audience = audience
        self.maxLifetimeSeconds = maxLifetimeSeconds
        self.clockSkewSeconds = clockSkewSeconds
        self.tenantClaim = tenantClaim
        self.keys = keys
        self.keySource = keySource
        self.keysByID = keysByID
    }
}

/// Why an issuer policy or a set of them is invalid. Fixed descriptions.
public struct IssuerPolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Reason: Hashable, Sendable {
        case emptyIssuer
        case emptyAudience
        case nonPositiveLifetime
        case negativeClockSkew
        case emptyTenantClaim
        case duplicateKeyID
        case duplicateIssuer
        case keysAndFetchedKeys
        case noFetchableAlgorithm
    }

    private let reason: Reason

    private init(_ reason: Reason) { self.reason = reason }

    public static let emptyIssuer = IssuerPolicyError(.emptyIssuer)
    public static let emptyAudience = IssuerPolicyError(.emptyAudience)
    public static let nonPositiveLifetime = IssuerPolicyError(.nonPositiveLifetime)
    public static let negativeClockSkew = IssuerPolicyError(.negativeClockSkew)
    public static let emptyTenantClaim = IssuerPolicyError(.emptyTenantClaim)
    /// Two keys of one issuer share a `kid`.
    public static let duplicateKeyID = IssuerPolicyError(.duplicateKeyID)
    /// Two policies given to one verifier share an `iss`.
    public static let duplicateIssuer = IssuerPolicyError(.duplicateIssuer)
    /// An issuer with fetched keys was given configured keys too.
    public static let keysAndFetchedKeys = IssuerPolicyError(.keysAndFetchedKeys)
    /// An issuer with fetched keys pins no algorithm, or an HS* one (never published in a JWKS).
    public static let noFetchableAlgorithm = IssuerPolicyError(.noFetchableAlgorithm)

    public var slug: String {
        switch reason {
        case .emptyIssuer: "empty-issuer"
        case .emptyAudience: "empty-audience"
        case .nonPositiveLifetime: "non-positive-lifetime"
        case .negativeClockSkew: "negative-clock-skew"
        case .emptyTenantClaim: "empty-tenant-claim"
        case .duplicateKeyID: "duplicate-key-id"
        case .duplicateIssuer: "duplicate-issuer"
        case .keysAndFetchedKeys: "keys-and-fetched-keys"
        case .noFetchableAlgorithm: "no-fetchable-algorithm"
        }
    }

    public var description: String {
        switch reason {
        case .emptyIssuer: "issuer is empty"
        case .emptyAudience: "audience is empty"
        case .nonPositiveLifetime: "maximum token lifetime must be positive"
        case .negativeClockSkew: "clock skew must not be negative"
        case .emptyTenantClaim: "tenant claim name is empty"
        case .duplicateKeyID: "two keys of one issuer share a key id"
        case .duplicateIssuer: "two issuer policies share an issuer"
        case .keysAndFetchedKeys: "an issuer takes its keys from the configuration or from its identity provider, not both"
        case .noFetchableAlgorithm: "an issuer with fetched keys must allow at least one RS, PS, ES or EdDSA algorithm, and no HS one"
        }
    }
}
