@testable import AdminAPI
import Foundation
import ConsoleAssets
import XCTest

/// The console's files as the admin listener answers them, and `GET /admin/v1/me`.
final class ConsoleRouteTests: XCTestCase {
    func get(_ target: String, headers: [(name: String, value: String)] = []) -> AdminResponse? {
        ConsoleRoute.answer(AdminRequest(method: "GET", target: target, headers: headers, requestID: "r"))
    }

    func assertSecurityHeaders(_ response: AdminResponse, file: StaticString = #filePath, line: UInt = #line) {
        let policy = response.header("content-security-policy") ?? ""
        for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
            XCTAssertTrue(policy.contains(directive), "\(directive) in \(policy)", file: file, line: line)
        }
        XCTAssertFalse(policy.contains("unsafe-inline") || policy.contains("unsafe-eval"), policy, file: file, line: line)
        // No other origin and no scheme source in any directive: the console loads nothing from
        // outside the gateway (it works offline; a brand's logo is named, not fetched).
        for directive in policy.split(separator: ";") {
            let sources = directive.split(separator: " ").dropFirst()
            XCTAssertTrue(sources.allSatisfy { $0 == "'self'" || $0 == "'none'" }, "\(directive) in \(policy)", file: file, line: line)
        }
        XCTAssertEqual(response.header("x-frame-options"), "DENY", file: file, line: line)
        XCTAssertEqual(response.header("x-content-type-options"), "nosniff", file: file, line: line)
    }

    func testEveryFileIsServedWithItsTypeAnETagAndTheSecurityHeaders() throws {
        XCTAssertGreaterThanOrEqual(ConsoleAssets.files.count, 5)
        for (name, file) in ConsoleAssets.files {
            let response = try XCTUnwrap(self.get("/console/\(name)"), name)
            XCTAssertEqual(response.status, 200, name)
            XCTAssertEqual(response.body, String(decoding: file.bytes, as: UTF8.self), name)
            XCTAssertEqual(response.header("content-type"), file.contentType, name)
            XCTAssertEqual(response.header("cache-control"), "no-cache", name)
            self.assertSecurityHeaders(response)
            let etag = try XCTUnwrap(response.header("etag"), name)
            let revalidated = try XCTUnwrap(self.get("/console/\(name)", headers: [(name: "if-none-match", value: etag)]))
            XCTAssertEqual(revalidated.status, 304, name)
            XCTAssertEqual(revalidated.body, "")
            XCTAssertEqual(revalidated.header("etag"), etag)
            XCTAssertEqual(self.get("/console/\(name)", headers: [(name: "if-none-match", value: "\"other\"")])?.status, 200)
        }
        XCTAssertEqual(ConsoleAssets.files["index.html"]?.contentType, "text/html; charset=utf-8")
        XCTAssertEqual(ConsoleAssets.files["console.js"]?.contentType, "text/javascript; charset=utf-8")
        XCTAssertEqual(ConsoleAssets.files["console.css"]?.contentType, "text/css; charset=utf-8")
        XCTAssertEqual(self.get("/console/")?.body, self.get("/console/index.html")?.body)
    }

    func testTheBarePathRedirectsAndAnythingElseIsRefusedWithTheSameHeaders() throws {
        let redirect = try XCTUnwrap(self.get("/console"))
        XCTAssertEqual(redirect.status, 301)
        XCTAssertEqual(redirect.header("location"), "/console/")
        let missing = try XCTUnwrap(self.get("/console/nothing.js"))
        XCTAssertEqual(missing.status, 404)
        self.assertSecurityHeaders(missing)
        let post = try XCTUnwrap(ConsoleRoute.answer(AdminRequest(method: "POST", target: "/console/", headers: [], requestID: "r")))
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.header("allow"), "GET")
        // The admin API's paths are not the console's.
        XCTAssertNil(self.get("/admin/v1/nodes"))
        XCTAssertNil(self.get("/consoles"))
    }

    /// What keeps the strict policy workable and every value text: no inline code in the page,
    /// no HTML parsing of data in the scripts, and no token kept where it would outlive the page.
    func testTheFilesHoldNoInlineCodeParseNoHTMLAndStoreNoToken() throws {
        let index = String(decoding: try XCTUnwrap(ConsoleAssets.files["index.html"]).bytes, as: UTF8.self)
        XCTAssertNil(index.range(of: "<script>"), "no inline script")
        XCTAssertNil(index.range(of: "<script type=\"module\">"), "no inline module")
        XCTAssertNil(index.range(of: "<style"), "no inline style sheet")
        XCTAssertNil(index.range(of: " style="), "no style attribute")
        XCTAssertNil(index.range(of: #" on[a-z]+="#, options: .regularExpression), "no event handler attribute")
        XCTAssertNil(index.range(of: "http://"))
        XCTAssertNil(index.range(of: "https://"))
        for (name, file) in ConsoleAssets.files where name.hasSuffix(".js") {
            let text = String(decoding: file.bytes, as: UTF8.self)
            for forbidden in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage", "sessionStorage", "document.cookie"] {
                XCTAssertNil(text.range(of: forbidden), "\(forbidden) in \(name)")
            }
            XCTAssertNil(text.range(of: #"import [^;]*from '(https?:)?//"#, options: .regularExpression), "a module from elsewhere in \(name)")
        }
    }

    func testMeAnswersTheVerifiedTokensSubjectRoleAndNode() throws {
        let tree = try AdminFixture.tree()
        let partner = try XCTUnwrap(AdminFixture.respond(
            AdminFixture.request("GET", "/admin/v1/me", token: try AdminFixture.token("partner-admin", node: "p1", subject: "jane@p1.test")), tree: tree
        ))
        XCTAssertEqual(partner.status, 200)
        XCTAssertEqual(partner.json?["subject"], .string("jane@p1.test"))
        XCTAssertEqual(partner.json?["role"], .string("partner-admin"))
        XCTAssertEqual(partner.json?["node"], .string("p1"))
        XCTAssertEqual(partner.json?["path"], .string("acme/p1"))
        XCTAssertEqual(partner.json?["kind"], .string("partner"))
        let platform = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/me", token: try AdminFixture.token("platform-admin", node: nil)), tree: tree))
        XCTAssertEqual(platform.json?["role"], .string("platform-admin"))
        XCTAssertEqual(platform.json?["node"], .null)
        // A token that does not verify, or none, learns nothing.
        XCTAssertEqual(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/me", token: nil), tree: tree)?.status, 401)
        XCTAssertEqual(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/me", token: try AdminFixture.token("partner-admin", node: "acme")), tree: tree)?.status, 401)
        XCTAssertEqual(AdminFixture.respond(AdminFixture.request("POST", "/admin/v1/me", token: nil), tree: tree)?.status, 405)
    }
}

/// docs/console.md shows a picture of every screen, taken by the browser tests.
final class ConsoleGuideTests: XCTestCase {
    func testEveryPictureTheGuideShowsIsInTheRepository() throws {
        let root = AdminDocumentationTests.packageRoot
        let guide = try AdminDocumentationTests.text("docs/console.md")
        let pictures = guide.components(separatedBy: "](console/").dropFirst().compactMap { $0.split(separator: ")").first.map(String.init) }
        XCTAssertGreaterThanOrEqual(pictures.count, 10)
        for picture in pictures {
            let data = try Data(contentsOf: root.appendingPathComponent("docs/console/\(picture)"))
            XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "\(picture) is a PNG")
            XCTAssertLessThan(data.count, 200_000, "\(picture) stays small")
        }
    }
}
