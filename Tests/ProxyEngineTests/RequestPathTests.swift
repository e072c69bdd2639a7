import XCTest
@testable import ProxyEngine

final class RequestPathTests: XCTestCase {
    private func normalized(_ uri: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        do {
            return try RequestPath.parse(uri).target
        } catch {
            XCTFail("'\(uri)' rejected: \(error)", file: file, line: line)
            return nil
        }
    }

    private func assertRejected(
        _ uri: String, _ expected: RequestPath.Rejection, _ message: String = "", file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try RequestPath.parse(uri), file: file, line: line) { error in
            XCTAssertEqual(error as? RequestPath.Rejection, expected, "'\(uri)' \(message)", file: file, line: line)
        }
    }

    func testOrdinaryPathsAreUnchanged() {
        XCTAssertEqual(self.normalized("/"), "/")
        XCTAssertEqual(self.normalized("/v1/ledger"), "/v1/ledger")
        XCTAssertEqual(self.normalized("/v1/ledger/"), "/v1/ledger/")
        XCTAssertEqual(self.normalized("/v1/ledger?from=2026-01&to=2026-02"), "/v1/ledger?from=2026-01&to=2026-02")
        XCTAssertEqual(self.normalized("/a%20b"), "/a%20b")
    }

    func testDotSegmentsAndDuplicateSlashesAreResolved() {
        XCTAssertEqual(self.normalized("/v1/./ledger"), "/v1/ledger")
        XCTAssertEqual(self.normalized("/v1/ledger/../payroll"), "/v1/payroll")
        XCTAssertEqual(self.normalized("//v1///ledger"), "/v1/ledger")
        XCTAssertEqual(self.normalized("/v1/ledger/."), "/v1/ledger/")
        XCTAssertEqual(self.normalized("/v1/ledger/.."), "/v1/")
        XCTAssertEqual(self.normalized("/v1/.."), "/")
    }

    func testUnreservedEscapesAreDecodedAndOthersUppercased() {
        XCTAssertEqual(self.normalized("/v1/%70ayroll"), "/v1/payroll")
        XCTAssertEqual(self.normalized("/v1/%2e%2e/payroll"), "/payroll", "encoded dot segments are dot segments")
        XCTAssertEqual(self.normalized("/v1/ledger/%2E%2E/payroll"), "/v1/payroll")
        XCTAssertEqual(self.normalized("/a%3fb"), "/a%3Fb")
        XCTAssertEqual(self.normalized("/%7e%41"), "/~A")
    }

    func testAmbiguousTargetsAreRefused() {
        self.assertRejected("/v1/ledger%2f..%2fpayroll", .encodedSeparator)
        self.assertRejected("/v1/ledger%2F", .encodedSeparator)
        self.assertRejected("/v1%5cpayroll", .encodedSeparator)
        self.assertRejected("/v1\\payroll", .encodedSeparator)
        self.assertRejected("/v1/%00", .controlCharacter)
        self.assertRejected("/v1/%0a", .controlCharacter)
        self.assertRejected("/v1/%zz", .badEscape)
        self.assertRejected("/v1/%4", .badEscape)
        self.assertRejected("/..", .aboveRoot)
        self.assertRejected("/v1/../../etc", .aboveRoot)
        self.assertRejected("/%2e%2e/x", .aboveRoot)
        self.assertRejected("http://other.example/v1", .notOriginForm)
        self.assertRejected("*", .notOriginForm)
    }

    // MARK: - What servlet containers, double decoders and lax UTF-8 decoders read differently

    func testPathParametersAreRefusedInAnySegmentRawOrEncoded() {
        self.assertRejected("/v1/ledger/..;/payroll", .pathParameter)
        self.assertRejected("/v1/ledger/%2e%2e;/export", .pathParameter)
        self.assertRejected("/v1/ledger;jsessionid=1", .pathParameter)
        self.assertRejected("/v1;x/ledger", .pathParameter)
        self.assertRejected("/;/v1/ledger", .pathParameter)
        self.assertRejected("/v1/ledger/..%3B/payroll", .pathParameter)
        self.assertRejected("/v1/ledger/..%3b/payroll", .pathParameter)
        self.assertRejected("/v1/ledger/;", .pathParameter)
    }

    func testASemicolonInTheQueryIsTheBackendsBusiness() {
        XCTAssertEqual(self.normalized("/v1/ledger?a=1;b=2"), "/v1/ledger?a=1;b=2")
        XCTAssertEqual(self.normalized("/v1/ledger?filter=%3B"), "/v1/ledger?filter=%3B")
    }

    func testAFragmentAnywhereInTheTargetIsRefused() {
        self.assertRejected("/v1/ledger/close#?x=1", .fragment, "the ? after # is no query: checked before splitting")
        self.assertRejected("/v1/ledger/close#", .fragment)
        self.assertRejected("/v1/ledger/close#frag", .fragment)
        self.assertRejected("/v1/ledger?x=1#frag", .fragment)
        self.assertRejected("/v1/ledger?x=#", .fragment)
        XCTAssertEqual(self.normalized("/v1/ledger/a%23b"), "/v1/ledger/a%23b", "an encoded # is data")
    }

    func testDoubleEncodingIsRefused() {
        self.assertRejected("/v1/ledger/%252e%252e/payroll", .doubleEncoding)
        self.assertRejected("/v1/ledger/%252E%252E/payroll", .doubleEncoding)
        self.assertRejected("/v1/ledger%252fpayroll", .doubleEncoding)
        self.assertRejected("/v1/%2541", .doubleEncoding)
        self.assertRejected("/v1/%25a", .doubleEncoding, "one hex digit is already more than one decoding can tell apart")
        self.assertRejected("/v1/%25%32%65", .doubleEncoding, "hex digits spelled as escapes are hex digits")
        self.assertRejected("/v1/%25%252e", .doubleEncoding)
    }

    func testAnEncodedPercentNotFollowedByHexPasses() {
        XCTAssertEqual(self.normalized("/v1/discounts/10%25"), "/v1/discounts/10%25")
        XCTAssertEqual(self.normalized("/v1/discounts/10%25/x"), "/v1/discounts/10%25/x")
        XCTAssertEqual(self.normalized("/v1/discounts/10%25off"), "/v1/discounts/10%25off")
        XCTAssertEqual(self.normalized("/v1/%25%25"), "/v1/%25%25")
        XCTAssertEqual(self.normalized("/v1/ledger?q=%252e%2541"), "/v1/ledger?q=%252e%2541", "only the path is decoded")
    }

    func testOverlongAndOtherIllFormedUTF8IsRefused() {
        self.assertRejected("/v1/ledger/%C0%AE%C0%AE/payroll", .invalidUTF8)
        self.assertRejected("/v1/ledger/%c0%ae%c0%ae/payroll", .invalidUTF8)
        self.assertRejected("/v1/%C1%BF", .invalidUTF8, "C1 is an overlong lead")
        self.assertRejected("/v1/%E0%80%AE", .invalidUTF8, "three-byte overlong dot")
        self.assertRejected("/v1/%E0%9F%BF", .invalidUTF8)
        self.assertRejected("/v1/%F0%80%80%AE", .invalidUTF8, "four-byte overlong dot")
        self.assertRejected("/v1/%F0%8F%BF%BF", .invalidUTF8)
        self.assertRejected("/v1/%ED%A0%80", .invalidUTF8, "a surrogate")
        self.assertRejected("/v1/%F4%90%80%80", .invalidUTF8, "above U+10FFFF")
        self.assertRejected("/v1/%F5%80%80%80", .invalidUTF8)
        self.assertRejected("/v1/%FF", .invalidUTF8)
        self.assertRejected("/v1/%AE", .invalidUTF8, "a continuation byte without a lead")
        self.assertRejected("/v1/%C3", .invalidUTF8, "a sequence cut short by the end")
        self.assertRejected("/v1/%C3/x", .invalidUTF8, "… by a slash")
        self.assertRejected("/v1/%C3a", .invalidUTF8, "… by a raw character")
        self.assertRejected("/v1/%C3%41", .invalidUTF8, "… by an escaped ASCII character")
        self.assertRejected("/v1/%E2%82", .invalidUTF8)
        self.assertRejected("/v1/%C3%A9%A9", .invalidUTF8)
    }

    func testWellFormedUTF8EscapesPass() {
        XCTAssertEqual(self.normalized("/v1/caf%c3%a9"), "/v1/caf%C3%A9")
        XCTAssertEqual(self.normalized("/v1/%E2%82%AC"), "/v1/%E2%82%AC", "€")
        XCTAssertEqual(self.normalized("/v1/%ED%9F%BF"), "/v1/%ED%9F%BF", "U+D7FF, the last before the surrogates")
        XCTAssertEqual(self.normalized("/v1/%EF%BC%8E"), "/v1/%EF%BC%8E", "U+FF0E, a fullwidth full stop, is not a dot")
        XCTAssertEqual(self.normalized("/v1/%F0%9F%98%80"), "/v1/%F0%9F%98%80")
        XCTAssertEqual(self.normalized("/v1/%F4%8F%BF%BF"), "/v1/%F4%8F%BF%BF", "U+10FFFF")
        XCTAssertEqual(self.normalized("/v1/%C3%A9/%2E%2E/ledger"), "/v1/ledger")
    }

    func testRawNonASCIIIsRefusedEvenWhenItIsUTF8() {
        self.assertRejected("/v1/café", .rawNonASCII)
        self.assertRejected("/v1/\u{FFFD}", .rawNonASCII, "what NIO makes of invalid bytes")
        self.assertRejected("/v1/%C3é", .rawNonASCII, "an escaped lead continued by raw bytes: the raw byte is the offence")
        XCTAssertEqual(self.normalized("/v1/ledger?name=café"), "/v1/ledger?name=café", "only the path is checked")
    }

    func testEncodedDotSegmentsStillResolve() {
        XCTAssertEqual(self.normalized("/v1/ledger/%2E/7"), "/v1/ledger/7")
        XCTAssertEqual(self.normalized("/v1/ledger/.%2e/payroll"), "/v1/payroll")
        XCTAssertEqual(self.normalized("/v1/ledger/%2E%2E"), "/v1/")
    }

    func testTokensInTheQueryAreDetected() throws {
        XCTAssertTrue(try RequestPath.parse("/v1/ledger?access_token=abc").carriesToken)
        XCTAssertTrue(try RequestPath.parse("/v1/ledger?x=1&access_token=abc").carriesToken)
        XCTAssertFalse(try RequestPath.parse("/v1/ledger?not_access_token=abc").carriesToken)
        XCTAssertFalse(try RequestPath.parse("/v1/ledger").carriesToken)
    }
}

