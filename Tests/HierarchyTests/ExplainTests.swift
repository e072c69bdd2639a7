import XCTest
@testable import Hierarchy

/// `snapshot.explain(id, attribute:)`: for each attribute, the value, the node that decided it,
/// and what every node on the path declared and had in effect.
final class ExplainTests: XCTestCase {
    private func explain(_ source: TreeSource, _ attribute: String, of id: String = "contoso") throws -> Explanation {
        try compile(source).explain(try NodeID(id), attribute: attribute)
    }

    // MARK: - Status

    func testStatusOfAnActiveCustomer() throws {
        let explanation = try explain(Fixtures.chain(), "status")

        XCTAssertEqual(explanation.value, "active")
        XCTAssertNil(explanation.decidedBy)
        XCTAssertEqual(explanation.steps.map(\.declared), [nil, nil, nil])
        XCTAssertEqual(explanation.steps.map(\.effective), ["active", "active", "active"])
        XCTAssertTrue(explanation.summary.contains("no node on the path is suspended"), explanation.summary)
    }

    func testStatusNamesTheSuspendedAncestor() throws {
        let explanation = try explain(Fixtures.chain(partner: { $0.status = .suspended }), "status")

        XCTAssertEqual(explanation.value, "suspended")
        XCTAssertEqual(explanation.decidedBy?.description, Fixtures.partnerPath)
        XCTAssertEqual(explanation.steps.map(\.declared), [nil, "suspended", nil])
        XCTAssertEqual(explanation.steps.map(\.effective), ["active", "suspended", "suspended"])
        XCTAssertTrue(explanation.summary.contains("because acme/northwind is suspended"), explanation.summary)
    }

    // MARK: - Partner issuer self-service

    func testPartnerIssuerSelfServiceIsTheOEMsForItsWholeSubtree() throws {
        let off = try explain(Fixtures.chain(), "partnerIssuerSelfService", of: "northwind")
        XCTAssertEqual(off.value, "off")
        XCTAssertNil(off.decidedBy)

        let source = Fixtures.chain(oem: { $0.partnerIssuerSelfService = true }, adding: [Fixtures.oem("globex")])
        let on = try explain(source, "partnerIssuerSelfService", of: "northwind")
        XCTAssertEqual(on.value, "on")
        XCTAssertEqual(on.decidedBy?.description, Fixtures.oemPath)
        XCTAssertEqual(on.steps.map(\.declared), ["on", nil])
        XCTAssertEqual(on.steps.map(\.effective), ["on", "on"])
        let snapshot = try compile(source)
        XCTAssertEqual(snapshot.policy(of: "contoso")?.partnerIssuerSelfService, true)
        XCTAssertEqual(snapshot.policy(of: "globex")?.partnerIssuerSelfService, false, "another OEM's setting is its own")
    }

    // MARK: - Features

    func testFeaturesListWhatEachNodeAllowedAndTheCustomersPackage() throws {
        let explanation = try explain(
            Fixtures.chain(oem: { $0.features = ["ledger", "invoicing", "reports"] }, customer: {
                $0.package = "professional"
                $0.addOns = ["crm"]
            }),
            "features"
        )

        XCTAssertEqual(explanation.subject.description, Fixtures.customerPath)
        XCTAssertEqual(explanation.value, "ledger, invoicing, reports")
        XCTAssertEqual(explanation.decidedBy?.description, Fixtures.customerPath)
        XCTAssertEqual(explanation.steps.map(\.node.description), [Fixtures.oemPath, Fixtures.partnerPath, Fixtures.customerPath])
        XCTAssertEqual(explanation.steps.map(\.declared), ["allowed: ledger, invoicing, reports", nil, "package: professional; add-ons: crm"])
        XCTAssertEqual(explanation.steps.map(\.effective), ["ledger, invoicing, reports", "ledger, invoicing, reports", "ledger, invoicing, reports"])
    }

