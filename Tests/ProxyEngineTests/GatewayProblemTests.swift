import Foundation
import NIOCore
import NIOHTTP1
import TokenAuth
import XCTest
@testable import ProxyEngine

final class GatewayProblemTests: XCTestCase {
    /// The documented table: status, slug (the stable `type` clients switch on), origin, and
    /// whether the client connection is closed after the answer.
    private static let documented: [(problem: GatewayProblem, status: UInt, slug: String, origin: GatewayProblem.Origin, closes: Bool)] = [
        (.malformedRequest, 400, "malformed-request", .downstream, true),
        (.ambiguousFraming, 400, "ambiguous-framing", .downstream, true),
        (.requestHeaderTimeout, 408, "request-header-timeout", .downstream, true),
        (.bodyTooLarge, 413, "body-too-large", .downstream, true),
        (.uriTooLong, 414, "uri-too-long", .downstream, true),
        (.headerFieldsTooLarge, 431, "header-fields-too-large", .downstream, true),
        (.websocketNotAllowed, 400, "websocket-not-allowed", .downstream, true),
        (.upstreamUnreachable, 502, "upstream-unreachable", .upstream, false),
        (.upstreamFailed, 502, "upstream-failed", .upstream, false),
        (.upstreamConnectTimeout, 504, "upstream-connect-timeout", .upstream, false),
        (.upstreamTimeout, 504, "upstream-timeout", .upstream, false),
        (.upstreamBusy, 503, "upstream-busy", .upstream, false),
        (.upstreamTlsFailed, 502, "upstream-tls-failed", .upstream, false),
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
        XCTAssertNotEqual(GatewayProblem.malformedRequest, .ambiguousFraming)
    }

    func testSlugsAreSafeAsMetricLabels() {
        for entry in Self.documented {
            XCTAssertTrue(entry.slug.utf8.allSatisfy { (0x61...0x7A).contains($0) || $0 == UInt8(ascii: "-") }, entry.slug)
        }
    }

    // MARK: - One constant, one phase, one table

    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// `static let NAME = GatewayProblem("slug", …` in the source: every constant is named like
    /// its slug (`ambiguous-framing` is `ambiguousFraming`), and `all` lists every constant.
    func testEveryConstantIsNamedLikeItsSlugAndListedInAll() throws {
        let source = try String(contentsOf: Self.packageRoot.appendingPathComponent("Sources/ProxyEngine/GatewayProblem.swift"), encoding: .utf8)
        let declaration = try NSRegularExpression(pattern: #"static let (\w+) = GatewayProblem\(\s*"([a-z-]+)""#)
        let matches = declaration.matches(in: source, range: NSRange(source.startIndex..., in: source))
        var declared: [String: String] = [:]
        for match in matches {
            let name = String(source[Range(match.range(at: 1), in: source)!])
            let slug = String(source[Range(match.range(at: 2), in: source)!])
            let camel = slug.split(separator: "-").enumerated().map { $0.offset == 0 ? String($0.element) : $0.element.capitalized }.joined()
            XCTAssertEqual(name, camel, "the constant for `\(slug)`")
            declared[slug] = name
        }
        XCTAssertEqual(Set(declared.keys), Set(GatewayProblem.all.map(\.slug)), "GatewayProblem.all lists every constant")
        XCTAssertEqual(GatewayProblem.all.count, declared.count)
    }

    /// Every problem the gateway can answer with, token rejections included.
    static var everyProblem: [GatewayProblem] {
        GatewayProblem.all + Self.tokenRejections
    }

    /// The verifier's rejections answered as `tokenRejected`: all but `keysUnavailable`, which
    /// is a problem of its own (503, `issuerKeysUnavailable`).
    static var tokenRejections: [GatewayProblem] {
        TokenRejection.allReasons.filter { $0 != .keysUnavailable }.map { GatewayProblem.tokenRejected($0.slug) }
    }

    func testEverySlugIsRaisedByOnePhaseAndTheArchitectureTableSaysWhich() throws {
        let problems = Self.everyProblem
        XCTAssertEqual(Set(problems.map(\.slug)).count, problems.count, "slugs are distinct")
        // The table of docs/architecture.md, "Problems and the phase that raises them".
        let text = try String(contentsOf: Self.packageRoot.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        let section = try XCTUnwrap(text.range(of: "## Problems and the phase that raises them"))
        var documented: [String: (phase: String, status: String)] = [:]
        for line in text[section.upperBound...].split(separator: "\n") {
            if line.hasPrefix("## ") { break }
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 5, cells[1].hasPrefix("`"), cells[2] != "phase" else { continue }
            for slug in cells[1].split(separator: ",") {
                documented[slug.trimmingCharacters(in: CharacterSet(charactersIn: "` "))] = (cells[2], cells[3])
            }
        }
        XCTAssertEqual(Set(documented.keys), Set(problems.map(\.slug)), "the table lists every problem, and nothing else")
        for problem in problems {
            XCTAssertEqual(documented[problem.slug]?.phase, problem.phase.rawValue, problem.slug)
            XCTAssertEqual(documented[problem.slug]?.status, String(problem.status.code), problem.slug)
        }
        XCTAssertEqual(GatewayProblem.issuerKeysUnavailable.slug, TokenRejection.keysUnavailable.slug)
        for problem in Self.tokenRejections {
            XCTAssertEqual(problem.phase, .authenticate, problem.slug)
        }
    }

    func testTheThreeFormerUpstreamUnreachablesAreThreeProblems() {
        XCTAssertEqual(GatewayProblem.upstreamUnreachable.phase, .forward)
        XCTAssertEqual(GatewayProblem.tenantNotPlaced.phase, .resolve)
        XCTAssertEqual(GatewayProblem.cellUnavailable.phase, .selectCell)
        XCTAssertEqual(UpstreamPool.problem(forConnectError: ChannelError.connectTimeout(.seconds(1))), .upstreamConnectTimeout)
        XCTAssertEqual(UpstreamPool.problem(forConnectError: IOError(errnoCode: ECONNREFUSED, reason: "connect")), .upstreamUnreachable)
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
        XCTAssertEqual(ClientConnectionStateMachine.problem(for: .headerOverflow), .headerFieldsTooLarge)
        for error in [HTTPParserError.invalidChunkSize, .unexpectedContentLength, .invalidContentLength] {
            XCTAssertEqual(ClientConnectionStateMachine.problem(for: error), .ambiguousFraming, "\(error)")
        }
        let others: [HTTPParserError] = [
            .invalidCharactersUsed, .trailingGarbage, .invalidEOFState, .closedConnection, .invalidVersion, .invalidStatus,
            .invalidMethod, .invalidURL, .lfExpected, .invalidHeaderToken, .invalidConstant, .invalidInternalState, .strictModeAssertion, .paused, .unknown,
        ]
        for error in others {
            XCTAssertEqual(ClientConnectionStateMachine.problem(for: error), .malformedRequest, "\(error)")
        }
    }

    // MARK: - Helpers

    private static func parse(_ json: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8))
        return try XCTUnwrap(object as? [String: Any], "not a JSON object: \(json)", file: file, line: line)
    }
}
