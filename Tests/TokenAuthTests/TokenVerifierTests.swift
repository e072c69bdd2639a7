import Foundation
import XCTest
@testable import TokenAuth

final class TokenVerifierTests: XCTestCase {
    private var verifier: TokenVerifier!

    override func setUpWithError() throws {
        verifier = try Fixture.verifier()
    }

    private func verify(_ token: String, now: Int64 = Fixture.now) -> Result<VerifiedToken, TokenRejection> {
        verifier.verify(token[...], now: now)
    }

    private func assertRejected(
        _ token: String, _ expected: TokenRejection, now: Int64 = Fixture.now,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        switch verify(token, now: now) {
        case .success:
            XCTFail("accepted; expected \(expected.slug)", file: file, line: line)
        case .failure(let rejection):
            XCTAssertEqual(rejection, expected, "got \(rejection.slug), expected \(expected.slug)", file: file, line: line)
        }
    }

    private func assertAccepted(
        _ token: String, now: Int64 = Fixture.now, file: StaticString = #filePath, line: UInt = #line
    ) -> VerifiedToken? {
        switch verify(token, now: now) {
        case .success(let verified):
            return verified
        case .failure(let rejection):
            XCTFail("rejected: \(rejection.slug)", file: file, line: line)
            return nil
        }
    }

    // MARK: - Round trips

    func testEveryAlgorithmRoundTripsThroughMintAndVerify() throws {
        for key in Fixture.signingKeys {
            let token = try Fixture.mint(Fixture.claims(), with: key)
            let verified = try XCTUnwrap(assertAccepted(token), "\(key.algorithm)")
            XCTAssertEqual(verified.issuer, Fixture.issuer)
            XCTAssertEqual(verified.keyID, key.kid)
            XCTAssertEqual(verified.subject, "user-17")
            XCTAssertEqual(verified.audience, [Fixture.audience])
            XCTAssertEqual(verified.expiresAt, Fixture.now + 600)
            XCTAssertEqual(verified.issuedAt, Fixture.now)
            XCTAssertNil(verified.notBefore)
            XCTAssertEqual(verified.jwtID, "jti-0001")
            XCTAssertEqual(verified.tenant, "contoso")
            XCTAssertNil(verified.role)
            XCTAssertNil(verified.node)
        }
    }

    func testAdminClaimsAndNotBeforeAreReturned() throws {
        let claims = Fixture.claims(["role": "partner-admin", "node": "oem-a/partner-1", "nbf": .integer(Fixture.now - 5)])
        let verified = try XCTUnwrap(assertAccepted(try Fixture.mint(claims, with: Fixture.ec256)))
        XCTAssertEqual(verified.role, "partner-admin")
        XCTAssertEqual(verified.node, "oem-a/partner-1")
        XCTAssertEqual(verified.notBefore, Fixture.now - 5)
    }

    func testBothKeysOfARotationVerify() throws {
        let old = try XCTUnwrap(assertAccepted(try Fixture.mint(Fixture.claims(), with: Fixture.rsaCurrent)))
        let new = try XCTUnwrap(assertAccepted(try Fixture.mint(Fixture.claims(), with: Fixture.rsaNext)))
        XCTAssertEqual(old.keyID, "rsa-2025")
        XCTAssertEqual(new.keyID, "rsa-2026")
    }

    func testAKeyRemovedAfterRotationNoLongerVerifies() throws {
        let retiredKid = Fixture.rsaCurrent.kid
        let remaining = try Fixture.verificationKeys().filter { $0.kid != retiredKid }
        let verifier = try TokenVerifier(issuers: [Fixture.policy(keys: remaining)])
        let token = try Fixture.mint(Fixture.claims(), with: Fixture.rsaCurrent)
        XCTAssertEqual(verifier.verify(token[...], now: Fixture.now), .failure(.unknownKey))
    }

    func testTokenInsideALargerHeaderValueVerifies() throws {
        let token = try Fixture.mint(Fixture.claims(), with: Fixture.rsaCurrent)
        let header = "Bearer \(token)"
        let credentials = header.dropFirst("Bearer ".count)
        XCTAssertNoThrow(try verifier.verify(credentials, now: Fixture.now).get())
    }

