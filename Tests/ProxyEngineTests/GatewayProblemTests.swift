import Foundation
import NIOHTTP1
import XCTest
@testable import ProxyEngine

final class GatewayProblemTests: XCTestCase {
    /// The documented table: status, slug (the stable `type` clients switch on), origin, and
    /// whether the client connection is closed after the answer.
    private static let documented: [(problem: GatewayProblem, status: UInt, slug: String, origin: GatewayProblem.Origin, closes: Bool)] = [
        (.malformedRequest, 400, "malformed-request", .downstream, true),
        (.requestSmuggling, 400, "ambiguous-framing", .downstream, true),
        (.headerReadTimeout, 408, "request-header-timeout", .downstream, true),
        (.bodyTooLarge, 413, "body-too-large", .downstream, true),
        (.uriTooLong, 414, "uri-too-long", .downstream, true),
        (.headerFieldsTooLarge, 431, "header-fields-too-large", .downstream, true),
        (.upstreamUnreachable, 502, "upstream-unreachable", .upstream, false),
        (.upstreamFailed, 502, "upstream-failed", .upstream, false),
        (.upstreamConnectTimeout, 504, "upstream-connect-timeout", .upstream, false),
        (.upstreamResponseTimeout, 504, "upstream-timeout", .upstream, false),
        (.upstreamBusy, 503, "upstream-busy", .upstream, false),
    ]

    func testEachProblemHasItsDocumentedStatusSlugOriginAndClosing() {
        for entry in Self.documented {
            XCTAssertEqual(entry.problem.status.code, entry.status, entry.slug)
            XCTAssertEqual(entry.problem.slug, entry.slug)
            XCTAssertEqual(entry.problem.type, "urn:erp-gateway:problem:\(entry.slug)")
            XCTAssertEqual(entry.problem.description, entry.slug)
            XCTAssertEqual(entry.problem.origin, entry.origin, entry.slug)
            XCTAssertEqual(entry.problem.closesConnection, entry.closes, entry.slug)
            XCTAssertFalse(entry.problem.title.isEmpty, entry.slug)
            XCTAssertTrue(entry.problem.title.hasSuffix("."), entry.slug)
        }
    }

    func testProblemsSlugsAndTitlesAreDistinct() {
        let problems = Self.documented.map(\.problem)
        XCTAssertEqual(Set(problems).count, problems.count)
        XCTAssertEqual(Set(problems.map(\.slug)).count, problems.count)
        XCTAssertEqual(Set(problems.map(\.title)).count, problems.count)
        XCTAssertNotEqual(GatewayProblem.malformedRequest, .requestSmuggling)
    }

    func testSlugsAreSafeAsMetricLabels() {
        for entry in Self.documented {
            XCTAssertTrue(entry.slug.utf8.allSatisfy { (0x61...0x7A).contains($0) || $0 == UInt8(ascii: "-") }, entry.slug)
        }
    }

    // MARK: - ProblemDocument

    func testProblemDocumentIsValidJSONWithTheFourMembers() throws {
        for entry in Self.documented {
            let json = ProblemDocument(entry.problem, requestID: "0123456789abcdef0123456789abcdef").json
            let object = try Self.parse(json)
            XCTAssertEqual(Set(object.keys), ["type", "title", "status", "requestId"])
            XCTAssertEqual(object["type"] as? String, entry.problem.type)
            XCTAssertEqual(object["title"] as? String, entry.problem.title)
            XCTAssertEqual(object["status"] as? Int, Int(entry.status))
            XCTAssertEqual(object["requestId"] as? String, "0123456789abcdef0123456789abcdef")
        }
    }

    func testProblemDocumentEscapesQuotesBackslashesAndControlCharacters() throws {
        let awkward = "say \"hi\" \\ back\nslash\r\ttab \u{0}\u{1}\u{1f} é 🚀 </script>"
        let json = ProblemDocument(.bodyTooLarge, requestID: awkward).json

        XCTAssertFalse(json.unicodeScalars.contains { $0.value < 0x20 }, "raw control character in \(json.debugDescription)")
        XCTAssertTrue(json.contains("\\u0000\\u0001\\u001f"), json)
        let object = try Self.parse(json)
        XCTAssertEqual(object["requestId"] as? String, awkward)
        XCTAssertEqual(object["status"] as? Int, 413)
    }

    func testProblemDocumentLayout() {
        XCTAssertEqual(
            ProblemDocument(.upstreamBusy, requestID: "r-1").json,
            #"{"type":"urn:erp-gateway:problem:upstream-busy","title":"The backend service is at its connection limit.","status":503,"requestId":"r-1"}"#
        )
    }

    // MARK: - Decoder errors

    func testDecoderErrorsMapToProblems() {
        XCTAssertEqual(ClientConnectionHandler.problem(for: .headerOverflow), .headerFieldsTooLarge)
        for error in [HTTPParserError.invalidChunkSize, .unexpectedContentLength, .invalidContentLength] {
            XCTAssertEqual(ClientConnectionHandler.problem(for: error), .requestSmuggling, "\(error)")
        }
        let others: [HTTPParserError] = [
            .invalidCharactersUsed, .trailingGarbage, .invalidEOFState, .closedConnection, .invalidVersion, .invalidStatus,
            .invalidMethod, .invalidURL, .lfExpected, .invalidHeaderToken, .invalidConstant, .invalidInternalState, .strictModeAssertion, .paused, .unknown,
        ]
        for error in others {
            XCTAssertEqual(ClientConnectionHandler.problem(for: error), .malformedRequest, "\(error)")
        }
    }

    // MARK: - Helpers

    private static func parse(_ json: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8))
        return try XCTUnwrap(object as? [String: Any], "not a JSON object: \(json)", file: file, line: line)
    }
}
