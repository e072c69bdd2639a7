/// The JWS algorithms a verification key may be declared for (RFC 7518 §3.1).
///
/// Each key is pinned to exactly one of these when the configuration is compiled; a token's
/// `alg` header must name that algorithm verbatim and never chooses one. `none` is deliberately
/// absent: there is no key it could be declared for.
public enum SigningAlgorithm: String, Sendable, Hashable, CaseIterable {
    case RS256, RS384, RS512
    case ES256, ES384, ES512
    case HS256, HS384, HS512

    enum Family: Sendable {
        /// RSASSA-PKCS1-v1_5.
        case rsa
        /// ECDSA; the JWS signature is `r || s`, each `coordinateBytes` long.
        case ecdsa(curveName: String, coordinateBytes: Int)
        /// HMAC with a shared secret.
        case hmac
    }

    var family: Family {
        switch self {
        case .RS256, .RS384, .RS512: .rsa
        // OpenSSL's group names for NIST P-256, P-384 and P-521.
        case .ES256: .ecdsa(curveName: "prime256v1", coordinateBytes: 32)
        case .ES384: .ecdsa(curveName: "secp384r1", coordinateBytes: 48)
        case .ES512: .ecdsa(curveName: "secp521r1", coordinateBytes: 66)
        case .HS256, .HS384, .HS512: .hmac
        }
    }

    /// OpenSSL's name of the digest the algorithm signs with.
    var digestName: String {
        switch self {
        case .RS256, .ES256, .HS256: "SHA256"
        case .RS384, .ES384, .HS384: "SHA384"
        case .RS512, .ES512, .HS512: "SHA512"
        }
    }
}
