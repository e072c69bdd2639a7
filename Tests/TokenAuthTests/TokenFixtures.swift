import COpenSSL
@testable import TokenAuth

/// One issuer with a key for every algorithm the tests mint, and helpers to build tokens by
/// hand (headers and claims no honest minter would write).
enum Fixture {
    /// Injected clock: the tests never read the real time.
    static let now: Int64 = 1_760_000_000
    static let issuer = "https://login.oem-a.example"
    static let audience = "erp-gateway"
    static let maxLifetime: Int64 = 3600
    static let skew: Int64 = 30
    static let hmacSecret = Array("test-only-hmac-secret-of-32-bytes!!".utf8)

    /// kid → (algorithm, what signs). Two RS256 kids model a rotation overlap.
    struct SigningKey {
        let kid: String
        let algorithm: SigningAlgorithm
        let privatePEM: String?
        let secret: [UInt8]?
    }

    static let rsaCurrent = SigningKey(kid: "rsa-2025", algorithm: .RS256, privatePEM: TestKeys.rsaA.privatePEM, secret: nil)
    static let rsaNext = SigningKey(kid: "rsa-2026", algorithm: .RS256, privatePEM: TestKeys.rsaB.privatePEM, secret: nil)
    static let rsa384 = SigningKey(kid: "rsa-384", algorithm: .RS384, privatePEM: TestKeys.rsaB.privatePEM, secret: nil)
    static let rsa512 = SigningKey(kid: "rsa-512", algorithm: .RS512, privatePEM: TestKeys.rsaA.privatePEM, secret: nil)
    static let ec256 = SigningKey(kid: "ec-256", algorithm: .ES256, privatePEM: TestKeys.ecP256.privatePEM, secret: nil)
    static let ec384 = SigningKey(kid: "ec-384", algorithm: .ES384, privatePEM: TestKeys.ecP384.privatePEM, secret: nil)
    static let ec512 = SigningKey(kid: "ec-521", algorithm: .ES512, privatePEM: TestKeys.ecP521.privatePEM, secret: nil)
    static let hmac256 = SigningKey(kid: "hs-256", algorithm: .HS256, privatePEM: nil, secret: hmacSecret)

    static let signingKeys = [rsaCurrent, rsaNext, rsa384, rsa512, ec256, ec384, ec512, hmac256]

    static func verificationKeys() throws -> [VerificationKey] {
        let publicPEMs = [
            rsaCurrent.kid: TestKeys.rsaA.publicPEM, rsaNext.kid: TestKeys.rsaB.publicPEM,
            rsa384.kid: TestKeys.rsaB.publicPEM, rsa512.kid: TestKeys.rsaA.publicPEM,
            ec256.kid: TestKeys.ecP256.publicPEM, ec384.kid: TestKeys.ecP384.publicPEM,
            ec512.kid: TestKeys.ecP521.publicPEM,
        ]
        return try signingKeys.map { key in
            if let secret = key.secret {
                return try VerificationKey(kid: key.kid, algorithm: key.algorithm, secret: secret)
            }
            return try VerificationKey(kid: key.kid, algorithm: key.algorithm, pem: publicPEMs[key.kid]!)
        }
    }

    static func policy(keys: [VerificationKey]? = nil, tenantClaim: String = "tenant") throws -> IssuerPolicy {
        try IssuerPolicy(
            issuer: issuer, audience: audience, maxLifetimeSeconds: maxLifetime,
            clockSkewSeconds: skew, tenantClaim: tenantClaim, keys: keys ?? verificationKeys()
        )
    }

    static func verifier(maxTokenBytes: Int = 8192) throws -> TokenVerifier {
        try TokenVerifier(issuers: [policy()], maxTokenBytes: maxTokenBytes)
    }

    /// A valid customer token's claims at `now`.
    static func claims(
        _ changes: [String: ClaimValue?] = [:]
    ) -> [String: ClaimValue] {
        var claims: [String: ClaimValue] = [
            "iss": .string(issuer),
            "sub": "user-17",
            "aud": .string(audience),
            "iat": .integer(now),
            "exp": .integer(now + 600),
            "jti": "jti-0001",
            "tenant": "contoso",
        ]
        for (name, value) in changes {
            claims[name] = value
        }
        return claims
    }

    static func mint(_ claims: [String: ClaimValue], with key: SigningKey, kid: String? = nil, algorithm: SigningAlgorithm? = nil) throws -> String {
        let algorithm = algorithm ?? key.algorithm
        if let secret = key.secret {
            return try TokenMinter.mint(claims: claims, algorithm: algorithm, kid: kid ?? key.kid, secret: secret)
        }
        return try TokenMinter.mint(claims: claims, algorithm: algorithm, kid: kid ?? key.kid, privateKeyPEM: key.privatePEM!)
    }
}

/// Tokens assembled byte by byte.
enum HandBuilt {
    static func segment(_ json: String) -> String {
        Base64URL.encode(Array(json.utf8))
    }

    static func token(header: String, payload: String, signature: [UInt8]) -> String {
        "\(segment(header)).\(segment(payload)).\(Base64URL.encode(signature))"
    }

    /// HS256 over arbitrary header and payload JSON, with OpenSSL directly.
    static func hs256(header: String, payload: String, secret: [UInt8] = Fixture.hmacSecret) -> String {
        let signingInput = "\(segment(header)).\(segment(payload))"
        let input = Array(signingInput.utf8)
        var mac = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        _ = HMAC(EVP_sha256(), secret, Int32(secret.count), input, input.count, &mac, &length)
        return "\(signingInput).\(Base64URL.encode(mac[..<Int(length)]))"
    }

    /// The claims of `Fixture.claims()` as JSON text, with `extra` members appended verbatim.
    static func payload(dropping dropped: Set<String> = [], extra: String = "") -> String {
        var members = [
            "\"iss\":\"\(Fixture.issuer)\"", "\"sub\":\"user-17\"", "\"aud\":\"\(Fixture.audience)\"",
            "\"iat\":\(Fixture.now)", "\"exp\":\(Fixture.now + 600)", "\"tenant\":\"contoso\"",
        ].filter { member in !dropped.contains(where: { member.hasPrefix("\"\($0)\"") }) }
        if !extra.isEmpty { members.append(extra) }
        return "{\(members.joined(separator: ","))}"
    }

    /// Splits a compact token into its three segments.
    static func segments(_ token: String) -> (header: String, payload: String, signature: String) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        precondition(parts.count == 3)
        return (parts[0], parts[1], parts[2])
    }
}
