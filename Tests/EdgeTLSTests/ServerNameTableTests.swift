import EdgeTLS
import XCTest

/// The name rule as values: which claimant answers which server name.
final class ServerNameTableTests: XCTestCase {
    private typealias Table = ServerNameTable<String>

    private func table(files: [(String, [String])], uploaded: [(String, [String])] = []) -> Table {
        Table(
            fallback: "default",
            files: files.map { .init(names: $0.1, value: $0.0) },
            uploaded: uploaded.map { .init(names: $0.1, value: $0.0) }
        )
    }

    func testTwoPartnersAndTheDefault() {
        let table = self.table(files: [
            ("default", ["gateway.example"]),
            ("northwind", ["erp.northwind.example"]),
            ("fabrikam", ["erp.fabrikam.example", "portal.fabrikam.example"]),
        ])
        XCTAssertEqual(table.lookup("erp.northwind.example"), "northwind")
        XCTAssertEqual(table.lookup("erp.fabrikam.example"), "fabrikam")
        XCTAssertEqual(table.lookup("portal.fabrikam.example"), "fabrikam")
        XCTAssertEqual(table.lookup("gateway.example"), "default")
        XCTAssertEqual(table.lookup("unknown.example"), "default", "an unknown name gets the default")
        XCTAssertEqual(table.lookup(nil), "default", "no SNI gets the default")
        XCTAssertEqual(table.lookup(""), "default")
    }

    func testNamesAreComparedWithoutCaseAndWithoutTheTrailingDot() {
        let table = self.table(files: [("default", []), ("northwind", ["ERP.Northwind.example"])])
        XCTAssertEqual(table.lookup("erp.NORTHWIND.example."), "northwind")
    }

    func testAWildcardCoversOneLabelOnly() {
        let table = self.table(files: [("default", []), ("acme", ["*.acme.example"])])
        XCTAssertEqual(table.lookup("erp.acme.example"), "acme")
        XCTAssertEqual(table.lookup("acme.example"), "default", "not the apex")
        XCTAssertEqual(table.lookup("a.b.acme.example"), "default", "not two labels")
        XCTAssertEqual(table.lookup(".acme.example"), "default", "not an empty label")
    }

    func testWildcardsThatCoverNothing() {
        let table = self.table(files: [("default", []), ("bad", ["*.example", "f*.acme.example", "*.*.acme.example", "erp*.acme.example"])])
        XCTAssertEqual(table.lookup("acme.example"), "default", "*.example is a one-label wildcard")
        XCTAssertEqual(table.lookup("foo.acme.example"), "default")
        XCTAssertEqual(table.lookup("a.b.acme.example"), "default")
        XCTAssertEqual(table.lookup("erp*.acme.example"), "default", "a name with '*' is never exact")
        XCTAssertEqual(table.names, [])
    }

    func testAnExactNameWinsOverAWildcard() {
        let table = self.table(files: [("default", []), ("wildcard", ["*.acme.example"]), ("exact", ["erp.acme.example"])])
        XCTAssertEqual(table.lookup("erp.acme.example"), "exact")
        XCTAssertEqual(table.lookup("shop.acme.example"), "wildcard")
    }

    func testTheFirstFileWinsAName() {
        let table = self.table(files: [("default", ["erp.acme.example"]), ("second", ["erp.acme.example", "*.acme.example"]), ("third", ["*.acme.example"])])
        XCTAssertEqual(table.lookup("erp.acme.example"), "default")
        XCTAssertEqual(table.lookup("shop.acme.example"), "second")
    }

    func testAnUploadWinsOverAFilesWildcardAndLosesToAFilesExactName() {
        let table = self.table(
            files: [("default", []), ("operator-wildcard", ["*.erp-cloud.example"]), ("operator-exact", ["app.erp-cloud.example"])],
            uploaded: [("partner-portal", ["stark.erp-cloud.example"]), ("partner-clash", ["app.erp-cloud.example"])]
        )
        XCTAssertEqual(table.lookup("stark.erp-cloud.example"), "partner-portal", "a partner's own portal domain under the operator's wildcard")
        XCTAssertEqual(table.lookup("app.erp-cloud.example"), "operator-exact", "a configured exact name is the operator's")
        XCTAssertEqual(table.lookup("other.erp-cloud.example"), "operator-wildcard")
    }

    func testAFilesWildcardWinsOverAnUploadedWildcard() {
        let table = self.table(files: [("default", []), ("file", ["*.acme.example"])], uploaded: [("upload", ["*.acme.example", "*.other.example"])])
        XCTAssertEqual(table.lookup("erp.acme.example"), "file")
        XCTAssertEqual(table.lookup("erp.other.example"), "upload")
    }

    func testTheNamesItAnswersFor() {
        let table = self.table(files: [("default", ["Gateway.example"]), ("acme", ["*.acme.example"])], uploaded: [("p", ["erp.p.example"])])
        XCTAssertEqual(table.names, ["gateway.example", "*.acme.example", "erp.p.example"])
    }
}
