/// Why a bearer token was refused.
///
/// A struct around a private enum: callers compare against the public constants; `slug` is
/// stable (a problem `type` suffix and a bounded metrics label) and `description` is fixed per
/// reason. Neither ever quotes the token, a claim, an issuer or a key id — the caller logs
/// whatever context it judges safe next to the reason.
public struct TokenRejection: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Reason: Hashable, Sendable, CaseIterable {
        case tokenTooLarge
        case malformed
        case unknownIssuer
        case unknownKey
        case keysUnavailable
        case algorithmNotAllowed
        case badSignature
        case missingExpiry
        case expired
        case notYetValid
        case issuedInFuture
        case lifetimeTooLong
        case wrongAudience
        case missingTenant
        case missingSubject
    }

    private let reason: Reason

    private init(_ reason: Reason) { self.reason = reason }

    /// Longer than the verifier's limit; refused before any parsing.
    public static let tokenTooLarge = TokenRejection(.tokenTooLarge)
    /// Not three base64url segments, header or claims not JSON objects, an `alg` libjwt does not
    /// know, a `crit` header, or (after the signature check) a claim of the wrong JSON type.
    public static let malformed = TokenRejection(.malformed)
    /// `iss` absent, not a string, or not a configured issuer.
    public static let unknownIssuer = TokenRejection(.unknownIssuer)
    /// `kid` absent, not a string, or not one of the issuer's keys.
    public static let unknownKey = TokenRejection(.unknownKey)
    /// The issuer's keys come from its identity provider, and no key set fetched within the
    /// configured bound is at hand (never fetched, or the provider unreachable for too long).
    /// Not the token's fault: the proxy answers it as a 503 of its own.
    public static let keysUnavailable = TokenRejection(.keysUnavailable)
    /// The header's `alg` is not exactly the algorithm declared for the key (`none` included).
    public static let algorithmNotAllowed = TokenRejection(.algorithmNotAllowed)
    /// The signature does not verify with the pinned key, or has the wrong length.
    public static let badSignature = TokenRejection(.badSignature)
    /// No integer `exp`.
    public static let missingExpiry = TokenRejection(.missingExpiry)
    /// `exp` is past, beyond the clock skew.
    public static let expired = TokenRejection(.expired)
    /// `nbf` is in the future, beyond the clock skew.
    public static let notYetValid = TokenRejection(.notYetValid)
    /// `iat` is in the future, beyond the clock skew.
    public static let issuedInFuture = TokenRejection(.issuedInFuture)
    /// `exp − iat` (or `exp − now` without `iat`) exceeds the issuer's maximum lifetime.
    public static let lifetimeTooLong = TokenRejection(.lifetimeTooLong)
    /// `aud` absent, or neither the issuer's audience nor an array containing it.
    public static let wrongAudience = TokenRejection(.wrongAudience)
    /// The issuer's tenant claim is absent, not a string, or empty.
    public static let missingTenant = TokenRejection(.missingTenant)
    /// `sub` is absent, not a string, or empty.
    public static let missingSubject = TokenRejection(.missingSubject)

    /// Every reason, for tests and for registering metrics labels up front.
    public static let allReasons: [TokenRejection] = Reason.allCases.map(TokenRejection.init)

    /// Stable identifier: problem `type` suffix, log field, metrics label.
    public var slug: String {
        switch reason {
        case .tokenTooLarge: "token-too-large"
        case .malformed: "malformed-token"
        case .unknownIssuer: "unknown-issuer"
        case .unknownKey: "unknown-key"
        case .keysUnavailable: "issuer-keys-unavailable"
        case .algorithmNotAllowed: "algorithm-not-allowed"
        case .badSignature: "bad-signature"
        case .missingExpiry: "missing-expiry"
        case .expired: "token-expired"
        case .notYetValid: "token-not-yet-valid"
        case .issuedInFuture: "token-issued-in-future"
        case .lifetimeTooLong: "token-lifetime-too-long"
        case .wrongAudience: "wrong-audience"
        case .missingTenant: "missing-tenant"
        case .missingSubject: "missing-subject"
        }
    }

    public var description: String {
        switch reason {
        case .tokenTooLarge: "token is longer than allowed"
        case .malformed: "token is not a well-formed JWS with JSON header and claims"
        case .unknownIssuer: "token issuer is not configured"
        case .unknownKey: "token key id is not one of the issuer's keys"
        case .keysUnavailable: "the issuer's keys could not be fetched from its identity provider"
        case .algorithmNotAllowed: "token algorithm is not the one declared for its key"
        case .badSignature: "token signature does not verify"
        case .missingExpiry: "token has no integer expiry"
        case .expired: "token has expired"
        case .notYetValid: "token is not valid yet"
        case .issuedInFuture: "token is issued in the future"
        case .lifetimeTooLong: "token lifetime exceeds the issuer's maximum"
        case .wrongAudience: "token audience does not include this gateway"
        case .missingTenant: "token names no tenant"
        case .missingSubject: "token names no subject"
        }
    }
}
