import XCTest
@testable import Hierarchy

/// Module dependencies (`requires` in the catalog): the graph is checked once (unknown names,
/// cycles), and no node may have a feature without everything it requires — whether a package,
/// an add-on or an ancestor's narrowing would leave it so.
final class RequirementTests: XCTestCase {
    /// The fixture catalog with dependencies: payroll and inventory need the ledger, reports
    /// need inventory (and so the ledger); and a package without the ledger.
    static func catalog(requires: [String: [String]] = ["payroll": ["ledger"], "inventory": ["ledger"], "reports": ["inventory"]]) -> CatalogSource {
        var catalog = Fixtures.catalog
        catalog.requires = requires
        catalog.packages.append(PackageSource(name: "crm-only", features: ["crm"]))
        return catalog
    }

    static func chain(oem: Fixtures.Edit = { _ in }, partner: Fixtures.Edit = { _ in }, customer: Fixtures.Edit = { _ in }) -> TreeSource {
        Fixtures.chain(oem: oem, partner: partner, customer: customer).with(catalog: Self.catalog())
    }

    // MARK: - The graph

    func testTheClosureIsTransitiveAndTheChainShortest() throws {
        let snapshot = try compile(Self.chain())
        let catalog = snapshot.catalog
        let reports = try XCTUnwrap(catalog.index(of: "reports"))
        let ledger = try XCTUnwrap(catalog.index(of: "ledger"))
        XCTAssertEqual(catalog.requirements.requirements(of: reports).map { catalog.features[$0] }, ["ledger", "inventory"])
        XCTAssertEqual(catalog.requirements.directRequirements(of: reports).map { catalog.features[$0] }, ["inventory"])
        XCTAssertEqual(catalog.requirements.chain(from: reports, to: ledger)?.map { catalog.features[$0] }, ["reports", "inventory", "ledger"])
        XCTAssertNil(catalog.requirements.chain(from: ledger, to: reports))
        XCTAssertTrue(catalog.requirements.isSatisfied(by: catalog.set(["ledger", "inventory", "reports"])))
        XCTAssertFalse(catalog.requirements.isSatisfied(by: catalog.set(["inventory", "reports"])))
        XCTAssertTrue(catalog.requirements.isSatisfied(by: catalog.set(["crm", "invoicing"])))
    }

    func testAnUnknownRequiredFeatureIsReportedAtItsRequires() {
        let source = Fixtures.chain().with(catalog: Self.catalog(requires: ["payroll": ["ledger", "hr"]]))

        assertOnlyIssue(source, node: "catalog", field: "features[4].requires", message: "unknown feature 'hr'")
    }

    func testACycleInRequiresIsReportedOnce() {
        let source = Fixtures.chain().with(catalog: Self.catalog(requires: ["ledger": ["reports"], "reports": ["inventory"], "inventory": ["ledger"]]))

        assertOnlyIssue(source, node: "catalog", field: "features[0].requires", message: "requirements form a cycle: ledger → reports → inventory → ledger")
    }

    func testAFeatureRequiringItselfIsReported() {
        let source = Fixtures.chain().with(catalog: Self.catalog(requires: ["crm": ["crm"]]))

        assertOnlyIssue(source, node: "catalog", field: "features[5].requires", message: "'crm' cannot require itself")
    }

    // MARK: - Packages and add-ons

    func testAPlatformPackageWithoutARequirementIsReportedOnThePackage() {
        var catalog = Self.catalog()
        catalog.packages.append(PackageSource(name: "payroll-only", features: ["invoicing", "payroll"]))

        assertOnlyIssue(
            Fixtures.chain().with(catalog: catalog), node: "catalog", field: "packages.payroll-only",
            message: "'payroll' requires 'ledger', which the package does not include"
        )
    }

    func testAnOEMPackageWithoutATransitiveRequirementIsReportedOnTheOEM() {
        let source = Self.chain(oem: { $0.packages = [PackageSource(name: "acme-stock", features: ["ledger", "reports"])] })

        assertOnlyIssue(
            source, node: Fixtures.oemPath, field: "packages.acme-stock",
            message: "'reports' requires 'inventory', which the package does not include"
        )
        let deeper = Self.chain(oem: { $0.packages = [PackageSource(name: "acme-reports", features: ["reports"])] })
        assertIssue(
            deeper, node: Fixtures.oemPath, field: "packages.acme-reports",
            message: "'reports' requires 'ledger' (reports → inventory → ledger), which the package does not include"
        )
    }

