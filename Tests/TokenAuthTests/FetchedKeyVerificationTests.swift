import XCTest
@testable import TokenAuth

/// PS256/384/512 and EdDSA through OpenSSL, pinned like the others; JWKs turned into keys; and
/// issuers whose keys are fetched (an `IssuerKeySet` handed to the verifier).
final class FetchedKeyVerificationTests: XCTestCase {
    static let ps256 = Fixture.SigningKey(kid: "ps-256", algorithm: .PS256, privatePEM: TestKeys.rsaA.privatePEM, secret: nil)
    static let ps384 = Fixture.SigningKey(kid: "ps-384", algorithm: .PS384, privatePEM: TestKeys.rsaB.privatePEM, secret: nil)
    static let ps512 = Fixture.SigningKey(kid: "ps-512", algorithm: .PS512, privatePEM: TestKeys.rsaA.privatePEM, secret: nil)
    static let eddsa = Fixture.SigningKey(kid: "ed-1", algorithm: .EdDSA, privatePEM: TestKeys.ed25519.privatePEM, secret: nil)

    private func verifier(_ keys: [VerificationKey]) throws -> TokenVerifier {
        try TokenVerifier(issuers: [Fixture.policy(keys: keys)])
    }

    func testPSSAndEdDSATokensVerifyWithKeysPinnedToThem() throws {
        let keys = [
            try VerificationKey(kid: "ps-256", algorithm: .PS256, pem: TestKeys.rsaA.publicPEM),
            try VerificationKey(kid: "ps-384", algorithm: .PS384, pem: TestKeys.rsaB.publicPEM),
            try VerificationKey(kid: "ps-512", algorithm: .PS512, pem: TestKeys.rsaA.publicPEM),
            try VerificationKey(kid: "ed-1", algorithm: .EdDSA, pem: TestKeys.ed25519.publicPEM),
        ]
        let verifier = try self.verifier(keys)
        for key in [Self.ps256, Self.ps384, Self.ps512, Self.eddsa] {
            let token = try Fixture.mint(Fixture.claims(), with: key)
            XCTAssertEqual(try verifier.verify(Substring(token), now: Fixture.now).get().keyID, key.kid, "\(key.algorithm)")
            // One flipped signature byte: refused.
            var bytes = Array(token.utf8)
            bytes[bytes.count - 3] = bytes[bytes.count - 3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            XCTAssertEqual(verifier.verify(Substring(String(decoding: bytes, as: UTF8.self)), now: Fixture.now).failure, .badSignature, "\(key.algorithm)")
        }
    }

    func testAnEdDSAPinnedKeyRefusesRS256AndAnRS256PinnedKeyRefusesEdDSAAndPS256() throws {
        let verifier = try self.verifier([
            try VerificationKey(kid: "k-ed", algorithm: .EdDSA, pem: TestKeys.ed25519.publicPEM),
            try VerificationKey(kid: "k-rs", algorithm: .RS256, pem: TestKeys.rsaA.publicPEM),
        ])
        let rs256UnderEdKid = try Fixture.mint(Fixture.claims(), with: Fixture.rsaCurrent, kid: "k-ed")
        XCTAssertEqual(verifier.verify(Substring(rs256UnderEdKid), now: Fixture.now).failure, .algorithmNotAllowed)
        let edUnderRSKid = try Fixture.mint(Fixture.claims(), with: Self.eddsa, kid: "k-rs")
        XCTAssertEqual(verifier.verify(Substring(edUnderRSKid), now: Fixture.now).failure, .algorithmNotAllowed)
        // Same RSA key, PSS instead of PKCS #1 v1.5: the pin is the algorithm, not the key.
        let psUnderRSKid = try Fixture.mint(Fixture.claims(), with: Self.ps256, kid: "k-rs")
        XCTAssertEqual(verifier.verify(Substring(psUnderRSKid), now: Fixture.now).failure, .algorithmNotAllowed)
    }

    func testKeyTypesMustFitPSSAndEdDSA() {
        XCTAssertThrowsError(try VerificationKey(kid: "k", algorithm: .EdDSA, pem: TestKeys.rsaA.publicPEM)) { XCTAssertEqual($0 as? KeyError, .keyTypeMismatch) }
        XCTAssertThrowsError(try VerificationKey(kid: "k", algorithm: .PS256, pem: TestKeys.ed25519.publicPEM)) { XCTAssertEqual($0 as? KeyError, .keyTypeMismatch) }
        XCTAssertThrowsError(try VerificationKey(kid: "k", algorithm: .PS256, pem: TestKeys.rsaWeakPublicPEM)) { XCTAssertEqual($0 as? KeyError, .rsaKeyTooShort) }
        XCTAssertThrowsError(try TokenMinter.mint(claims: Fixture.claims(), algorithm: .EdDSA, kid: "k", privateKeyPEM: TestKeys.rsaA.privatePEM)) {
            XCTAssertEqual($0 as? MintError, .invalidKey)
        }
    }

    func testAPSSTokenWithACriticalHeaderIsMalformed() throws {
        let verifier = try self.verifier([try VerificationKey(kid: "ps-256", algorithm: .PS256, pem: TestKeys.rsaA.publicPEM)])
        let token = HandBuilt.token(header: #"{"alg":"PS256","kid":"ps-256","crit":["b64"]}"#, payload: #"{"iss":"x"}"#, signature: [1, 2, 3])
        XCTAssertEqual(verifier.verify(Substring(token), now: Fixture.now).failure, .malformed)
    }

    // MARK: - JWKs

    static let rsaJWK = JSONWebKey(kty: "RSA", kid: "rsa-jwk", n: TestKeys.rsaAModulus, e: "AQAB")
    static let ecJWK = JSONWebKey(kty: "EC", kid: "ec-jwk", crv: "P-256", x: TestKeys.ecP256X, y: TestKeys.ecP256Y)
    static let edJWK = JSONWebKey(kty: "OKP", kid: "ed-jwk", crv: "Ed25519", x: TestKeys.ed25519X)

    private func keys(_ jwk: JSONWebKey, pinned: Set<SigningAlgorithm>) -> [VerificationKey]? {
        if case .keys(let keys) = jwk.verificationKeys(pinned: pinned) { return keys }
        return nil
    }

    private func ignored(_ jwk: JSONWebKey, pinned: Set<SigningAlgorithm>) -> IgnoredKey? {
        if case .ignored(let reason) = jwk.verificationKeys(pinned: pinned) { return reason }
        return nil
    }

    func testJWKsBecomeTheKeysTheirPEMsWouldBe() throws {
        let fetched = [
            try XCTUnwrap(keys(Self.rsaJWK, pinned: [.RS256])),
            try XCTUnwrap(keys(Self.ecJWK, pinned: [.ES256])),
            try XCTUnwrap(keys(Self.edJWK, pinned: [.EdDSA])),
        ].flatMap { $0 }
        let set = IssuerKeySet(keys: fetched, usableUntil: Fixture.now + 60)
        let policy = try IssuerPolicy(issuer: Fixture.issuer, audience: Fixture.audience, maxLifetimeSeconds: 3600, keys: [], keySource: .fetched(algorithms: [.RS256, .ES256, .EdDSA]))
        let verifier = try TokenVerifier(issuers: [policy])
        let sets = FetchedKeySets([Fixture.issuer: set])
        for (key, kid) in [(Fixture.rsaCurrent, "rsa-jwk"), (Fixture.ec256, "ec-jwk"), (Self.eddsa, "ed-jwk")] {
            let token = try Fixture.mint(Fixture.claims(), with: key, kid: kid)
            XCTAssertEqual(try verifier.verify(Substring(token), now: Fixture.now, fetched: sets).get().keyID, kid)
        }
    }

    func testAJWKAlgNarrowsThePinnedSetAndNeverWidensIt() throws {
        // No alg: every pinned algorithm the key type fits.
        XCTAssertEqual(try XCTUnwrap(keys(Self.rsaJWK, pinned: [.RS256, .PS256, .ES256])).map(\.algorithm), [.RS256, .PS256])
        // alg narrows to one pinned algorithm.
        var narrowed = Self.rsaJWK
        narrowed.alg = "PS256"
        XCTAssertEqual(try XCTUnwrap(keys(narrowed, pinned: [.RS256, .PS256])).map(\.algorithm), [.PS256])
        // alg outside the pinned set: the key is ignored, not added.
        var widening = Self.rsaJWK
        widening.alg = "RS512"
        XCTAssertEqual(ignored(widening, pinned: [.RS256]), .algorithmNotPinned)
        XCTAssertEqual(ignored(Self.edJWK, pinned: [.RS256]), .algorithmNotPinned)
        var hmac = Self.rsaJWK
        hmac.alg = "HS256"
        XCTAssertEqual(ignored(hmac, pinned: [.RS256, .HS256]), .unknownAlgorithm)
    }

    func testJWKsThatMakeNoUsableKeyAreIgnoredWithTheirReason() {
        var noKid = Self.rsaJWK
        noKid.kid = nil
        XCTAssertEqual(ignored(noKid, pinned: [.RS256]), .noKeyID)
        var encryption = Self.rsaJWK
        encryption.use = "enc"
        XCTAssertEqual(ignored(encryption, pinned: [.RS256]), .notForSignatures)
        XCTAssertEqual(ignored(JSONWebKey(kty: "oct", kid: "s"), pinned: [.RS256]), .unsupportedKeyType)
        XCTAssertEqual(ignored(JSONWebKey(kty: "OKP", kid: "x", crv: "Ed448", x: TestKeys.ed25519X), pinned: [.EdDSA]), .unsupportedKeyType)
        // A coordinate cut short, and a modulus far below 2048 bits.
        var short = Self.ecJWK
        short.x = String(TestKeys.ecP256X.dropLast(4))
        XCTAssertEqual(ignored(short, pinned: [.ES256]), .unreadable(.unreadableKey))
        var weak = Self.rsaJWK
        // `rsaWeakPublicPEM`'s 1024-bit modulus.
        weak.n = "0aAlkM7yJTLEO6OzMmN9rxyqgMItMaJNDcyyn_Z7BaTOMMv_DD45UyhT9bbtt26cVnlOplrnYZ4tEVETq1KiEAvQwx8O3ChyKXrtTAdt-Cos9fc-s-wKcrobIJYIzfeJWla5JYUq7uh74gXcR7a0-KIp8AvDcipfwML0SFhv0wE"
        XCTAssertEqual(ignored(weak, pinned: [.RS256]), .unreadable(.rsaKeyTooShort))
        // A point not on the curve.
        var offCurve = Self.ecJWK
        offCurve.y = TestKeys.ecP256X
        XCTAssertEqual(ignored(offCurve, pinned: [.ES256]), .unreadable(.unreadableKey))
    }

    func testAKeySetDocumentSkipsEntriesThatAreNoJWK() throws {
        let text = #"{"keys":[{"kty":"RSA","kid":"a","n":"\#(TestKeys.rsaAModulus)","e":"AQAB"},{"kid":"no-kty"},7,{"kty":"OKP","crv":"Ed25519","kid":"b","x":"\#(TestKeys.ed25519X)","alg":"EdDSA"}]}"#
        let set = try JSONWebKeySet.parse(Array(text.utf8))
        XCTAssertEqual(set.keys.map(\.kid), ["a", "b"])
        XCTAssertThrowsError(try JSONWebKeySet.parse(Array(#"{"issuer":"x"}"#.utf8)))
        XCTAssertThrowsError(try JSONWebKeySet.parse(Array("not json".utf8)))
    }

    // MARK: - Issuers with fetched keys

    private func fetchedVerifier(_ algorithms: Set<SigningAlgorithm>) throws -> TokenVerifier {
        try TokenVerifier(issuers: [IssuerPolicy(
            issuer: Fixture.issuer, audience: Fixture.audience, maxLifetimeSeconds: 3600, keys: [], keySource: .fetched(algorithms: algorithms)
        )])
    }

    func testAFetchedIssuerWithoutAUsableKeySetRefusesWithKeysUnavailable() throws {
        let verifier = try fetchedVerifier([.RS256])
        let token = try Fixture.mint(Fixture.claims(), with: Fixture.rsaCurrent, kid: "rsa-jwk")
        XCTAssertEqual(verifier.verify(Substring(token), now: Fixture.now).failure, .keysUnavailable, "never fetched")
        let set = IssuerKeySet(keys: try XCTUnwrap(keys(Self.rsaJWK, pinned: [.RS256])), usableUntil: Fixture.now + 1)
        let sets = FetchedKeySets([Fixture.issuer: set])
        XCTAssertNoThrow(try verifier.verify(Substring(token), now: Fixture.now, fetched: sets).get())
        XCTAssertEqual(verifier.verify(Substring(token), now: Fixture.now + 1, fetched: sets).failure, .keysUnavailable, "past its bound")
        let otherKid = try Fixture.mint(Fixture.claims(), with: Fixture.rsaCurrent, kid: "rotated-away")
        XCTAssertEqual(verifier.verify(Substring(otherKid), now: Fixture.now, fetched: sets).failure, .unknownKey)
        XCTAssertTrue(verifier.fetchesKeys(of: Fixture.issuer))
        XCTAssertFalse(verifier.fetchesKeys(of: "other"))
    }

    func testAFetchedKidKnownForAnotherAlgorithmIsAlgorithmNotAllowed() throws {
        let verifier = try fetchedVerifier([.RS256, .PS256])
        var rsOnly = Self.rsaJWK
        rsOnly.alg = "RS256"
        let set = IssuerKeySet(keys: try XCTUnwrap(keys(rsOnly, pinned: [.RS256, .PS256])), usableUntil: Fixture.now + 60)
        let token = try Fixture.mint(Fixture.claims(), with: Self.ps256, kid: "rsa-jwk")
        XCTAssertEqual(verifier.verify(Substring(token), now: Fixture.now, fetched: FetchedKeySets([Fixture.issuer: set])).failure, .algorithmNotAllowed)
    }

    func testAFetchedIssuerTakesNoConfiguredKeysAndNoHMAC() throws {
        let key = try VerificationKey(kid: "k", algorithm: .RS256, pem: TestKeys.rsaA.publicPEM)
        XCTAssertThrowsError(try IssuerPolicy(issuer: "i", audience: "a", maxLifetimeSeconds: 60, keys: [key], keySource: .fetched(algorithms: [.RS256])))
        XCTAssertThrowsError(try IssuerPolicy(issuer: "i", audience: "a", maxLifetimeSeconds: 60, keys: [], keySource: .fetched(algorithms: [.HS256])))
        XCTAssertThrowsError(try IssuerPolicy(issuer: "i", audience: "a", maxLifetimeSeconds: 60, keys: [], keySource: .fetched(algorithms: [])))
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