    func testAFeatureThatIsOn() throws {
        let explanation = try explain(Fixtures.chain(customer: { $0.addOns = ["crm"] }), "feature.crm")

        XCTAssertEqual(explanation.value, "on")
        XCTAssertEqual(explanation.decidedBy?.description, Fixtures.customerPath)
        XCTAssertEqual(explanation.steps.map(\.declared), [nil, nil, "add-on crm"])
        XCTAssertEqual(explanation.steps.map(\.effective), ["on", "on", "on"])
        XCTAssertTrue(explanation.summary.contains("'crm' is enabled"), explanation.summary)
    }

    func testAFeatureTheOEMDisallowsIsDecidedByTheOEM() throws {
        let explanation = try explain(
            Fixtures.chain(oem: { $0.features = ["ledger", "invoicing"] }, customer: { $0.package = "enterprise" }),
            "feature.payroll"
        )

        XCTAssertEqual(explanation.value, "off")
        XCTAssertEqual(explanation.decidedBy?.description, Fixtures.oemPath)
        XCTAssertEqual(explanation.steps.map(\.declared), ["does not allow payroll", nil, "package enterprise"])
        XCTAssertEqual(explanation.steps.map(\.effective), ["off", "off", "off"])
        XCTAssertEqual(explanation.summary, "'payroll' is off because acme does not allow it.")
    }

    func testAFeatureThePartnerDisallowsIsDecidedByThePartner() throws {
        let explanation = try explain(
            Fixtures.chain(partner: { $0.features = ["ledger", "invoicing", "reports"] }, customer: { $0.package = "enterprise" }),
            "feature.payroll"
        )

        XCTAssertEqual(explanation.value, "off")
        XCTAssertEqual(explanation.decidedBy?.description, Fixtures.partnerPath)
        XCTAssertEqual(explanation.steps.map(\.effective), ["on", "off", "off"])
        XCTAssertEqual(explanation.summary, "'payroll' is off because acme/northwind does not allow it.")
    }

    func testAFeatureOutsideThePackageIsDecidedByTheCustomer() throws {
        let explanation = try explain(Fixtures.chain(), "feature.reports")  // starter: ledger, invoicing

        XCTAssertEqual(explanation.value, "off")
        XCTAssertEqual(explanation.decidedBy?.description, Fixtures.customerPath)
        XCTAssertEqual(explanation.steps.map(\.declared), [nil, nil, "package starter"])
        XCTAssertEqual(explanation.steps.map(\.effective), ["on", "on", "off"])
        XCTAssertTrue(explanation.summary.contains("neither the customer's package nor its add-ons include it"), explanation.summary)
    }

    // MARK: - Limits, placement, residency, origins

    func testLimitsListEveryChargedLevel() throws {
        let explanation = try explain(
            Fixtures.chain(
                oem: { $0.limits = Limits(ratePerSecond: 1000, perDay: 1_000_000) },
                partner: { $0.customerDefaults = Limits(ratePerSecond: 10, burst: 20) }
            ),
            "limits"
        )

        XCTAssertEqual(explanation.value, "contoso: rate 10, burst 20; acme: rate 1000, perDay 1000000")
        XCTAssertEqual(explanation.decidedBy?.description, Fixtures.partnerPath)
        XCTAssertEqual(explanation.steps.map(\.declared), ["limits rate 1000, perDay 1000000", "customerDefaults rate 10, burst 20", nil])
        XCTAssertEqual(explanation.steps.map(\.effective), ["rate 1000, perDay 1000000", "no own budget", "rate 10, burst 20"])
    }

    func testLimitsWithNothingDeclaredAreUnlimited() throws {
        let explanation = try explain(Fixtures.chain(), "limits")

        XCTAssertEqual(explanation.value, "unlimited")
        XCTAssertNil(explanation.decidedBy)
    }

