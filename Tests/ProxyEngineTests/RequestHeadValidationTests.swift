@testable import GatewayConfig
import NIOHTTP1
import XCTest
@testable import ProxyEngine

final class RequestHeadValidationTests: XCTestCase {
    private static let limits = GatewaySettings.RequestLimits(maxHeaderBytes: 1024, maxURIBytes: 256, maxRequestBodyBytes: 1000)

    // MARK: - Accepted heads and their framing

    func testRequestWithoutABody() {
        XCTAssertEqual(Self.validate(headers: [("Host", "h")]), .success(.none))
        XCTAssertEqual(Self.validate(method: .POST, headers: [("Host", "h"), ("Content-Length", "0")]), .success(.contentLength(0)))
        XCTAssertTrue(RequestHeadValidation.BodyFraming.contentLength(0).isEmpty)
        XCTAssertTrue(RequestHeadValidation.BodyFraming.none.isEmpty)
        XCTAssertFalse(RequestHeadValidation.BodyFraming.chunked.isEmpty)
    }

    func testContentLength() {
        XCTAssertEqual(Self.validate(method: .POST, headers: [("Host", "h"), ("Content-Length", "42")]), .success(.contentLength(42)))
        XCTAssertEqual(Self.validate(method: .PUT, headers: [("Host", "h"), ("content-length", "1000")]), .success(.contentLength(1000)))
    }

    func testChunked() {
        XCTAssertEqual(Self.validate(method: .POST, headers: [("Host", "h"), ("Transfer-Encoding", "chunked")]), .success(.chunked))
        XCTAssertEqual(Self.validate(method: .POST, headers: [("Host", "h"), ("transfer-encoding", "Chunked")]), .success(.chunked))
    }

    func testRepeatedIdenticalContentLengthsAreAccepted() {
        let result = Self.validate(method: .POST, headers: [("Host", "h"), ("Content-Length", "5"), ("Content-Length", "5")])
        XCTAssertEqual(result, .success(.contentLength(5)))
    }

    /// It would go upstream as HTTP/1.1 without a Host (RFC 9112 §3.2), which backends refuse.
    func testHTTP10WithoutHostIsRefused() {
        XCTAssertEqual(Self.validate(version: .http1_0, headers: []), .failure(.malformedRequest))
        XCTAssertEqual(Self.validate(version: .http1_0, method: .POST, headers: [("Content-Length", "3")]), .failure(.malformedRequest))
        XCTAssertEqual(Self.validate(version: .http1_0, headers: [("Host", "h")]), .success(.none))
    }

    func testExactlyOneHostFieldEmptyOrNot() {
        XCTAssertEqual(Self.validate(headers: []), .failure(.malformedRequest))
        XCTAssertEqual(Self.validate(headers: [("Host", "")]), .success(.none), "an empty Host on its own is valid HTTP")
        for hosts in [["h", ""], ["", "h"], ["", ""], ["h", "h"], ["h", "other"], ["h, other"], ["h,"]] {
            XCTAssertEqual(Self.validate(headers: hosts.map { ("Host", $0) }), .failure(.malformedRequest), "\(hosts)")
            XCTAssertEqual(Self.validate(version: .http1_0, headers: hosts.map { ("host", $0) }), .failure(.malformedRequest), "\(hosts)")
        }
    }

    // MARK: - Methods

    func testConnectIsRefusedWhateverTheCatalogNames() {
        XCTAssertEqual(Self.validate(method: .CONNECT, headers: [("Host", "h")]), .failure(.methodNotImplemented))
        XCTAssertEqual(Self.validate(method: .CONNECT, headers: [("Host", "h")], catalogMethods: ["CONNECT"]), .failure(.methodNotImplemented))
        XCTAssertTrue(GatewayProblem.methodNotImplemented.closesConnection, "the decoder reads nothing after a CONNECT head")
    }

