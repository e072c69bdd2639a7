import NIOHTTP1
import XCTest

@testable import ProxyEngine

/// `If-None-Match` against the branding's tag (RFC 9110 §13.1.2): `*` or any listed tag,
/// compared weakly, in every `If-None-Match` field, whatever the case of its name.
final class BrandingEndpointTests: XCTestCase {
    private static let etag = "\"b-42\""

    private func matches(_ fields: [(String, String)]) -> Bool {
        let received = BrandingEndpoint.matches(FieldSection.received(HTTPHeaders(fields)), etag: Self.etag)
        XCTAssertEqual(received, BrandingEndpoint.matches(HTTPHeaders(fields), etag: Self.etag), "\(fields)")
        return received
    }

    func testTheTagWeakOrStrongAnyListedOneOrAStarMatches() {
        XCTAssertTrue(self.matches([("If-None-Match", Self.etag)]))
        XCTAssertTrue(self.matches([("if-none-match", "W/\(Self.etag)")]))
        XCTAssertTrue(self.matches([("IF-NONE-MATCH", "*")]))
        XCTAssertTrue(self.matches([("If-None-Match", "\"other\", W/\(Self.etag)")]))
        XCTAssertTrue(self.matches([("If-None-Match", "\"other\""), ("If-None-Match", " \(Self.etag) ")]))
    }

    func testAnotherTagNoFieldOrALookAlikeDoesNotMatch() {
        XCTAssertFalse(self.matches([]))
        XCTAssertFalse(self.matches([("If-None-Match", "\"b-4\"")]))
        XCTAssertFalse(self.matches([("If-None-Match", "W/")]))
        XCTAssertFalse(self.matches([("If-None-Match", "**")]))
        XCTAssertFalse(self.matches([("If-Match", Self.etag)]))
        XCTAssertFalse(self.matches([("If-None-Matches", Self.etag)]))
    }
}