    // MARK: - Issuer, key, algorithm

    func testUnknownIssuer() throws {
        assertRejected(try Fixture.mint(Fixture.claims(["iss": "https://login.oem-b.example"]), with: Fixture.rsaCurrent), .unknownIssuer)
        assertRejected(try Fixture.mint(Fixture.claims(["iss": nil]), with: Fixture.rsaCurrent), .unknownIssuer)
        assertRejected(HandBuilt.hs256(header: #"{"alg":"HS256","kid":"hs-256"}"#, payload: HandBuilt.payload(dropping: ["iss"], extra: #""iss":7"#)), .unknownIssuer)
    }

    func testUnknownOrMissingKeyID() throws {
        assertRejected(try Fixture.mint(Fixture.claims(), with: Fixture.rsaCurrent, kid: "rsa-2019"), .unknownKey)
        let withoutKid = try TokenMinter.mint(claims: Fixture.claims(), algorithm: .RS256, kid: nil, privateKeyPEM: TestKeys.rsaA.privatePEM)
        assertRejected(withoutKid, .unknownKey)
    }

    func testAKeyIDOfAnotherIssuerDoesNotReachItsKey() throws {
        // Issuer B has a key with the same kid as issuer A, but its own key material.
        let bKey = try VerificationKey(kid: Fixture.rsaCurrent.kid, algorithm: .RS256, pem: TestKeys.rsaB.publicPEM)
        let issuerB = try IssuerPolicy(issuer: "https://login.oem-b.example", audience: Fixture.audience, maxLifetimeSeconds: 3600, keys: [bKey])
        let verifier = try TokenVerifier(issuers: [Fixture.policy(), issuerB])
        // Signed with A's private key but claiming to come from B.
        let token = try Fixture.mint(Fixture.claims(["iss": "https://login.oem-b.example"]), with: Fixture.rsaCurrent)
        XCTAssertEqual(verifier.verify(token[...], now: Fixture.now), .failure(.badSignature))
    }

    func testAlgNoneIsRefusedWithOrWithoutASignature() {
        let header = #"{"alg":"none","kid":"rsa-2025"}"#
        let payload = HandBuilt.payload()
        assertRejected("\(HandBuilt.segment(header)).\(HandBuilt.segment(payload)).", .algorithmNotAllowed)
        assertRejected(HandBuilt.token(header: header, payload: payload, signature: [1, 2, 3, 4]), .algorithmNotAllowed)
        assertRejected(HandBuilt.token(header: #"{"alg":"none","kid":"hs-256"}"#, payload: payload, signature: []), .algorithmNotAllowed)
    }

    func testHeaderCannotChooseAnotherAlgorithmOfTheSameFamily() throws {
        // Validly signed with RS512 by the right private key — but the key is declared RS256.
        assertRejected(try Fixture.mint(Fixture.claims(), with: Fixture.rsaCurrent, algorithm: .RS512), .algorithmNotAllowed)
        assertRejected(try Fixture.mint(Fixture.claims(), with: Fixture.ec384, kid: Fixture.ec256.kid), .algorithmNotAllowed)
    }

    func testHMACSignedWithThePublicKeyPEMIsRefused() throws {
        // The classic confusion: the attacker knows the RSA public key and uses its PEM text as
        // an HMAC secret; a verifier that lets the header choose would check HS256 with it.
        for (kid, publicPEM) in [(Fixture.rsaCurrent.kid, TestKeys.rsaA.publicPEM), (Fixture.ec256.kid, TestKeys.ecP256.publicPEM)] {
            let forged = try TokenMinter.mint(claims: Fixture.claims(), algorithm: .HS256, kid: kid, secret: Array(publicPEM.utf8))
            assertRejected(forged, .algorithmNotAllowed)
        }
    }

    // MARK: - Signature

    func testTamperedPayloadIsRefused() throws {
        for key in [Fixture.rsaCurrent, Fixture.ec256, Fixture.hmac256] {
            let token = try Fixture.mint(Fixture.claims(), with: key)
            let other = try Fixture.mint(Fixture.claims(["tenant": "fabrikam"]), with: key)
            let (header, _, signature) = HandBuilt.segments(token)
            assertRejected("\(header).\(HandBuilt.segments(other).payload).\(signature)", .badSignature)
        }
    }

    func testTamperedSignatureIsRefused() throws {
        for key in Fixture.signingKeys {
            let token = try Fixture.mint(Fixture.claims(), with: key)
            let (header, payload, encoded) = HandBuilt.segments(token)
            var signature = try Base64URL.decode(Array(encoded.utf8))
            signature[signature.count / 2] ^= 0x01
            assertRejected("\(header).\(payload).\(Base64URL.encode(signature))", .badSignature)
        }
    }

    /// Verify contexts are reused from one token to the next: a good signature, a forged one on
    /// the same key, then good ones again, alternating payloads, each judged on its own bytes.
    func testReusedVerifyContextsJudgeEachTokenAfresh() throws {
        for key in Fixture.signingKeys {
            let good = try Fixture.mint(Fixture.claims(), with: key)
            let other = try Fixture.mint(Fixture.claims(["tenant": "fabrikam"]), with: key)
            let (header, _, signature) = HandBuilt.segments(good)
            let forged = "\(header).\(HandBuilt.segments(other).payload).\(signature)"
            for _ in 0..<3 {
                XCTAssertEqual(assertAccepted(good)?.tenant, "contoso", "\(key.algorithm)")
                assertRejected(forged, .badSignature)
                XCTAssertEqual(assertAccepted(other)?.tenant, "fabrikam", "\(key.algorithm)")
            }
        }
        // From several threads at once, each with its own context.
        let tokens = try Fixture.signingKeys.map { try Fixture.mint(Fixture.claims(), with: $0) }
        let verifier = self.verifier!
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for token in tokens {
                if case .failure(let rejection) = verifier.verify(token[...], now: Fixture.now) { XCTFail("rejected: \(rejection.slug)") }
            }
        }
    }

    func testEmptySignatureIsABadSignature() throws {
        let (header, payload, _) = HandBuilt.segments(try Fixture.mint(Fixture.claims(), with: Fixture.rsaCurrent))
        assertRejected("\(header).\(payload).", .badSignature)
    }

    func testECDSASignatureOfTheWrongLengthIsRefused() throws {
        let token = try Fixture.mint(Fixture.claims(), with: Fixture.ec256)
        let (header, payload, encoded) = HandBuilt.segments(token)
        let signature = try Base64URL.decode(Array(encoded.utf8))
        XCTAssertEqual(signature.count, 64)
        for wrong in [Array(signature.dropLast()), signature + [0], [0] + signature, Array(signature.prefix(32))] {
            assertRejected("\(header).\(payload).\(Base64URL.encode(wrong))", .badSignature)
        }
        // The same signature in DER form, as some libraries wrongly emit it.
        assertRejected("\(header).\(payload).\(Base64URL.encode(Self.der(rawECDSA: signature)))", .badSignature)
    }

    func testHMACSignatureOfTheWrongLengthIsRefused() throws {
        let token = try Fixture.mint(Fixture.claims(), with: Fixture.hmac256)
        let (header, payload, encoded) = HandBuilt.segments(token)
        let signature = try Base64URL.decode(Array(encoded.utf8))
        assertRejected("\(header).\(payload).\(Base64URL.encode(signature.dropLast()))", .badSignature)
        assertRejected("\(header).\(payload).\(Base64URL.encode(signature + [0]))", .badSignature)
    }

    // MARK: - Size and shape

    func testOversizedTokenIsRefusedBeforeParsing() throws {
        // 64 KiB that is not even shaped like a token: the size decides first.
        let huge = String(repeating: "A", count: 64 * 1024)
        assertRejected(huge, .tokenTooLarge)
        let signed = try Fixture.mint(Fixture.claims(["padding": .string(String(repeating: "x", count: 64 * 1024))]), with: Fixture.rsaCurrent)
        assertRejected(signed, .tokenTooLarge)
    }

    func testSizeLimitIsInclusive() throws {
        let token = try Fixture.mint(Fixture.claims(), with: Fixture.hmac256)
        let exact = try TokenVerifier(issuers: [Fixture.policy()], maxTokenBytes: token.utf8.count)
        XCTAssertNoThrow(try exact.verify(token[...], now: Fixture.now).get())
        let short = try TokenVerifier(issuers: [Fixture.policy()], maxTokenBytes: token.utf8.count - 1)
        XCTAssertEqual(short.verify(token[...], now: Fixture.now), .failure(.tokenTooLarge))
    }

    func testMalformedTokens() throws {
        let header = HandBuilt.segment(#"{"alg":"HS256","kid":"hs-256"}"#)
        let payload = HandBuilt.segment(HandBuilt.payload())
        let cases: [String] = [
            "",
            "garbage",
            "Bearer x.y.z",
            "\(header).\(payload)",
            "\(header).\(payload).AAAA.AAAA",
            "\(header).\(payload).AAAA.AAAA.AAAA",
            ".\(payload).AAAA",
            "\(header)..AAAA",
            "\(header)!.\(payload).AAAA",                      // not base64url
            "\(header).\(payload)=.AAAA",                      // padding
            "\(header).\(payload).AA+A",                       // base64, not base64url
            "\(header).\(payload).A",                          // impossible length
            "\(HandBuilt.segment("not json")).\(payload).AAAA",
            "\(header).\(HandBuilt.segment("not json")).AAAA",
            "\(header).\(HandBuilt.segment("[1,2]")).AAAA",     // claims not an object
            "\(HandBuilt.segment(#"{"kid":"hs-256"}"#)).\(payload).AAAA",             // no alg
            "\(HandBuilt.segment(#"{"alg":"Ed448","kid":"hs-256"}"#)).\(payload).AAAA", // alg nobody here knows
            "\(HandBuilt.segment(#"{"alg":"HS256","kid":"hs-256","#)).\(payload).AAAA", // truncated JSON
            "\(header).\(payload).AAAA\u{0}",
            "\(header).\(payload).AAAÄ",
        ]
        for token in cases {
            assertRejected(token, .malformed)
        }
    }

    func testCriticalHeaderExtensionsAreRefusedEvenWhenSigned() {
        let token = HandBuilt.hs256(header: #"{"alg":"HS256","kid":"hs-256","b64":false,"crit":["b64"]}"#, payload: HandBuilt.payload())
        assertRejected(token, .malformed)
    }

    // MARK: - Time

    func testExpiryHonoursTheSkewToTheSecond() throws {
        func token(expiringAt exp: Int64) throws -> String {
            try Fixture.mint(Fixture.claims(["exp": .integer(exp), "iat": .integer(exp - 600)]), with: Fixture.rsaCurrent)
        }
        // Expired 1 s beyond the skew.
        assertRejected(try token(expiringAt: Fixture.now - Fixture.skew - 1), .expired)
        // Exactly at exp + skew: no longer valid (valid only *before* exp, RFC 7519 §4.1.4).
        assertRejected(try token(expiringAt: Fixture.now - Fixture.skew), .expired)
        // Expired, but within the skew.
        XCTAssertNotNil(assertAccepted(try token(expiringAt: Fixture.now - Fixture.skew + 1)))
        XCTAssertNotNil(assertAccepted(try token(expiringAt: Fixture.now - 1)))
    }

    func testExpiryIsRequiredAndMustBeAnInteger() throws {
        assertRejected(try Fixture.mint(Fixture.claims(["exp": nil]), with: Fixture.rsaCurrent), .missingExpiry)
        assertRejected(try Fixture.mint(Fixture.claims(["exp": .string("\(Fixture.now + 600)")]), with: Fixture.rsaCurrent), .missingExpiry)
        let header = #"{"alg":"HS256","kid":"hs-256"}"#
        for exp in ["\(Fixture.now + 600).5", "1.7e9", "true", "null", "[\(Fixture.now + 600)]"] {
            assertRejected(HandBuilt.hs256(header: header, payload: HandBuilt.payload(dropping: ["exp"], extra: "\"exp\":\(exp)")), .missingExpiry)
        }
    }

    func testNotBeforeHonoursTheSkew() throws {
        assertRejected(try Fixture.mint(Fixture.claims(["nbf": .integer(Fixture.now + Fixture.skew + 1)]), with: Fixture.ec256), .notYetValid)
        XCTAssertNotNil(assertAccepted(try Fixture.mint(Fixture.claims(["nbf": .integer(Fixture.now + Fixture.skew)]), with: Fixture.ec256)))
    }

    func testIssuedInTheFutureBeyondTheSkew() throws {
        let iat = Fixture.now + Fixture.skew + 1
        assertRejected(try Fixture.mint(Fixture.claims(["iat": .integer(iat), "exp": .integer(iat + 60)]), with: Fixture.ec256), .issuedInFuture)
        let withinSkew = Fixture.now + Fixture.skew
        XCTAssertNotNil(assertAccepted(try Fixture.mint(Fixture.claims(["iat": .integer(withinSkew), "exp": .integer(withinSkew + 60)]), with: Fixture.ec256)))
    }

    func testLifetimeAboveTheIssuersMaximum() throws {
        let now = Fixture.now
        assertRejected(try Fixture.mint(Fixture.claims(["exp": .integer(now + Fixture.maxLifetime + 1)]), with: Fixture.hmac256), .lifetimeTooLong)
        XCTAssertNotNil(assertAccepted(try Fixture.mint(Fixture.claims(["exp": .integer(now + Fixture.maxLifetime)]), with: Fixture.hmac256)))
        // Issued long ago with a long life, though not yet expired: still too long.
        assertRejected(try Fixture.mint(Fixture.claims(["iat": .integer(now - 86_400), "exp": .integer(now + 60)]), with: Fixture.hmac256), .lifetimeTooLong)
        // Without iat the remaining lifetime counts.
        assertRejected(try Fixture.mint(Fixture.claims(["iat": nil, "exp": .integer(now + Fixture.maxLifetime + 1)]), with: Fixture.hmac256), .lifetimeTooLong)
        XCTAssertNotNil(assertAccepted(try Fixture.mint(Fixture.claims(["iat": nil, "exp": .integer(now + 60)]), with: Fixture.hmac256)))
        // An iat far in the past must not overflow into a short lifetime.
        assertRejected(try Fixture.mint(Fixture.claims(["iat": .integer(.min), "exp": .integer(now + 60)]), with: Fixture.hmac256), .lifetimeTooLong)
    }

    // MARK: - Audience, tenant, subject, claim types

    func testAudienceAsAnArray() throws {
        let verified = try XCTUnwrap(assertAccepted(try Fixture.mint(Fixture.claims(["aud": ["billing", Fixture.audience]]), with: Fixture.rsaCurrent)))
        XCTAssertEqual(verified.audience, ["billing", Fixture.audience])
        assertRejected(try Fixture.mint(Fixture.claims(["aud": ["billing", "erp-gateway-staging"]]), with: Fixture.rsaCurrent), .wrongAudience)
        assertRejected(try Fixture.mint(Fixture.claims(["aud": .strings([])]), with: Fixture.rsaCurrent), .wrongAudience)
    }

    func testWrongOrMissingAudience() throws {
        assertRejected(try Fixture.mint(Fixture.claims(["aud": "billing"]), with: Fixture.rsaCurrent), .wrongAudience)
        assertRejected(try Fixture.mint(Fixture.claims(["aud": nil]), with: Fixture.rsaCurrent), .wrongAudience)
        // Only an exact match counts.
        assertRejected(try Fixture.mint(Fixture.claims(["aud": "erp-gateway "]), with: Fixture.rsaCurrent), .wrongAudience)
        let header = #"{"alg":"HS256","kid":"hs-256"}"#
        for aud in ["7", "[\"erp-gateway\",7]", "{\"erp-gateway\":true}"] {
            assertRejected(HandBuilt.hs256(header: header, payload: HandBuilt.payload(dropping: ["aud"], extra: "\"aud\":\(aud)")), .wrongAudience)
        }
    }

    func testTenantClaimMustBeANonEmptyString() throws {
        assertRejected(try Fixture.mint(Fixture.claims(["tenant": nil]), with: Fixture.ec256), .missingTenant)
        assertRejected(try Fixture.mint(Fixture.claims(["tenant": ""]), with: Fixture.ec256), .missingTenant)
        assertRejected(try Fixture.mint(Fixture.claims(["tenant": .integer(42)]), with: Fixture.ec256), .missingTenant)
    }

    func testTenantClaimNameComesFromThePolicy() throws {
        let verifier = try TokenVerifier(issuers: [Fixture.policy(tenantClaim: "customer")])
        let token = try Fixture.mint(Fixture.claims(["tenant": nil, "customer": "contoso"]), with: Fixture.ec256)
        XCTAssertEqual(try verifier.verify(token[...], now: Fixture.now).get().tenant, "contoso")
        let old = try Fixture.mint(Fixture.claims(), with: Fixture.ec256)
        XCTAssertEqual(verifier.verify(old[...], now: Fixture.now), .failure(.missingTenant))
    }

    func testSubjectIsRequired() throws {
        assertRejected(try Fixture.mint(Fixture.claims(["sub": nil]), with: Fixture.ec256), .missingSubject)
        assertRejected(try Fixture.mint(Fixture.claims(["sub": ""]), with: Fixture.ec256), .missingSubject)
    }

    func testOptionalClaimsOfTheWrongTypeAreMalformed() throws {
        for changes: [String: ClaimValue?] in [["jti": .integer(1)], ["role": ["a"]], ["node": .integer(3)], ["nbf": "soon"], ["iat": "now"]] {
            assertRejected(try Fixture.mint(Fixture.claims(changes), with: Fixture.hmac256), .malformed)
        }
        XCTAssertNil(try XCTUnwrap(assertAccepted(try Fixture.mint(Fixture.claims(["jti": nil]), with: Fixture.hmac256))).jwtID)
    }

    func testIntegerClaimsThatLibJWTReportsAmbiguouslyAreReadExactly() throws {
        // libjwt answers 0 for non-integers and -1 for absent claims; real 0 and -1 must still
        // be read as numbers (and then fail the time rules honestly).
        assertRejected(try Fixture.mint(Fixture.claims(["exp": .integer(0)]), with: Fixture.hmac256), .expired)
        assertRejected(try Fixture.mint(Fixture.claims(["exp": .integer(-1)]), with: Fixture.hmac256), .expired)
        let verified = try XCTUnwrap(assertAccepted(try Fixture.mint(Fixture.claims(["iat": .integer(Fixture.now - 100), "nbf": .integer(0)]), with: Fixture.hmac256)))
        XCTAssertEqual(verified.notBefore, 0)
    }

    // MARK: - Errors and sharing

    func testRejectionSlugsAreUniqueAndDescriptionsFixed() {
        let slugs = TokenRejection.allReasons.map(\.slug)
        XCTAssertEqual(Set(slugs).count, slugs.count)
        XCTAssertEqual(TokenRejection.allReasons.count, 15)
        for rejection in TokenRejection.allReasons {
            XCTAssertEqual(rejection.description, TokenRejection.allReasons.first { $0 == rejection }!.description)
            XCTAssertFalse(rejection.description.contains(Fixture.issuer))
        }
    }

    func testDuplicateIssuersAreRefused() throws {
        XCTAssertThrowsError(try TokenVerifier(issuers: [Fixture.policy(), Fixture.policy()])) { error in
            XCTAssertEqual(error as? IssuerPolicyError, .duplicateIssuer)
        }
    }

    func testOneVerifierServesManyThreadsAtOnce() throws {
        let tokens = try Fixture.signingKeys.map { try Fixture.mint(Fixture.claims(), with: $0) }
        let verifier = self.verifier!
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for round in 0..<40 {
                let token = tokens[(worker + round) % tokens.count]
                if case .failure = verifier.verify(token[...], now: Fixture.now) { failures.record() }
            }
        }
        XCTAssertEqual(failures.count, 0)
    }

    // MARK: - Helpers

    /// DER `ECDSA-Sig-Value` of a raw `r || s` signature.
    private static func der(rawECDSA signature: [UInt8]) -> [UInt8] {
        func integer(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
            var value = Array(bytes.drop(while: { $0 == 0 }))
            if value.isEmpty || value[0] & 0x80 != 0 { value.insert(0, at: 0) }
            return [0x02, UInt8(value.count)] + value
        }
        let body = integer(signature[..<32]) + integer(signature[32...])
        return [0x30, UInt8(body.count)] + body
    }
}

/// A counter the concurrent test's workers share.
private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func record() { lock.withLock { value += 1 } }
    var count: Int { lock.withLock { value } }
}