    func testAnAddOnWithoutItsRequirementIsRefused() {
        let source = Self.chain(customer: {
            $0.package = "crm-only"
            $0.addOns = ["payroll"]
        })

        assertOnlyIssue(
            source, node: Fixtures.customerPath, field: "addOns",
            message: "add-on 'payroll' requires 'ledger', which neither the package 'crm-only' nor the add-ons include"
        )
    }

    func testAnAddOnMissingARequirementTransitivelyNamesTheChain() {
        let found = issues(of: Self.chain(customer: {
            $0.package = "crm-only"
            $0.addOns = ["reports"]
        }))

        XCTAssertEqual(Set(found.map(\.description)), [
            "\(Fixtures.customerPath) addOns: add-on 'reports' requires 'inventory', which neither the package 'crm-only' nor the add-ons include",
            "\(Fixtures.customerPath) addOns: add-on 'reports' requires 'ledger' (reports → inventory → ledger), which neither the package 'crm-only' nor the add-ons include",
        ])
    }

    func testAMissingRequirementIsToldOnceByTheFeatureNearestToIt() {
        assertOnlyIssue(
            Self.chain(customer: {
                $0.package = "crm-only"
                $0.addOns = ["reports", "inventory"]
            }),
            node: Fixtures.customerPath, field: "addOns",
            message: "add-on 'inventory' requires 'ledger', which neither the package 'crm-only' nor the add-ons include"
        )
    }

    func testAnAddOnWhoseRequirementThePackageHoldsCompiles() throws {
        let snapshot = try compile(Self.chain(customer: { $0.addOns = ["payroll"] }))

        XCTAssertEqual(snapshot.featureNames(of: "contoso"), ["ledger", "invoicing", "payroll"])
    }

    // MARK: - Narrowing by an ancestor

    func testAPartnerThatTakesARequirementAwayIsReportedAndSoIsTheCustomerNamingIt() throws {
        let found = issues(of: Self.chain(partner: { $0.features = ["invoicing", "payroll", "crm"] }, customer: { $0.package = "enterprise" }))

        XCTAssertEqual(found.map(\.description), [
            "\(Fixtures.partnerPath) features: 'payroll' requires 'ledger', which the features offered here do not include",
            "\(Fixtures.customerPath) package: 'payroll' requires 'ledger', which \(Fixtures.partnerPath) does not offer",
        ])
        // Both nodes are references, so an administrator who may not see one is told without it.
        XCTAssertEqual(found.last?.subject, .path(try NodePath(parsing: Fixtures.customerPath)))
        XCTAssertEqual(found.last?.text.nodes, [.path(try NodePath(parsing: Fixtures.partnerPath))])
    }

    func testTheCustomerNamesTheHighestAncestorThatTookTheRequirementAway() {
        let found = issues(of: Self.chain(oem: { $0.features = ["invoicing", "payroll", "crm"] }, customer: { $0.package = "enterprise" }))

        XCTAssertTrue(found.contains { $0.node == Fixtures.oemPath && $0.field == "features" }, found.map(\.description).joined(separator: "\n"))
        XCTAssertTrue(found.contains { $0.description == "\(Fixtures.customerPath) package: 'payroll' requires 'ledger', which \(Fixtures.oemPath) does not offer" }, found.map(\.description).joined(separator: "\n"))
        XCTAssertFalse(found.contains { $0.node == Fixtures.partnerPath }, "the partner only inherits the OEM's mistake")
    }

    func testARequirementTakenAwayTogetherWithItsDependentIsPlainNarrowing() throws {
        let snapshot = try compile(Self.chain(partner: { $0.features = ["invoicing", "crm"] }, customer: { $0.package = "enterprise" }))

        XCTAssertEqual(snapshot.featureNames(of: "contoso"), ["invoicing", "crm"])
    }

    func testACatalogWithoutRequirementsKeepsEveryTreeAsItWas() throws {
        let snapshot = try compile(Fixtures.chain(partner: { $0.features = ["payroll"] }, customer: { $0.package = "enterprise" }))

        XCTAssertEqual(snapshot.featureNames(of: "contoso"), ["payroll"])
        XCTAssertTrue(snapshot.catalog.requirements.isEmpty)
    }

    // MARK: - Incremental compile

