/// The JWS algorithms a verification key may be declared for (RFC 7518 §3.1, RFC 8037 §3.1).
///
/// Each key is pinned to exactly one of these when the configuration is compiled; a token's
/// `alg` header must name that algorithm verbatim and never chooses one. `none` is deliberately
/// absent: there is no key it could be declared for.
public enum SigningAlgorithm: String, Sendable, Hashable, CaseIterable {
    case RS256, RS384, RS512
    case PS256, PS384, PS512
    case ES256, ES384, ES512
    /// Ed25519 (RFC 8037); Ed448 is not accepted.
    case EdDSA
    case HS256, HS384, HS512

    enum Family: Sendable {
        /// RSASSA-PKCS1-v1_5.
        case rsa
        /// RSASSA-PSS, MGF1 with the same digest, salt as long as the digest (RFC 7518 §3.5).
        case rsaPSS
        /// ECDSA; the JWS signature is `r || s`, each `coordinateBytes` long.
        case ecdsa(curveName: String, coordinateBytes: Int)
        /// Ed25519: the signature is over the message itself, no separate digest.
        case eddsa
        /// HMAC with a shared secret.
        case hmac
    }

    var family: Family {
        switch self {
        case .RS256, .RS384, .RS512: .rsa
        case .PS256, .PS384, .PS512: .rsaPSS
        // OpenSSL's group names for NIST P-256, P-384 and P-521.
        case .ES256: .ecdsa(curveName: "prime256v1", coordinateBytes: 32)
        case .ES384: .ecdsa(curveName: "secp384r1", coordinateBytes: 48)
        case .ES512: .ecdsa(curveName: "secp521r1", coordinateBytes: 66)
        case .EdDSA: .eddsa
        case .HS256, .HS384, .HS512: .hmac
        }
    }

    /// OpenSSL's name of the digest the algorithm signs with; nil for EdDSA, which hashes
    /// inside the signature scheme.
    var digestName: String? {
        switch self {
        case .RS256, .PS256, .ES256, .HS256: "SHA256"
        case .RS384, .PS384, .ES384, .HS384: "SHA384"
        case .RS512, .PS512, .ES512, .HS512: "SHA512"
        case .EdDSA: nil
        }
    }

    /// Whether tokens of this algorithm are signed with a private key (and checked with a
    /// public one), as opposed to a shared secret.
    public var isAsymmetric: Bool {
        if case .hmac = family { return false }
        return true
    }
}

extension SigningAlgorithm {
    /// libjwt 1.10 neither decodes nor signs these: `UnverifiedToken` reads their header itself
    /// and `TokenMinter` signs them through OpenSSL.
    var unknownToLibJWT: Bool {
        switch family {
        case .rsaPSS, .eddsa: true
        case .rsa, .ecdsa, .hmac: false
        }
    }
}