/// The shortcut for paths that are already canonical gives exactly what the full normalization
/// gives, for every path of up to four pieces the rules care about (about 110,000 paths), alone
/// and with queries the rules look at.
final class RequestPathShortcutTests: XCTestCase {
    func testTheShortcutAgreesWithTheFullNormalization() {
        let pieces = ["/", "a", "b7", ".", "..", "-", "~", "_", "!", ":", "@", "%2E", "%61", "%2F", ";", "\\", "%25", "é"]
        var paths = ["/"]
        var frontier = ["/"]
        for _ in 1...4 {
            frontier = frontier.flatMap { prefix in pieces.map { prefix + $0 } }
            paths += frontier
        }
        for path in paths {
            for target in [path, path + "?q=1", path + "?", path + "?a?b/..", path + "?a#b", path + "#", path + "?x=\u{7F}", path + "?{\"a\"|1}"] {
                let fast = Result { () throws(RequestPath.Rejection) in try RequestPath.parse(target) }
                let full = Result { () throws(RequestPath.Rejection) in try RequestPath.parse(target, shortcut: false) }
                if fast != full { XCTFail("\(target): \(fast) ≠ \(full)") }
            }
        }
        XCTAssertEqual(paths.count, 1 + 18 + 18 * 18 + 18 * 18 * 18 + 18 * 18 * 18 * 18)
    }
}