    func testStandardMethodsAndThoseTheCatalogNames() {
        for method: HTTPMethod in [.GET, .HEAD, .POST, .PUT, .PATCH, .DELETE, .OPTIONS] {
            XCTAssertEqual(Self.validate(method: method, headers: [("Host", "h")]), .success(.none), "\(method)")
        }
        for method: HTTPMethod in [.TRACE, .PROPFIND, .RAW(value: "BREW")] {
            XCTAssertEqual(Self.validate(method: method, headers: [("Host", "h")]), .failure(.methodNotImplemented), "\(method)")
        }
        XCTAssertEqual(Self.validate(method: .PROPFIND, headers: [("Host", "h")], catalogMethods: ["PROPFIND"]), .success(.none))
        XCTAssertEqual(Self.validate(method: .RAW(value: "BREW"), headers: [("Host", "h")], catalogMethods: ["BREW"]), .success(.none))
    }

    // MARK: - Ambiguous framing

    func testContentLengthTogetherWithTransferEncoding() {
        let result = Self.validate(method: .POST, headers: [("Host", "h"), ("Content-Length", "5"), ("Transfer-Encoding", "chunked")])
        XCTAssertEqual(result, .failure(.ambiguousFraming))
    }

    func testDifferingContentLengths() {
        let twoHeaders = Self.validate(method: .POST, headers: [("Host", "h"), ("Content-Length", "5"), ("Content-Length", "6")])
        XCTAssertEqual(twoHeaders, .failure(.ambiguousFraming))
        XCTAssertEqual(Self.validate(method: .POST, headers: [("Host", "h"), ("Content-Length", "5,6")]), .failure(.ambiguousFraming))
    }

    func testContentLengthThatIsNotJustDigits() {
        for value in ["+5", "-5", "5a", "0x10", "5.0", "1 2", "١", "", ",", " 5", "5 ", "5,", ",5", "5,,5"] {
            let result = Self.validate(method: .POST, headers: [("Host", "h"), ("Content-Length", value)])
            XCTAssertEqual(result, .failure(.ambiguousFraming), "Content-Length '\(value)'")
        }
    }

    func testEmptyTransferEncodingWithContentLength() {
        for value in ["", ","] {
            let result = Self.validate(method: .POST, headers: [("Host", "h"), ("Content-Length", "5"), ("Transfer-Encoding", value)])
            XCTAssertEqual(result, .failure(.ambiguousFraming), "Transfer-Encoding '\(value)'")
        }
    }

    func testContentLengthTooLongToBeANumber() {
        let result = Self.validate(method: .POST, headers: [("Host", "h"), ("Content-Length", String(repeating: "9", count: 30))])
        XCTAssertEqual(result, .failure(.ambiguousFraming))
    }

