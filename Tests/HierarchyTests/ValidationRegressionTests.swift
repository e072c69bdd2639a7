import XCTest
@testable import Hierarchy

/// Mistakes once accepted or misreported by the compiler, each pinned down.
final class ValidationRegressionTests: XCTestCase {
    func testPlainHTTPOriginsOnlyForTheMachineItself() {
        for origin in ["http://localhost.evil.example", "http://localhostevil.example", "http://127.0.0.1.nip.io"] {
            self.assertOnlyIssue(
                Fixtures.chain(oem: { $0.origins = [origin] }), node: "acme", field: "origins",
                message: "must be an https:// origin (http:// only for localhost)"
            )
        }
        XCTAssertNoThrow(try TreeCompiler.compile(Fixtures.chain(oem: { $0.origins = ["http://localhost:3000", "http://127.0.0.1"] })))
    }

    func testChildrenOfAnInvalidOrDuplicatedIdAreNotReportedAgain() {
        let invalid = Fixtures.tree([Fixtures.oem("Acme"), Fixtures.partner("northwind", under: "Acme"), Fixtures.customer("contoso", under: "northwind")])
        self.assertOnlyIssue(invalid, node: "Acme", field: "id", message: "invalid id")

        let duplicated = Fixtures.tree([
            Fixtures.oem("acme"), Fixtures.oem("globex"),
            Fixtures.partner("northwind", under: "acme"), Fixtures.partner("northwind", under: "globex"),
            Fixtures.customer("contoso", under: "northwind"),
        ])
        self.assertOnlyIssue(duplicated, node: "northwind", field: "id", message: "is used by another node")
    }

    func testALimitOnTheSameNodeIsNamedByItsPath() {
        self.assertOnlyIssue(
            Fixtures.chain(partner: { $0.limits = Limits(ratePerSecond: 100); $0.customerDefaults = Limits(ratePerSecond: 150) }),
            node: "acme/northwind", field: "customerDefaults.rate", message: "150 is above the 100 of acme/northwind"
        )
    }

    func testABurstCannotExceedTheParentsRateWhenTheParentSetNoBurst() {
        self.assertOnlyIssue(
            Fixtures.chain(partner: { $0.limits = Limits(ratePerSecond: 100) }, customer: { $0.limits = Limits(ratePerSecond: 50, burst: 500) }),
            node: "acme/northwind/contoso", field: "limits.burst", message: "500 is above the 100 of acme/northwind"
        )
    }

    func testInheritedCustomerDefaultsMustFitANarrowerBudget() {
        self.assertOnlyIssue(
            Fixtures.chain(
                oem: { $0.limits = Limits(ratePerSecond: 1000); $0.customerDefaults = Limits(ratePerSecond: 500) },
                partner: { $0.limits = Limits(ratePerSecond: 100) }
            ),
            node: "acme/northwind", field: "customerDefaults.rate", message: "inherited customer defaults"
        )
    }

    func testAnUnknownRegionIsReportedOnce() {
        self.assertOnlyIssue(
            Fixtures.chain(partner: { $0.placement = PlacementSource(tier: .pooled, region: "mars") }),
            node: "acme/northwind", field: "placement.region", message: "no cell is in region 'mars'"
        )
    }

    func testBrandingURLsMayNotHideTheirHostBehindUserInformation() {
        for (url, message) in [
            ("https://support.acme.example:443@evil.example/reset", "user information"),
            ("https://acme.example:notaport/x", "invalid port"),
        ] {
            self.assertOnlyIssue(
                Fixtures.chain(oem: { $0.branding = BrandingSource(values: [.supportUrl: url]) }), node: "acme", field: "branding.supportUrl",
                message: message
            )
        }
    }

    func testARateAboveOnePerMicrosecondIsRefused() {
        self.assertOnlyIssue(
            Fixtures.chain(oem: { $0.limits = Limits(ratePerSecond: 10_000_000) }),
            node: "acme", field: "limits.rate", message: "at most 1000000 per second"
        )
    }