    func testPlacementNamesTheCellAndWhoPlacedIt() throws {
        let inherited = try explain(Fixtures.chain(oem: { $0.placement = PlacementSource(cell: "us-pool-1") }), "placement")
        XCTAssertEqual(inherited.value, "cell us-pool-1 (pooled, us)")
        XCTAssertEqual(inherited.decidedBy?.description, Fixtures.oemPath)
        XCTAssertEqual(inherited.steps.map(\.declared), ["cell us-pool-1", nil, nil])
        XCTAssertEqual(inherited.steps.map(\.effective), ["-", "-", "us-pool-1"])

        let own = try explain(Fixtures.chain(customer: { $0.placement = PlacementSource(cell: "eu-dedicated-1") }), "placement")
        XCTAssertEqual(own.value, "cell eu-dedicated-1 (dedicated, eu)")
        XCTAssertEqual(own.decidedBy?.description, Fixtures.customerPath)
        XCTAssertEqual(own.steps.map(\.declared), ["tier pooled, region eu", nil, "cell eu-dedicated-1"])
    }

    func testPlacementListsTheFallbacksTheResidencyAllows() throws {
        var source = Fixtures.chain(oem: { $0.residency = ["eu"] }, customer: { $0.placement = PlacementSource(cell: "eu-pool-1") })
        source.cells = source.cells.map { cell in
            var cell = cell
            if cell.id == "eu-pool-1" { cell.fallback = ["us-pool-1", "eu-pool-2"] }
            return cell
        }
        let explanation = try explain(source, "placement")
        XCTAssertTrue(explanation.summary.contains("Fallback cells when none of eu-pool-1's endpoints can serve: eu-pool-2 (eu)."), explanation.summary)
        XCTAssertTrue(explanation.summary.contains("Skipped, outside the residency: us-pool-1 (us)."), explanation.summary)

        let withoutFallback = try explain(Fixtures.chain(), "placement")
        XCTAssertFalse(withoutFallback.summary.contains("Fallback"))
    }

    func testResidencyNamesTheNarrowestDeclaration() throws {
        let narrowed = try explain(
            Fixtures.chain(oem: { $0.residency = ["us", "eu"] }, partner: { $0.residency = ["eu"] }),
            "residency"
        )
        XCTAssertEqual(narrowed.value, "eu")
        XCTAssertEqual(narrowed.decidedBy?.description, Fixtures.partnerPath)
        XCTAssertEqual(narrowed.steps.map(\.declared), ["us, eu", "eu", nil])
        XCTAssertEqual(narrowed.steps.map(\.effective), ["eu, us", "eu", "eu"])

        let unrestricted = try explain(Fixtures.chain(), "residency")
        XCTAssertEqual(unrestricted.value, "unrestricted")
        XCTAssertNil(unrestricted.decidedBy)
    }

    func testOriginsNameTheNarrowestDeclaration() throws {
        let explanation = try explain(
            Fixtures.chain(
                oem: { $0.origins = ["https://app.acme.example", "https://admin.acme.example"] },
                customer: { $0.origins = ["https://app.acme.example"] }
            ),
            "origins"
        )

        XCTAssertEqual(explanation.value, "https://app.acme.example")
        XCTAssertEqual(explanation.decidedBy?.description, Fixtures.customerPath)
        XCTAssertEqual(explanation.steps.map(\.effective), ["https://app.acme.example, https://admin.acme.example", "https://app.acme.example, https://admin.acme.example", "https://app.acme.example"])
        XCTAssertEqual(try explain(Fixtures.chain(), "origins").value, "none")
    }

    // MARK: - Branding

    func testABrandingFieldIsDecidedByTheNearestValue() throws {
        let explanation = try explain(
            Fixtures.chain(
                oem: { $0.branding = BrandingSource(values: [.displayName: "Acme ERP"]) },
                partner: { $0.branding = BrandingSource(values: [.displayName: "Northwind Books"]) }
            ),
            "branding.displayName"
        )

        XCTAssertEqual(explanation.value, "Northwind Books")
        XCTAssertEqual(explanation.decidedBy?.description, Fixtures.partnerPath)
        XCTAssertEqual(explanation.steps.map(\.declared), ["Acme ERP", "Northwind Books", nil])
        XCTAssertEqual(explanation.summary, "The nearest value on the path wins.")
    }

