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

    private func assertRejected(_ uri: String, _ expected: RequestPath.Rejection, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try RequestPath.parse(uri), file: file, line: line) { error in
            XCTAssertEqual(error as? RequestPath.Rejection, expected, "'\(uri)'", file: file, line: line)
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

    func testTokensInTheQueryAreDetected() throws {
        XCTAssertTrue(try RequestPath.parse("/v1/ledger?access_token=abc").carriesToken)
        XCTAssertTrue(try RequestPath.parse("/v1/ledger?x=1&access_token=abc").carriesToken)
        XCTAssertFalse(try RequestPath.parse("/v1/ledger?not_access_token=abc").carriesToken)
        XCTAssertFalse(try RequestPath.parse("/v1/ledger").carriesToken)
    }
}
