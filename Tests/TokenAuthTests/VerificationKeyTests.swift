import XCTest
@testable import TokenAuth

final class VerificationKeyTests: XCTestCase {
    private func assertKeyError(
        _ expected: KeyError, file: StaticString = #filePath, line: UInt = #line,
        _ make: () throws -> VerificationKey
    ) {
        XCTAssertThrowsError(try make(), file: file, line: line) { error in
            XCTAssertEqual(error as? KeyError, expected, "\(error)", file: file, line: line)
        }
    }

    func testAcceptsEveryKeyOfTheRightKind() throws {
        XCTAssertNoThrow(try VerificationKey(kid: "r", algorithm: .RS256, pem: TestKeys.rsaA.publicPEM))
        XCTAssertNoThrow(try VerificationKey(kid: "r", algorithm: .RS384, pem: TestKeys.rsaA.publicPEM))
        XCTAssertNoThrow(try VerificationKey(kid: "r", algorithm: .RS512, pem: TestKeys.rsaA.publicPEM))
        XCTAssertNoThrow(try VerificationKey(kid: "e", algorithm: .ES256, pem: TestKeys.ecP256.publicPEM))
        XCTAssertNoThrow(try VerificationKey(kid: "e", algorithm: .ES384, pem: TestKeys.ecP384.publicPEM))
        XCTAssertNoThrow(try VerificationKey(kid: "e", algorithm: .ES512, pem: TestKeys.ecP521.publicPEM))
        XCTAssertNoThrow(try VerificationKey(kid: "h", algorithm: .HS256, secret: Array(repeating: 7, count: 32)))
        XCTAssertNoThrow(try VerificationKey(kid: "h", algorithm: .HS384, secret: Array(repeating: 7, count: 48)))
        XCTAssertNoThrow(try VerificationKey(kid: "h", algorithm: .HS512, secret: Array(repeating: 7, count: 64)))
    }

    func testKeyTypeMustFitTheAlgorithmFamily() {
        assertKeyError(.keyTypeMismatch) { try VerificationKey(kid: "k", algorithm: .ES256, pem: TestKeys.rsaA.publicPEM) }
        assertKeyError(.keyTypeMismatch) { try VerificationKey(kid: "k", algorithm: .RS256, pem: TestKeys.ecP256.publicPEM) }
    }

    func testCurveMustFitTheAlgorithm() {
        assertKeyError(.curveMismatch) { try VerificationKey(kid: "k", algorithm: .ES384, pem: TestKeys.ecP256.publicPEM) }
        assertKeyError(.curveMismatch) { try VerificationKey(kid: "k", algorithm: .ES256, pem: TestKeys.ecP384.publicPEM) }
        assertKeyError(.curveMismatch) { try VerificationKey(kid: "k", algorithm: .ES512, pem: TestKeys.ecP384.publicPEM) }
    }

    func testShortRSAKeysAreRefused() {
        assertKeyError(.rsaKeyTooShort) { try VerificationKey(kid: "k", algorithm: .RS256, pem: TestKeys.rsaWeakPublicPEM) }
    }

    func testPrivateKeysAndGarbageAreRefused() {
        assertKeyError(.privateKeyGiven) { try VerificationKey(kid: "k", algorithm: .RS256, pem: TestKeys.rsaA.privatePEM) }
        assertKeyError(.privateKeyGiven) { try VerificationKey(kid: "k", algorithm: .ES256, pem: TestKeys.ecP256.publicPEM + "\n" + TestKeys.ecP256.privatePEM) }
        assertKeyError(.unreadablePEM) { try VerificationKey(kid: "k", algorithm: .RS256, pem: "") }
        assertKeyError(.unreadablePEM) { try VerificationKey(kid: "k", algorithm: .RS256, pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n") }
        let truncated = String(TestKeys.rsaA.publicPEM.dropLast(40))
        assertKeyError(.unreadablePEM) { try VerificationKey(kid: "k", algorithm: .RS256, pem: truncated) }
    }

    func testSecretsAndPublicKeysAreNotInterchangeable() {
        assertKeyError(.secretRequired) { try VerificationKey(kid: "k", algorithm: .HS256, pem: TestKeys.rsaA.publicPEM) }
        assertKeyError(.publicKeyRequired) { try VerificationKey(kid: "k", algorithm: .RS256, secret: Array(TestKeys.rsaA.publicPEM.utf8)) }
    }

    func testSecretsMustBeAtLeastAsLongAsTheHash() {
        assertKeyError(.secretTooShort) { try VerificationKey(kid: "k", algorithm: .HS256, secret: Array(repeating: 1, count: 31)) }
        assertKeyError(.secretTooShort) { try VerificationKey(kid: "k", algorithm: .HS384, secret: Array(repeating: 1, count: 47)) }
        assertKeyError(.secretTooShort) { try VerificationKey(kid: "k", algorithm: .HS512, secret: Array(repeating: 1, count: 63)) }
    }

    func testKeyIDMustNotBeEmpty() {
        assertKeyError(.emptyKeyID) { try VerificationKey(kid: "", algorithm: .RS256, pem: TestKeys.rsaA.publicPEM) }
        assertKeyError(.emptyKeyID) { try VerificationKey(kid: "", algorithm: .HS256, secret: Array(repeating: 1, count: 32)) }
    }

    func testErrorsDoNotQuoteTheKey() {
        do {
            _ = try VerificationKey(kid: "k", algorithm: .RS256, pem: TestKeys.rsaA.privatePEM)
            XCTFail("accepted a private key")
        } catch {
            XCTAssertFalse(error.description.contains("MII"))
            XCTAssertEqual(error.slug, "private-key-given")
        }
    }

    func testPolicyRefusesDuplicateKeyIDsAndNonsense() throws {
        let one = try VerificationKey(kid: "same", algorithm: .RS256, pem: TestKeys.rsaA.publicPEM)
        let two = try VerificationKey(kid: "same", algorithm: .ES256, pem: TestKeys.ecP256.publicPEM)
        func policy(issuer: String = "i", audience: String = "a", lifetime: Int64 = 60, skew: Int64 = 30, tenantClaim: String = "tenant", keys: [VerificationKey] = []) throws -> IssuerPolicy {
            try IssuerPolicy(issuer: issuer, audience: audience, maxLifetimeSeconds: lifetime, clockSkewSeconds: skew, tenantClaim: tenantClaim, keys: keys)
        }
        let cases: [(IssuerPolicyError, () throws -> IssuerPolicy)] = [
            (.duplicateKeyID, { try policy(keys: [one, two]) }),
            (.emptyIssuer, { try policy(issuer: "") }),
            (.emptyAudience, { try policy(audience: "") }),
            (.nonPositiveLifetime, { try policy(lifetime: 0) }),
            (.negativeClockSkew, { try policy(skew: -1) }),
            (.emptyTenantClaim, { try policy(tenantClaim: "") }),
        ]
        for (expected, make) in cases {
            XCTAssertThrowsError(try make()) { XCTAssertEqual($0 as? IssuerPolicyError, expected) }
        }
        let defaults = try IssuerPolicy(issuer: "i", audience: "a", maxLifetimeSeconds: 60, keys: [one])
        XCTAssertEqual(defaults.clockSkewSeconds, 30)
        XCTAssertEqual(defaults.tenantClaim, "tenant")
    }
}
