import XCTest
@testable import TokenAuth

final class UnverifiedTokenTests: XCTestCase {
    func testExposesOnlyWhatSelectsTheKey() throws {
        let token = HandBuilt.token(header: #"{"alg":"RS384","kid":"k-1","typ":"JWT"}"#, payload: HandBuilt.payload(), signature: [1, 2, 3])
        let unverified = try UnverifiedToken.parse(token[...], maxBytes: 8192)
        XCTAssertEqual(unverified.issuer, Fixture.issuer)
        XCTAssertEqual(unverified.kid, "k-1")
        XCTAssertEqual(unverified.headerAlgorithm, "RS384")
    }

    func testNonStringIssuerOrKeyIDReadAsAbsent() throws {
        let token = HandBuilt.token(header: #"{"alg":"HS256","kid":17}"#, payload: #"{"iss":["a"]}"#, signature: [1])
        let unverified = try UnverifiedToken.parse(token[...], maxBytes: 8192)
        XCTAssertNil(unverified.issuer)
        XCTAssertNil(unverified.kid)
    }

    func testReportsTheHeadersAlgorithmEvenThoughLibJWTForgetsIt() throws {
        // Without a key, libjwt sets its own algorithm to none; the header's text must survive.
        let token = HandBuilt.token(header: #"{"alg":"ES512","kid":"k"}"#, payload: "{}", signature: [1])
        XCTAssertEqual(try UnverifiedToken.parse(token[...], maxBytes: 8192).headerAlgorithm, "ES512")
        let unsigned = "\(HandBuilt.segment(#"{"alg":"none"}"#)).\(HandBuilt.segment("{}"))."
        XCTAssertEqual(try UnverifiedToken.parse(unsigned[...], maxBytes: 8192).headerAlgorithm, "none")
    }

    func testClaimsMustBeAJSONObject() throws {
        let header = #"{"alg":"HS256","kid":"k"}"#
        for payload in ["[1,2]", "  \n\t[{}]", "[]"] {
            let token = HandBuilt.token(header: header, payload: payload, signature: [1])
            XCTAssertThrowsError(try UnverifiedToken.parse(token[...], maxBytes: 8192), payload) {
                XCTAssertEqual($0 as? TokenRejection, .malformed, payload)
            }
        }
        // Leading blanks of any length before the object are fine.
        for blanks in ["", " ", "  ", "   ", " \r\n\t     "] {
            let token = HandBuilt.token(header: header, payload: blanks + #"{"iss":"x"}"#, signature: [1])
            XCTAssertEqual(try UnverifiedToken.parse(token[...], maxBytes: 8192).issuer, "x")
        }
    }

    func testLengthIsCheckedFirst() {
        let huge = String(repeating: "%", count: 65_536)
        XCTAssertThrowsError(try UnverifiedToken.parse(huge[...], maxBytes: 8192)) {
            XCTAssertEqual($0 as? TokenRejection, .tokenTooLarge)
        }
    }

    func testMalformed() {
        for text in ["", "a", "a.b", "e30.e30.e30.e30", "e30.bm90IGpzb24.AAAA", "bm90IGpzb24.e30.AAAA"] {
            XCTAssertThrowsError(try UnverifiedToken.parse(text[...], maxBytes: 8192), text) {
                XCTAssertEqual($0 as? TokenRejection, .malformed, text)
            }
        }
    }
}