    func testTransferEncodingOtherThanChunkedAlone() {
        let cases: [[(String, String)]] = [
            [("Transfer-Encoding", "gzip, chunked")],
            [("Transfer-Encoding", "chunked, gzip")],
            [("Transfer-Encoding", "gzip"), ("Transfer-Encoding", "chunked")],
            [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
            [("Transfer-Encoding", "gzip")],
            [("Transfer-Encoding", "identity")],
            [("Transfer-Encoding", "xchunked")],
        ]
        for extra in cases {
            let result = Self.validate(method: .POST, headers: [("Host", "h")] + extra)
            XCTAssertEqual(result, .failure(.ambiguousFraming), "\(extra)")
        }
    }

    func testTransferEncodingOnHTTP10() {
        let result = Self.validate(version: .http1_0, method: .POST, headers: [("Host", "h"), ("Transfer-Encoding", "chunked")])
        XCTAssertEqual(result, .failure(.ambiguousFraming))
    }

    // MARK: - Limits

    func testURIUpToTheLimitIsAcceptedAndOneByteMoreIsNot() {
        let atLimit = "/" + String(repeating: "a", count: 255)
        XCTAssertEqual(Self.validate(uri: atLimit, headers: [("Host", "h")]), .success(.none))
        XCTAssertEqual(Self.validate(uri: atLimit + "a", headers: [("Host", "h")]), .failure(.uriTooLong))
    }

    func testURILengthIsCountedInBytes() {
        // 128 two-byte characters: 128 characters but 256 bytes, plus the slash.
        let uri = "/" + String(repeating: "é", count: 128)
        XCTAssertEqual(Self.validate(uri: uri, headers: [("Host", "h")]), .failure(.uriTooLong))
    }

    func testHeaderBytesCountNameValueAndSeparators() {
        XCTAssertEqual(RequestHeadValidation.headerBytes(HTTPHeaders([("Host", "example.com")])), 4 + 11 + 4)
        XCTAssertEqual(RequestHeadValidation.headerBytes(HTTPHeaders([("a", "b"), ("c", "")])), 6 + 5)
        XCTAssertEqual(RequestHeadValidation.headerBytes(HTTPHeaders()), 0)
    }

    func testHeadersUpToTheLimitAreAcceptedAndOneByteMoreIsNot() {
        // "Host" + "h" + 4 = 9 bytes, and "x-pad" + 4 = 9 bytes before its value.
        let padding = 1024 - 9 - 9
        let atLimit = [("Host", "h"), ("x-pad", String(repeating: "p", count: padding))]
        XCTAssertEqual(RequestHeadValidation.headerBytes(HTTPHeaders(atLimit)), 1024)
        XCTAssertEqual(Self.validate(headers: atLimit), .success(.none))

        let overLimit = [("Host", "h"), ("x-pad", String(repeating: "p", count: padding + 1))]
        XCTAssertEqual(Self.validate(headers: overLimit), .failure(.headerFieldsTooLarge))
    }

    func testDeclaredBodyAboveTheLimit() {
        XCTAssertEqual(Self.validate(method: .POST, headers: [("Host", "h"), ("Content-Length", "1001")]), .failure(.bodyTooLarge))
        XCTAssertEqual(Self.validate(method: .POST, headers: [("Host", "h"), ("Content-Length", "999999999999")]), .failure(.bodyTooLarge))
    }

    // MARK: - Host

    func testHTTP11RequiresExactlyOneHost() {
        XCTAssertEqual(Self.validate(headers: []), .failure(.malformedRequest))
        XCTAssertEqual(Self.validate(headers: [("Host", "a"), ("Host", "b")]), .failure(.malformedRequest))
        XCTAssertEqual(Self.validate(headers: [("Host", "a"), ("host", "a")]), .failure(.malformedRequest))
    }

    func testHTTP10WithTwoHosts() {
        XCTAssertEqual(Self.validate(version: .http1_0, headers: [("Host", "a"), ("Host", "b")]), .failure(.malformedRequest))
    }

    // MARK: - Decoder limit and idempotency

    func testDecoderLimitIsGenerousAboveTheConfiguredLimits() {
        XCTAssertEqual(RequestHeadValidation.decoderLimit(for: Self.limits), 64 << 10)
        let large = GatewaySettings.RequestLimits(maxHeaderBytes: 1 << 20, maxURIBytes: 1 << 20, maxRequestBodyBytes: 0)
        let limit = RequestHeadValidation.decoderLimit(for: large)
        XCTAssertGreaterThan(limit, large.maxHeaderBytes + large.maxURIBytes)
    }

    func testIdempotentMethods() {
        for method in [HTTPMethod.GET, .HEAD, .PUT, .DELETE, .OPTIONS, .TRACE] {
            XCTAssertTrue(method.isIdempotent, "\(method)")
        }
        for method in [HTTPMethod.POST, .PATCH, .CONNECT] {
            XCTAssertFalse(method.isIdempotent, "\(method)")
        }
    }

    // MARK: - Helpers

    private static func validate(
        version: HTTPVersion = .http1_1, method: HTTPMethod = .GET, uri: String = "/", headers: [(String, String)],
        catalogMethods: Set<String> = []
    ) -> Result<RequestHeadValidation.BodyFraming, GatewayProblem> {
        let head = HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
        let received = RequestHeadValidation.validate(.received(head), limits: Self.limits, catalogMethods: catalogMethods)
        // The fields as received (an HTTP/1.1 client's) and as strings (an HTTP/2 stream's) are judged alike.
        XCTAssertEqual(received, RequestHeadValidation.validate(RelayedRequestHead(head), limits: Self.limits, catalogMethods: catalogMethods))
        return received
    }
}