    func testAnOrphansOwnErrorsAreListedWithItsUnknownParentInOneRun() {
        // A partner whose parent is misspelt, with an http:// logo; below it a customer with a bad
        // colour; elsewhere an unrelated mistake. Every one is reported at once, by node and field.
        let source = Fixtures.tree([
            Fixtures.oem("acme") { $0.branding = BrandingSource(values: [.supportEmail: "not-an-address"]) },
            Fixtures.partner("northwind", under: "acmee") {
                $0.branding = BrandingSource(values: [.logoUrl: "http://cdn.northwind.example/logo.svg"])
                $0.limits = Limits(ratePerSecond: 0)
                $0.portalDomains = ["Portal.Northwind.example"]
            },
            Fixtures.customer("contoso", under: "northwind") { $0.branding = BrandingSource(values: [.primaryColor: "blue"]) },
            Fixtures.partner("loop", under: "loop") { $0.origins = ["ftp://loop.example"] },
        ])
        let found = self.issues(of: source).map { "\($0.node) \($0.field)" }
        XCTAssertEqual(Set(found), [
            "acme branding.supportEmail",
            "northwind parent", "northwind branding.logoUrl", "northwind limits.rate", "northwind portalDomains",
            "contoso branding.primaryColor",
            "loop parent", "loop origins",
        ])
        XCTAssertEqual(found.count, 8, "each mistake once: \(found)")
    }

    func testAnOrphanIsNotBlamedForWhatOnlyItsAncestorsCouldGiveIt() {
        // An orphan customer inherits no placement and no OEM package: neither is reported.
        let source = Fixtures.tree([
            Fixtures.oem("acme") { $0.packages = [PackageSource(name: "acme-basic", features: ["ledger"])] },
            Fixtures.customer("contoso", under: "nobody", package: "acme-basic") { $0.limits = Limits(ratePerSecond: 5) },
        ])
        self.assertOnlyIssue(source, node: "contoso", field: "parent", message: "unknown parent 'nobody'")
    }

    func testAnIssueRefersToOtherNodesByReferenceAndQuotesValuesAsWritten() throws {
        // `sg` is an OEM; the domain and the package contain its id as text, which stays text.
        let source = Fixtures.tree([
            Fixtures.oem("sg") { $0.portalDomains = ["portal.sg-one.test"] },
            Fixtures.oem("acme"),
            Fixtures.partner("northwind", under: "acme") { $0.portalDomains = ["portal.sg-one.test"] },
            Fixtures.customer("contoso", under: "northwind", package: "msgs"),
        ])
        let issues = self.issues(of: source)
        let domain = try XCTUnwrap(issues.first { $0.field == "portalDomains" })
        XCTAssertEqual(domain.subject, .path(try NodePath(parsing: "acme/northwind")))
        XCTAssertEqual(domain.counterpart, .path(NodePath(oem: try NodeID("sg"))))
        XCTAssertEqual(domain.text.nodes, [.path(NodePath(oem: try NodeID("sg")))])
        XCTAssertEqual(domain.message, "'portal.sg-one.test' is already the portal domain of sg")
        XCTAssertEqual(domain.text.rendered { _ in "another node" }, "'portal.sg-one.test' is already the portal domain of another node")
        let package = try XCTUnwrap(issues.first { $0.field == "package" })
        XCTAssertEqual(package.text.nodes, [])
        XCTAssertEqual(package.text.rendered { _ in "another node" }, "unknown package 'msgs'")
        // The compiler's other references to nodes are typed too: a lock, a limit's owner.
        let locked = self.issues(of: Fixtures.chain(
            oem: { $0.branding = BrandingSource(values: [.termsUrl: "https://acme.example/terms"], locked: [.termsUrl]); $0.limits = Limits(ratePerSecond: 10) },
            partner: { $0.branding = BrandingSource(values: [.termsUrl: "https://northwind.example/terms"]); $0.limits = Limits(ratePerSecond: 20) }
        ))
        XCTAssertEqual(locked.map(\.text.nodes), [[.path(NodePath(oem: try NodeID("acme")))], [.path(NodePath(oem: try NodeID("acme")))]])
    }
}