    func testALockedBrandingFieldIsDecidedAtOrAboveTheLock() throws {
        // The partner locks the value it inherited from the OEM.
        let explanation = try explain(
            Fixtures.chain(
                oem: { $0.branding = BrandingSource(values: [.termsUrl: "https://acme.example/terms"]) },
                partner: { $0.branding = BrandingSource(locked: [.termsUrl]) }
            ),
            "branding.termsUrl"
        )

        XCTAssertEqual(explanation.value, "https://acme.example/terms")
        XCTAssertEqual(explanation.decidedBy?.description, Fixtures.oemPath)
        XCTAssertEqual(explanation.steps.map(\.declared), ["https://acme.example/terms", "(no value) [locked]", nil])
        XCTAssertEqual(explanation.steps.map(\.effective), Array(repeating: "https://acme.example/terms", count: 3))
        XCTAssertEqual(explanation.summary, "Locked at acme/northwind: nodes below cannot change it.")
    }

    func testAnUnsetBrandingFieldIsDecidedByNobody() throws {
        let explanation = try explain(Fixtures.chain(), "branding.logoUrl")

        XCTAssertEqual(explanation.value, "(unset)")
        XCTAssertNil(explanation.decidedBy)
        XCTAssertEqual(explanation.steps.map(\.effective), ["(unset)", "(unset)", "(unset)"])
    }

    // MARK: - Masking

    func testMaskingListsEveryRuleThatReachesTheNodeAndWhoseItIs() throws {
        var catalog = Fixtures.catalog
        catalog.routes[4].masking = [MaskingRuleSource(fields: ["/employees/*/salary", "iban"], roles: ["viewer"])]
        let source = Fixtures.chain(
            oem: { $0.masking = [MaskingRuleSource(route: "/v1/payroll", fields: ["ssn"], roles: ["auditor"], nonJSON: .pass)] },
            customer: { $0.masking = [MaskingRuleSource(route: "/v1/invoices", fields: ["iban"])] },
            adding: [Fixtures.customer("fabrikam", under: "northwind")]
        ).with(catalog: catalog)

        let explanation = try explain(source, "masking")
        XCTAssertEqual(explanation.value, "3 rules on 2 routes")
        XCTAssertEqual(explanation.decidedBy?.description, Fixtures.customerPath)
        XCTAssertEqual(explanation.steps.map(\.declared), ["/v1/payroll: ssn", nil, "/v1/invoices: iban"])
        XCTAssertEqual(explanation.steps.map(\.effective), ["2 rules on 1 route", "2 rules on 1 route", "3 rules on 2 routes"])
        XCTAssertEqual(explanation.masks, [
            Explanation.Mask(route: "/v1/invoices", fields: ["iban"], roles: nil, passesNonJSON: false, declaredBy: try NodePath(parsing: Fixtures.customerPath)),
            Explanation.Mask(route: "GET /v1/payroll", fields: ["/employees/*/salary", "iban"], roles: ["viewer"], passesNonJSON: false, declaredBy: nil),
            Explanation.Mask(route: "GET /v1/payroll", fields: ["ssn"], roles: ["auditor"], passesNonJSON: true, declaredBy: try NodePath(parsing: Fixtures.oemPath)),
        ])
        let text = explanation.text
        XCTAssertTrue(text.contains("  masks GET /v1/payroll: /employees/*/salary, iban for viewer and support sessions, from the catalog route\n"), text)
        XCTAssertTrue(text.contains("  masks GET /v1/payroll: ssn for auditor and support sessions (non-JSON passes, except to support sessions), from acme\n"), text)
        XCTAssertTrue(text.contains("  masks /v1/invoices: iban for every caller, from acme/northwind/contoso\n"), text)

        // The sibling gets the catalog's and the OEM's, not contoso's.
        let sibling = try explain(source, "masking", of: "fabrikam")
        XCTAssertEqual(sibling.masks.map(\.declaredBy?.description), [nil, Fixtures.oemPath])
        XCTAssertEqual(sibling.decidedBy?.description, Fixtures.oemPath)

        let none = try explain(Fixtures.chain(), "masking")
        XCTAssertEqual(none.value, "none")
        XCTAssertNil(none.decidedBy)
        XCTAssertEqual(none.masks, [])
    }

