import XCTest
@testable import TokenAuth

final class CompactTokenTests: XCTestCase {
    /// RFC 7515 appendix A.1 (HS256). The header and payload contain CR LF, which is why the
    /// signing input must be the received bytes and not a re-encoding of parsed JSON.
    private enum RFC7515A1 {
        static let header = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
        static let payload = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
        static let signature = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        static let token = "\(header).\(payload).\(signature)"
        static let signatureBytes: [UInt8] = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186,
            22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ]
        static let headerJSON = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}"
        static let payloadJSON = "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}"
    }

    func testSplitsTheRFC7515ExampleToken() throws {
        let token = try CompactToken(RFC7515A1.token, maxLength: 8192)

        XCTAssertEqual(token.signature, RFC7515A1.signatureBytes)
        XCTAssertEqual(Array(token.signingInput), Array("\(RFC7515A1.header).\(RFC7515A1.payload)".utf8))
        XCTAssertEqual(Array(token.encodedHeader), Array(RFC7515A1.header.utf8))
        XCTAssertEqual(Array(token.encodedPayload), Array(RFC7515A1.payload.utf8))
        XCTAssertEqual(Array(token.encodedSignature), Array(RFC7515A1.signature.utf8))
        XCTAssertEqual(String(token.serialized), RFC7515A1.token)
        XCTAssertEqual(try Base64URL.decode(token.encodedHeader), Array(RFC7515A1.headerJSON.utf8))
        XCTAssertEqual(try Base64URL.decode(token.encodedPayload), Array(RFC7515A1.payloadJSON.utf8))
    }

    func testWorksOnASliceOfALargerString() throws {
        let authorization = "Bearer \(RFC7515A1.token)"
        let credentials = authorization.dropFirst("Bearer ".count)
        let token = try CompactToken(credentials, maxLength: 8192)

        XCTAssertEqual(token.signature, RFC7515A1.signatureBytes)
        XCTAssertEqual(Array(token.signingInput), Array("\(RFC7515A1.header).\(RFC7515A1.payload)".utf8))
        XCTAssertEqual(Array(token.encodedHeader), Array(RFC7515A1.header.utf8))
        XCTAssertEqual(Array(token.encodedSignature), Array(RFC7515A1.signature.utf8))
    }

    func testRoundTripsMintedTokens() throws {
        var generator = SplitMix64(seed: 7515)
        for signatureLength in [1, 2, 3, 32, 64, 256, 512] {
            let header = Base64URL.encode(Array(#"{"alg":"ES256","kid":"k1"}"#.utf8))
            let payload = Base64URL.encode(Array(#"{"sub":"contoso"}"#.utf8))
            let signature = (0..<signatureLength).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            let text = "\(header).\(payload).\(Base64URL.encode(signature))"

            let token = try CompactToken(text, maxLength: text.utf8.count)
            XCTAssertEqual(token.signature, signature)
            XCTAssertEqual(Array(token.signingInput), Array("\(header).\(payload)".utf8))
        }
    }

    func testMaxLengthIsInclusiveAndCheckedFirst() throws {
        let length = RFC7515A1.token.utf8.count
        XCTAssertNoThrow(try CompactToken(RFC7515A1.token, maxLength: length))
        assertRejects(RFC7515A1.token, maxLength: length - 1, .tooLong)
        assertRejects(String(repeating: "!", count: 10_000), maxLength: 4096, .tooLong)
        assertRejects("a", maxLength: 0, .tooLong)
    }

    func testRequiresExactlyTwoDots() {
        for text in ["", "abc", "eyJh.eyJi", "a.b.c.d", "a.b.c.d.e", "...", "a.b.c."] {
            assertRejects(text, .wrongSegmentCount)
        }
    }

    func testRejectsEmptySegmentsNamingTheFirst() {
        assertRejects("..", .emptySegment(.header))
        assertRejects(".eyJi.c2ln", .emptySegment(.header))
        assertRejects("eyJh..c2ln", .emptySegment(.payload))
        assertRejects("eyJh.eyJi.", .emptySegment(.signature))
        assertRejects("!!..", .emptySegment(.payload))
    }

    func testRejectsBadBase64NamingTheSegment() {
        let (h, p, s) = (RFC7515A1.header, RFC7515A1.payload, RFC7515A1.signature)
        // Outside the alphabet: standard base64, whitespace, a non-ASCII character, NUL.
        assertRejects("eyJ+\(h).\(p).\(s)", .badBase64(.header))
        assertRejects("\(h).\(p)/.\(s)", .badBase64(.payload))
        assertRejects("\(h).\(p).\(s) ", .badBase64(.signature))
        assertRejects("\(h)é.\(p).\(s)", .badBase64(.header))
        assertRejects("\(h).\u{301}\(p).\(s)", .badBase64(.payload))
        assertRejects("\(h).\(p).\(s)\0", .badBase64(.signature))
        // Padding is not part of a JWS segment, even where it would be correct.
        assertRejects("Zg==.\(p).\(s)", .badBase64(.header))
        assertRejects("\(h).Zg==.\(s)", .badBase64(.payload))
        assertRejects("\(h).\(p).\(s)=", .badBase64(.signature))
        // Impossible length and non-zero trailing bits.
        assertRejects("\(h)A.\(p).\(s)", .badBase64(.header))
        assertRejects("\(h).\(p).\(s)AA", .badBase64(.signature))
        assertRejects("\(h).Zh.\(s)", .badBase64(.payload))
        assertRejects("\(h).\(p).dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl", .badBase64(.signature))
    }

    func testTheVerifierMayAllowAnEmptySignature() throws {
        let token = try CompactToken("eyJh.eyJi."[...], maxLength: 8192, allowingEmptySignature: true)
        XCTAssertEqual(token.signature, [])
        XCTAssertEqual(Array(token.signingInput), Array("eyJh.eyJi".utf8))
        XCTAssertEqual(Array(token.encodedSignature), [])
        // Only the signature may be empty, and the other rules still hold.
        for (text, expected) in [("eyJh..c2ln", CompactTokenError.emptySegment(.payload)), ("eyJh.eyJi..", .wrongSegmentCount), ("eyJh.e!Ji.", .badBase64(.payload))] {
            XCTAssertThrowsError(try CompactToken(text[...], maxLength: 8192, allowingEmptySignature: true)) {
                XCTAssertEqual($0 as? CompactTokenError, expected)
            }
        }
    }

    func testSegmentsAreCheckedInOrder() {
        assertRejects("!.!.!", .badBase64(.header))
        assertRejects("eyJh.!.!", .badBase64(.payload))
    }

    func testErrorDescriptionsAreDistinctAndFixed() {
        let errors: [CompactTokenError] = [.tooLong, .wrongSegmentCount]
            + [CompactToken.Segment.header, .payload, .signature].flatMap { [.emptySegment($0), .badBase64($0)] }
        XCTAssertEqual(Set(errors.map(\.description)).count, errors.count)
        XCTAssertEqual(CompactTokenError.badBase64(.payload).description, "token payload segment is not base64url")
    }

    private func assertRejects(
        _ text: String, maxLength: Int = 8192, _ expected: CompactTokenError,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do throws(CompactTokenError) {
            let token = try CompactToken(text, maxLength: maxLength)
            XCTFail("accepted \(token.serialized)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, file: file, line: line)
        }
    }
}
