import XCTest
@testable import TokenAuth

final class TokenMinterTests: XCTestCase {
    func testHeaderCarriesAlgorithmAndKeyID() throws {
        let token = try TokenMinter.mint(claims: ["iss": "issuer-x"], algorithm: .ES384, kid: "ec-384", privateKeyPEM: TestKeys.ecP384.privatePEM)
        let unverified = try UnverifiedToken.parse(token[...], maxBytes: 8192)
        XCTAssertEqual(unverified.headerAlgorithm, "ES384")
        XCTAssertEqual(unverified.kid, "ec-384")
        XCTAssertEqual(unverified.issuer, "issuer-x")
        let withoutKid = try TokenMinter.mint(claims: ["iss": "issuer-x"], algorithm: .HS256, kid: nil, secret: Fixture.hmacSecret)
        XCTAssertNil(try UnverifiedToken.parse(withoutKid[...], maxBytes: 8192).kid)
    }

    func testECDSASignaturesAreRawAndOfFixedLength() throws {
        for (algorithm, pem, length) in [(SigningAlgorithm.ES256, TestKeys.ecP256.privatePEM, 64), (.ES384, TestKeys.ecP384.privatePEM, 96), (.ES512, TestKeys.ecP521.privatePEM, 132)] {
            for _ in 0..<8 {
                let token = try TokenMinter.mint(claims: ["n": 1], algorithm: algorithm, kid: "k", privateKeyPEM: pem)
                XCTAssertEqual(try CompactToken(token, maxLength: 8192).signature.count, length)
            }
        }
    }

    func testStringsNeedingEscapesSurviveARoundTrip() throws {
        let odd = "quote\" backslash\\ newline\n tab\t bell\u{7} é 日本"
        let claims = Fixture.claims(["aud": .strings([odd, Fixture.audience]), "role": .string(odd)])
        let token = try Fixture.mint(claims, with: Fixture.hmac256)
        let verified = try Fixture.verifier().verify(token[...], now: Fixture.now).get()
        XCTAssertEqual(verified.audience, [odd, Fixture.audience])
        XCTAssertEqual(verified.role, odd)
    }

    func testRefusesWhatItCannotEncode() {
        XCTAssertThrowsError(try TokenMinter.mint(claims: ["a\u{0}b": 1], algorithm: .HS256, kid: nil, secret: Fixture.hmacSecret)) {
            XCTAssertEqual($0 as? MintError, .invalidClaim)
        }
        XCTAssertThrowsError(try TokenMinter.mint(claims: ["a": "x\u{0}y"], algorithm: .HS256, kid: nil, secret: Fixture.hmacSecret)) {
            XCTAssertEqual($0 as? MintError, .invalidClaim)
        }
        XCTAssertThrowsError(try TokenMinter.mint(claims: [:], algorithm: .HS256, kid: "", secret: Fixture.hmacSecret)) {
            XCTAssertEqual($0 as? MintError, .invalidClaim)
        }
    }

    func testRefusesTheWrongKindOfKey() {
        XCTAssertThrowsError(try TokenMinter.mint(claims: [:], algorithm: .RS256, kid: nil, secret: Fixture.hmacSecret)) {
            XCTAssertEqual($0 as? MintError, .wrongKeyKind)
        }
        XCTAssertThrowsError(try TokenMinter.mint(claims: [:], algorithm: .HS256, kid: nil, privateKeyPEM: TestKeys.rsaA.privatePEM)) {
            XCTAssertEqual($0 as? MintError, .wrongKeyKind)
        }
        XCTAssertThrowsError(try TokenMinter.mint(claims: [:], algorithm: .RS256, kid: nil, privateKeyPEM: "not a key")) {
            XCTAssertEqual($0 as? MintError, .invalidKey)
        }
        // A public key cannot sign.
        XCTAssertThrowsError(try TokenMinter.mint(claims: [:], algorithm: .ES256, kid: nil, privateKeyPEM: TestKeys.ecP256.publicPEM)) {
            XCTAssertEqual($0 as? MintError, .invalidKey)
        }
    }
}