    // MARK: - Support access

    func testSupportAccessNamesTheNodeThatSetTheCapAndTheNarrowedApprovers() throws {
        let source = Fixtures.chain(
            oem: { $0.supportAccess = SupportAccessSource(maxDuration: 4 * 3600, approvers: [.customer, .partner]) },
            partner: { $0.supportAccess = SupportAccessSource(maxDuration: 90 * 60) }
        )
        let explanation = try explain(source, "supportAccess")
        XCTAssertEqual(explanation.value, "maxDuration 90m (set by acme/northwind); approvers customer, partner and platform admins")
        XCTAssertEqual(explanation.decidedBy?.description, Fixtures.partnerPath)
        XCTAssertEqual(explanation.steps.map(\.declared), ["maxDuration 4h; approvers customer, partner", "maxDuration 90m", nil])
        XCTAssertEqual(explanation.steps.map(\.effective), [
            "maxDuration 4h (set by acme); approvers customer, partner and platform admins",
            "maxDuration 90m (set by acme/northwind); approvers customer, partner and platform admins",
            "maxDuration 90m (set by acme/northwind); approvers customer, partner and platform admins",
        ])

        let open = try explain(Fixtures.chain(), "supportAccess")
        XCTAssertEqual(open.value, "maxDuration from the settings; approvers customer, partner, oem and platform admins")
        XCTAssertNil(open.decidedBy)
    }

    // MARK: - Errors

    func testUnknownAttributesFeaturesFieldsAndNodesThrow() throws {
        let snapshot = try compile(Fixtures.chain())
        let cases: [(id: String, attribute: String, message: String)] = [
            ("contoso", "colour", "unknown attribute 'colour'; one of: status, features, feature.<name>"),
            ("contoso", "feature.teleport", "no feature 'teleport' in the catalog"),
            ("contoso", "branding.font", "no branding field 'font'"),
            ("nobody", "status", "no node 'nobody'"),
        ]
        for (id, attribute, message) in cases {
            do {
                let explanation = try snapshot.explain(try NodeID(id), attribute: attribute)
                XCTFail("\(id) \(attribute) explained as \(explanation.value)")
            } catch let error as ExplainError {
                XCTAssertTrue(error.description.contains(message), "'\(error.description)' does not contain '\(message)'")
            }
        }
    }

    // MARK: - Text

    func testTheTextShowsTheValueEveryStepTheDeciderAndTheSummary() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: {
                $0.features = ["ledger", "invoicing", "reports"]
                $0.branding = BrandingSource(values: [.displayName: "Acme ERP"], locked: [.displayName])
                $0.limits = Limits(ratePerSecond: 100)
            },
            partner: { $0.status = .suspended }
        ))
        let attributes = TenantSnapshot.explainableAttributes.map { $0 == "feature.<name>" ? "feature.reports" : $0 }

        for attribute in attributes {
            for id in ["acme", "northwind", "contoso"] {
                let explanation = try snapshot.explain(try NodeID(id), attribute: attribute)
                let text = explanation.text
                XCTAssertTrue(text.hasPrefix("\(attribute) for \(explanation.subject): \(explanation.value)\n"), text)
                XCTAssertEqual(explanation.steps.count, explanation.subject.depth, "\(id) \(attribute)")
                for step in explanation.steps {
                    XCTAssertTrue(text.contains("  \(step.node): declared \(step.declared ?? "(nothing: inherits)") → \(step.effective)\n"), text)
                }
                XCTAssertTrue(text.contains("  decided by: \(explanation.decidedBy?.description ?? "platform default")\n"), text)
                XCTAssertTrue(text.hasSuffix("  \(explanation.summary)"), text)
            }
        }
    }
}