    func testAnIncrementalChangeIsCheckedAgainstRequirementsLikeAFullCompile() throws {
        let source = Self.chain(customer: { $0.package = "enterprise" })
        let previous = try compile(source)
        var partner = source.nodes[1]
        partner.features = ["invoicing", "payroll", "crm"]
        var next = source
        next.nodes[1] = partner

        let full = issues(of: next).map(\.description)
        do {
            _ = try TreeCompiler.compile(next, reusing: previous, changed: [partner], removed: [])
            XCTFail("the incremental compile accepted a partner that takes the ledger from payroll")
        } catch {
            XCTAssertEqual(error.issues.map(\.description), full)
            XCTAssertTrue(error.issues.contains { $0.node == Fixtures.customerPath && $0.field == "package" })
        }

        var customer = source.nodes[2]
        customer.package = "crm-only"
        customer.addOns = ["payroll"]
        next = source
        next.nodes[2] = customer
        XCTAssertNil(Compilation.incremental(source: next, previous: previous, changed: [customer], removed: []))
        XCTAssertThrowsError(try TreeCompiler.compile(next, reusing: previous, changed: [customer], removed: []))

        customer.addOns = ["ledger", "payroll"]
        next.nodes[2] = customer
        let accepted = try TreeCompiler.compile(next, reusing: previous, changed: [customer], removed: [])
        XCTAssertEqual(accepted.featureNames(of: "contoso"), ["ledger", "payroll", "crm"])
    }

    // MARK: - Explain

    func testExplainListsEachRequirementAndWhereTheCustomerGetsIt() throws {
        let snapshot = try compile(Self.chain(customer: {
            $0.package = "crm-only"
            $0.addOns = ["ledger", "inventory", "reports"]
        }))
        let explanation = try snapshot.explain(try NodeID("contoso"), attribute: "feature.reports")

        XCTAssertEqual(explanation.value, "on")
        XCTAssertEqual(explanation.requirements.map(\.feature), ["ledger", "inventory"])
        XCTAssertEqual(explanation.requirements.map(\.chain), [["reports", "inventory", "ledger"], ["reports", "inventory"]])
        XCTAssertEqual(explanation.requirements.map(\.enabled), [true, true])
        XCTAssertEqual(explanation.requirements.map(\.source), ["add-on", "add-on"])
        XCTAssertTrue(explanation.text.contains("requires ledger (reports → inventory → ledger): on, add-on"), explanation.text)
        XCTAssertTrue(explanation.summary.contains("It requires 'ledger', 'inventory', which are on as well."), explanation.summary)

        let fromPackage = try compile(Self.chain(customer: { $0.package = "professional" })).explain(try NodeID("contoso"), attribute: "feature.reports")
        XCTAssertEqual(fromPackage.requirements.map(\.source), ["package professional", "package professional"])
    }

    func testExplainSaysWhichRequirementIsMissingAndWhoWithholdsIt() throws {
        let snapshot = try compile(Self.chain(partner: { $0.features = ["invoicing", "crm"] }, customer: { $0.package = "enterprise" }))
        let explanation = try snapshot.explain(try NodeID("contoso"), attribute: "feature.payroll")

        XCTAssertEqual(explanation.value, "off")
        XCTAssertEqual(explanation.requirements.count, 1)
        XCTAssertEqual(explanation.requirements.first?.feature, "ledger")
        XCTAssertEqual(explanation.requirements.first?.enabled, false)
        XCTAssertEqual(explanation.requirements.first?.source, "not offered by \(Fixtures.partnerPath)")
        XCTAssertEqual(explanation.requirements.first?.withheldBy?.description, Fixtures.partnerPath)
        XCTAssertTrue(explanation.summary.contains("'payroll' is off because \(Fixtures.partnerPath) does not allow it."), explanation.summary)
        XCTAssertTrue(explanation.summary.contains("It also requires 'ledger', which is missing here ('ledger' not offered by \(Fixtures.partnerPath))"), explanation.summary)
    }

    func testExplainOfAnOfferingNodeNamesWhoOffersTheRequirement() throws {
        let snapshot = try compile(Self.chain(oem: { $0.features = ["ledger", "payroll", "crm"] }))
        let explanation = try snapshot.explain(try NodeID("northwind"), attribute: "feature.payroll")

        XCTAssertEqual(explanation.requirements.map(\.source), ["offered by \(Fixtures.oemPath)"])
        XCTAssertTrue(try snapshot.explain(try NodeID("contoso"), attribute: "feature.crm").requirements.isEmpty)
    }
}
