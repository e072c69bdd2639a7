import XCTest
@testable import Hierarchy

/// One test per rule of DESIGN.md's "Policy inheritance" table, plus the snapshot's lookups and
/// the route table.
final class InheritanceTests: XCTestCase {
    // MARK: - Features and packages

    func testCustomerFeaturesArePackageAndAddOnsWithinWhatPartnerAndOEMAllow() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: { $0.features = ["ledger", "invoicing", "inventory", "reports", "payroll"] },  // no crm
            partner: { $0.features = ["ledger", "invoicing", "reports", "payroll"] },  // no inventory
            customer: {
                $0.package = "professional"  // ledger, invoicing, inventory, reports
                $0.addOns = ["payroll", "crm"]
            }
        ))

        XCTAssertEqual(snapshot.featureNames(of: "contoso"), ["ledger", "invoicing", "reports", "payroll"])
        XCTAssertEqual(snapshot.featureNames(of: "northwind"), ["ledger", "invoicing", "reports", "payroll"])
        XCTAssertEqual(snapshot.featureNames(of: "acme"), ["ledger", "invoicing", "inventory", "reports", "payroll"])
        XCTAssertEqual(snapshot.policy(of: "contoso")?.package, "professional")
        XCTAssertEqual(snapshot.policy(of: "contoso")?.addOns, ["payroll", "crm"])
    }

    func testNodesThatDeclareNoFeaturesInheritTheirParents() throws {
        let snapshot = try compile(Fixtures.chain(customer: { $0.package = "enterprise" }))

        XCTAssertEqual(snapshot.featureNames(of: "acme"), Fixtures.features)
        XCTAssertEqual(snapshot.featureNames(of: "northwind"), Fixtures.features)
        XCTAssertEqual(snapshot.featureNames(of: "contoso"), Fixtures.features)
    }

    func testAnOEMsOwnPackageIsOfferedToTheCustomersBelowIt() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: {
                $0.features = ["ledger", "invoicing", "crm"]
                $0.packages = [PackageSource(name: "acme-sales", features: ["ledger", "crm"])]
            },
            customer: { $0.package = "acme-sales" }
        ))

        XCTAssertEqual(snapshot.featureNames(of: "contoso"), ["ledger", "crm"])
    }

    func testAnOEMsPackageIsNotVisibleUnderAnotherOEM() {
        let source = Fixtures.chain(
            oem: { $0.packages = [PackageSource(name: "acme-sales", features: ["ledger", "crm"])] },
            adding: [
                Fixtures.oem("globex"),
                Fixtures.partner("initech", under: "globex"),
                Fixtures.customer("hooli", under: "initech", package: "acme-sales"),
            ]
        )

        assertOnlyIssue(source, node: "globex/initech/hooli", field: "package", message: "unknown package 'acme-sales'")
    }

    // MARK: - Limits

    /// The data plane copies a customer's policy for every request: a copy is one reference to
    /// the compiled values, which every copy shares, and copies still compare by those values.
    func testAPolicyCopiesAsOneReferenceAndComparesByItsValues() throws {
        XCTAssertEqual(MemoryLayout<EffectivePolicy>.size, MemoryLayout<AnyObject>.size)
        let tree = Fixtures.chain(customer: { $0.limits = Limits(ratePerSecond: 50) })
        let first = try XCTUnwrap(try compile(tree).policy(of: "contoso"))
        let again = try XCTUnwrap(try compile(tree).policy(of: "contoso"))
        XCTAssertEqual(first, again, "compiled twice: other storage, the same values")
        let other = try XCTUnwrap(try compile(Fixtures.chain(customer: { $0.limits = Limits(ratePerSecond: 51) })).policy(of: "contoso"))
        XCTAssertNotEqual(first, other)
    }

    func testACustomersQuotaPathListsCustomerThenPartnerThenOEM() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: { $0.limits = Limits(ratePerSecond: 1000, perMonth: 10_000_000) },
            partner: { $0.limits = Limits(ratePerSecond: 500, burst: 800) },
            customer: { $0.limits = Limits(ratePerSecond: 50, concurrency: 20) }
        ))

        let levels = try XCTUnwrap(snapshot.policy(of: "contoso")?.limits)
        XCTAssertEqual(levels.map(\.node.rawValue), ["contoso", "northwind", "acme"])
        XCTAssertEqual(levels.map(\.kind), [.customer, .partner, .oem])
        XCTAssertEqual(levels.map(\.limits), [
            Limits(ratePerSecond: 50, concurrency: 20),
            Limits(ratePerSecond: 500, burst: 800),
            Limits(ratePerSecond: 1000, perMonth: 10_000_000),
        ])
        // A partner's own budget covers its whole subtree and comes first in its own policy.
        XCTAssertEqual(snapshot.policy(of: "northwind")?.limits.first?.limits, Limits(ratePerSecond: 500, burst: 800))
    }

    func testLevelsWithoutLimitsAreLeftOutOfTheQuotaPath() throws {
        let onlyOEM = try compile(Fixtures.chain(oem: { $0.limits = Limits(perDay: 100_000) }))
        XCTAssertEqual(onlyOEM.policy(of: "contoso")?.limits.map(\.node.rawValue), ["acme"])

        let none = try compile(Fixtures.chain())
        XCTAssertEqual(none.policy(of: "contoso")?.limits, [])

        // An empty `Limits()` sets nothing, so it adds no level either.
        let empty = try compile(Fixtures.chain(partner: { $0.limits = Limits() }))
        XCTAssertEqual(empty.policy(of: "contoso")?.limits, [])
    }

    func testACustomerWithoutLimitsTakesTheNearestAncestorsCustomerDefaults() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: {
                $0.limits = Limits(ratePerSecond: 1000)
                $0.customerDefaults = Limits(ratePerSecond: 20)
            },
            partner: { $0.customerDefaults = Limits(ratePerSecond: 10, perDay: 5000) },
            adding: [
                Fixtures.partner("fabrikam", under: "acme"),
                Fixtures.customer("tailspin", under: "fabrikam"),
                Fixtures.customer("litware", under: "northwind") { $0.limits = Limits(ratePerSecond: 15) },
            ]
        ))

        // The partner's defaults are nearer than the OEM's.
        let contoso = try XCTUnwrap(snapshot.policy(of: "contoso")?.limits)
        XCTAssertEqual(contoso.map(\.node.rawValue), ["contoso", "acme"])
        XCTAssertEqual(contoso.first?.limits, Limits(ratePerSecond: 10, perDay: 5000))
        XCTAssertEqual(contoso.first?.kind, .customer)
        // A partner without defaults passes the OEM's on.
        XCTAssertEqual(snapshot.policy(of: "tailspin")?.limits.first?.limits, Limits(ratePerSecond: 20))
        XCTAssertEqual(snapshot.policy(of: "tailspin")?.limits.first?.node.rawValue, "tailspin")
        // A customer's own limits replace the defaults entirely.
        XCTAssertEqual(snapshot.policy(of: "litware")?.limits.first?.limits, Limits(ratePerSecond: 15))
    }

    func testACustomerWithEmptyLimitsTakesTheDefaultsLikeOneWithout() throws {
        let snapshot = try compile(Fixtures.chain(
            partner: { $0.customerDefaults = Limits(perDay: 5000) },
            customer: { $0.limits = Limits() }
        ))

        XCTAssertEqual(snapshot.policy(of: "contoso")?.limits, [LevelLimits(node: try NodeID("contoso"), kind: .customer, limits: Limits(perDay: 5000))])
    }

    // MARK: - Placement

    func testTheNearestPlacementWinsAndAPinnedCellIsUsedAsIs() throws {
        let snapshot = try compile(Fixtures.chain(
            partner: { $0.placement = PlacementSource(cell: "us-pool-1") },
            adding: [
                Fixtures.customer("litware", under: "northwind") { $0.placement = PlacementSource(cell: "eu-dedicated-1") },
                Fixtures.partner("fabrikam", under: "acme"),
                Fixtures.customer("tailspin", under: "fabrikam") { $0.placement = Fixtures.usPool },
            ]
        ))

        XCTAssertEqual(snapshot.policy(of: "contoso")?.cell, "us-pool-1")  // the partner's pin
        XCTAssertEqual(snapshot.policy(of: "litware")?.cell, "eu-dedicated-1")  // its own pin
        XCTAssertEqual(snapshot.policy(of: "tailspin")?.cell, "us-pool-1")  // its own tier and region
        XCTAssertNil(snapshot.policy(of: "acme")?.cell)
        XCTAssertNil(snapshot.policy(of: "northwind")?.cell)
    }

    func testTierAndRegionPickAPooledCellOfThatRegionTheSameWayEveryTime() throws {
        let ids = (1...20).map { "customer-\($0)" }
        let source = Fixtures.tree(
            [Fixtures.oem("acme"), Fixtures.partner("northwind", under: "acme")]
                + ids.map { Fixtures.customer($0, under: "northwind") }
        )
        let first = try compile(source)
        let cells = ids.map { first.policy(of: $0)?.cell }

        for cell in cells { XCTAssertTrue(["eu-pool-1", "eu-pool-2"].contains(cell), "\(cell ?? "nil") is not a pooled eu cell") }
        XCTAssertEqual(Set(cells).count, 2, "customers are spread over the region's pooled cells")
        // The same on every compile, and independent of the other customers and of declaration order.
        let again = try compile(source)
        XCTAssertEqual(ids.map { again.policy(of: $0)?.cell }, cells)
        var reordered = source
        reordered.nodes = Array(source.nodes.prefix(2)) + Array(source.nodes.dropFirst(2).reversed().dropFirst(5))
        let fewer = try compile(reordered)
        XCTAssertEqual(fewer.nodeCount, 2 + 15)
        for (id, cell) in zip(ids, cells) where fewer.policy(of: id) != nil {
            XCTAssertEqual(fewer.policy(of: id)?.cell, cell, id)
        }
    }

    // MARK: - Residency

    func testResidencyIsTheIntersectionDownThePath() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: { $0.residency = ["eu", "us", "ap"] },
            partner: { $0.residency = ["eu", "us"] },
            customer: { $0.residency = ["eu"] },
            adding: [Fixtures.customer("litware", under: "northwind")]
        ))

        XCTAssertEqual(snapshot.policy(of: "acme")?.residency, ["eu", "us", "ap"])
        XCTAssertEqual(snapshot.policy(of: "northwind")?.residency, ["eu", "us"])
        XCTAssertEqual(snapshot.policy(of: "contoso")?.residency, ["eu"])
        XCTAssertEqual(snapshot.policy(of: "litware")?.residency, ["eu", "us"])  // inherited unchanged
    }

    func testNoResidencyAnywhereMeansUnrestricted() throws {
        let snapshot = try compile(Fixtures.chain())

        XCTAssertNil(snapshot.policy(of: "acme")?.residency)
        XCTAssertNil(snapshot.policy(of: "contoso")?.residency)
    }

    func testResidencyDeclaredBelowAnUnrestrictedParentIsTakenAsIs() throws {
        let snapshot = try compile(Fixtures.chain(customer: { $0.residency = ["eu"] }))

        XCTAssertNil(snapshot.policy(of: "northwind")?.residency)
        XCTAssertEqual(snapshot.policy(of: "contoso")?.residency, ["eu"])
    }

    // MARK: - Branding

    func testBrandingIsInheritedFieldByFieldAndTheNearestValueWins() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: {
                $0.branding = BrandingSource(values: [
                    .displayName: "Acme ERP", .primaryColor: "#112233", .supportEmail: "help@acme.example",
                ])
            },
            partner: { $0.branding = BrandingSource(values: [.displayName: "Northwind Books"]) },
            customer: { $0.branding = BrandingSource(values: [.primaryColor: "#abcdef"]) }
        ))

        XCTAssertEqual(snapshot.policy(of: "contoso")?.branding.values, [
            .displayName: "Northwind Books", .primaryColor: "#abcdef", .supportEmail: "help@acme.example",
        ])
        XCTAssertEqual(snapshot.policy(of: "northwind")?.branding.values, [
            .displayName: "Northwind Books", .primaryColor: "#112233", .supportEmail: "help@acme.example",
        ])
    }

    func testALockedFieldKeepsTheLockingAncestorsValueEverywhereBelow() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: {
                $0.branding = BrandingSource(
                    values: [.termsUrl: "https://acme.example/terms", .privacyUrl: "https://acme.example/privacy"],
                    locked: [.termsUrl]
                )
            },
            // A lock without a value locks the inherited one; the locking node may set its own.
            partner: {
                $0.branding = BrandingSource(values: [.supportUrl: "https://northwind.example/help"], locked: [.privacyUrl, .supportUrl])
            },
            customer: { $0.branding = BrandingSource(values: [.displayName: "Contoso"]) }
        ))

        let contoso = try XCTUnwrap(snapshot.policy(of: "contoso")?.branding.values)
        XCTAssertEqual(contoso[.termsUrl], "https://acme.example/terms")
        XCTAssertEqual(contoso[.privacyUrl], "https://acme.example/privacy")
        XCTAssertEqual(contoso[.supportUrl], "https://northwind.example/help")
        XCTAssertEqual(contoso[.displayName], "Contoso")
    }

    // MARK: - Status

    func testSuspendingAPartnerSuspendsItsWholeSubtreeOnly() throws {
        let snapshot = try compile(Fixtures.chain(
            partner: { $0.status = .suspended },
            adding: [
                Fixtures.customer("litware", under: "northwind") { $0.status = .active },
                Fixtures.partner("fabrikam", under: "acme"),
                Fixtures.customer("tailspin", under: "fabrikam"),
            ]
        ))

        for id in ["northwind", "contoso", "litware"] {
            XCTAssertEqual(snapshot.policy(of: id)?.status, .suspended, id)
            XCTAssertEqual(snapshot.policy(of: id)?.suspendedBy?.rawValue, "northwind", id)
        }
        for id in ["acme", "fabrikam", "tailspin"] {
            XCTAssertEqual(snapshot.policy(of: id)?.status, .active, id)
            XCTAssertNil(snapshot.policy(of: id)?.suspendedBy, id)
        }
    }

    func testSuspendedByNamesTheHighestSuspendedAncestor() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: { $0.status = .suspended },
            partner: { $0.status = .suspended },
            customer: { $0.status = .suspended }
        ))

        for id in ["acme", "northwind", "contoso"] {
            XCTAssertEqual(snapshot.policy(of: id)?.suspendedBy?.rawValue, "acme", id)
        }
    }

    func testASuspendedCustomerIsSuspendedByItself() throws {
        let snapshot = try compile(Fixtures.chain(customer: { $0.status = .suspended }))

        XCTAssertEqual(snapshot.policy(of: "contoso")?.status, .suspended)
        XCTAssertEqual(snapshot.policy(of: "contoso")?.suspendedBy?.rawValue, "contoso")
        XCTAssertEqual(snapshot.policy(of: "northwind")?.status, .active)
    }

    // MARK: - Origins

    func testOriginsNarrowDownThePathAndAreInheritedWhenNotDeclared() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: { $0.origins = ["https://app.acme.example", "https://admin.acme.example", "http://localhost:3000"] },
            partner: { $0.origins = ["https://app.acme.example", "http://localhost:3000"] },
            customer: { $0.origins = ["https://app.acme.example"] },
            adding: [Fixtures.customer("litware", under: "northwind")]
        ))

        XCTAssertEqual(snapshot.policy(of: "northwind")?.origins, ["https://app.acme.example", "http://localhost:3000"])
        XCTAssertEqual(snapshot.policy(of: "contoso")?.origins, ["https://app.acme.example"])
        XCTAssertEqual(snapshot.policy(of: "litware")?.origins, ["https://app.acme.example", "http://localhost:3000"])
    }

    func testNoOriginsAtTheTopMeansNoneBelow() throws {
        let snapshot = try compile(Fixtures.chain())

        XCTAssertEqual(snapshot.policy(of: "contoso")?.origins, [])
    }

    // MARK: - Lookups

    func testAnIssuerLeadsToTheNodeItIsRegisteredOn() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: { $0.issuers = ["https://id.acme.example"] },
            partner: { $0.issuers = ["https://login.northwind.example", "northwind-legacy"] }
        ))

        XCTAssertEqual(snapshot.node(forIssuer: "https://id.acme.example")?.path.description, "acme")
        XCTAssertEqual(snapshot.node(forIssuer: "https://login.northwind.example")?.path.description, "acme/northwind")
        XCTAssertEqual(snapshot.node(forIssuer: "northwind-legacy")?.path.description, "acme/northwind")
        XCTAssertNil(snapshot.node(forIssuer: "https://id.globex.example"))
    }

    func testAPortalDomainLeadsToTheNodeThatClaimedIt() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: { $0.portalDomains = ["erp.acme.example"] },
            partner: { $0.portalDomains = ["books.northwind.example", "erp.northwind.example"] },
            customer: { $0.portalDomains = ["contoso.erp.example"] }
        ))

        XCTAssertEqual(snapshot.node(forPortalDomain: "erp.acme.example")?.path.description, "acme")
        XCTAssertEqual(snapshot.node(forPortalDomain: "erp.northwind.example")?.path.description, "acme/northwind")
        XCTAssertEqual(snapshot.node(forPortalDomain: "contoso.erp.example")?.path.description, "acme/northwind/contoso")
        XCTAssertEqual(snapshot.policy(of: "northwind")?.portalDomains, ["books.northwind.example", "erp.northwind.example"])
        XCTAssertNil(snapshot.node(forPortalDomain: "unknown.example"))
    }

    func testCustomerLookupFindsCustomersOnly() throws {
        let snapshot = try compile(Fixtures.chain())

        XCTAssertEqual(snapshot.customer(try NodeID("contoso"))?.path.description, "acme/northwind/contoso")
        XCTAssertNil(snapshot.customer(try NodeID("northwind")))
        XCTAssertNil(snapshot.customer(try NodeID("acme")))
        XCTAssertNil(snapshot.customer(try NodeID("nobody")))
        XCTAssertNotNil(snapshot.policy(try NodeID("northwind")))
        XCTAssertEqual(snapshot.nodeCount, 3)
        XCTAssertEqual(snapshot.nodeIDs.map(\.rawValue), ["acme", "contoso", "northwind"])
    }

    func testCustomerLookupInALargeTreeFindsEveryCustomerWithItsPath() throws {
        var nodes = [Fixtures.oem("acme")]
        for partner in 0..<10 {
            nodes.append(Fixtures.partner("partner-\(partner)", under: "acme"))
            for customer in 0..<100 { nodes.append(Fixtures.customer("customer-\(partner)-\(customer)", under: "partner-\(partner)")) }
        }
        let snapshot = try compile(Fixtures.tree(nodes))

        XCTAssertEqual(snapshot.nodeCount, 1011)
        for partner in 0..<10 {
            for customer in 0..<100 {
                XCTAssertEqual(
                    snapshot.customer(try NodeID("customer-\(partner)-\(customer)"))?.path.description,
                    "acme/partner-\(partner)/customer-\(partner)-\(customer)"
                )
            }
        }
    }

    // MARK: - Branding JSON and ETag

    func testBrandingJSONListsSetFieldsInAFixedOrderAndEscapesValues() throws {
        let snapshot = try compile(Fixtures.chain(
            oem: { $0.branding = BrandingSource(values: [.supportEmail: "help@acme.example", .primaryColor: "#112233"]) },
            customer: { $0.branding = BrandingSource(values: [.displayName: #"Contoso "Pharma" \ Co"#]) }
        ))

        XCTAssertEqual(
            snapshot.policy(of: "contoso")?.branding.json,
            ##"{"displayName":"Contoso \"Pharma\" \\ Co","primaryColor":"#112233","supportEmail":"help@acme.example"}"##
        )
        XCTAssertEqual(snapshot.policy(of: "acme")?.branding.json, ##"{"primaryColor":"#112233","supportEmail":"help@acme.example"}"##)
    }

    func testBrandingETagChangesExactlyWhenAValueChanges() throws {
        func etags(_ displayName: String) throws -> (oem: String?, partner: String?, customer: String?) {
            let snapshot = try compile(Fixtures.chain(
                oem: { $0.branding = BrandingSource(values: [.primaryColor: "#112233"]) },
                partner: { $0.branding = BrandingSource(values: [.displayName: displayName]) }
            ))
            return (snapshot.policy(of: "acme")?.branding.etag, snapshot.policy(of: "northwind")?.branding.etag, snapshot.policy(of: "contoso")?.branding.etag)
        }
        let first = try etags("Northwind")
        let again = try etags("Northwind")
        let changed = try etags("Northwind Books")

        XCTAssertEqual(first.partner, again.partner, "the same values give the same ETag on every compile")
        XCTAssertEqual(first.partner, first.customer, "same values, same ETag, whichever node they belong to")
        XCTAssertNotEqual(first.partner, changed.partner)
        XCTAssertNotEqual(first.customer, changed.customer)
        XCTAssertEqual(first.oem, changed.oem, "a node whose values did not change keeps its ETag")
        XCTAssertNotEqual(first.oem, first.partner)
        let etag = try XCTUnwrap(first.partner)
        XCTAssertTrue(etag.hasPrefix("\"") && etag.hasSuffix("\"") && etag.count == 18, "a quoted 64-bit hex validator: \(etag)")
    }

    // MARK: - Routes

    func testARoutePrefixMatchesOnlyAtASegmentBoundary() throws {
        let routes = try compile(Fixtures.chain()).catalog.routes

        XCTAssertEqual(routes.match(method: "GET", path: "/v1/ledger")?.pathPrefix, "/v1/ledger")
        XCTAssertEqual(routes.match(method: "GET", path: "/v1/ledger/7")?.pathPrefix, "/v1/ledger")
        XCTAssertNil(routes.match(method: "GET", path: "/v1/ledgers"))
        XCTAssertNil(routes.match(method: "GET", path: "/v1/ledge"))
    }

    func testAMethodSpecificRouteBeatsAnAnyMethodRouteForTheSamePrefix() throws {
        let routes = try compile(Fixtures.chain()).catalog.routes

        let post = try XCTUnwrap(routes.match(method: "POST", path: "/v1/ledger/7"))
        XCTAssertEqual(post.method, "POST")
        XCTAssertEqual(post.cost, 5)
        let get = try XCTUnwrap(routes.match(method: "GET", path: "/v1/ledger/7"))
        XCTAssertNil(get.method)
        XCTAssertEqual(get.cost, 1)
        XCTAssertEqual(get.feature, "ledger")
        XCTAssertEqual(get.featureIndex, Fixtures.features.firstIndex(of: "ledger"))
    }

    func testTheLongestMatchingPrefixWins() throws {
        let routes = try compile(Fixtures.chain()).catalog.routes

        // Longer beats shorter even when the shorter one names the method.
        let report = try XCTUnwrap(routes.match(method: "POST", path: "/v1/ledger/reports/q1"))
        XCTAssertEqual(report.pathPrefix, "/v1/ledger/reports")
        XCTAssertEqual(report.feature, "reports")
        XCTAssertEqual(routes.match(method: "GET", path: "/v1/ledger/reportsx")?.pathPrefix, "/v1/ledger")
    }

    func testNoMatchingRouteGivesNil() throws {
        let routes = try compile(Fixtures.chain()).catalog.routes

        XCTAssertNil(routes.match(method: "GET", path: "/v2/ledger"))
        XCTAssertNil(routes.match(method: "DELETE", path: "/v1/payroll"))  // only GET is routed
        XCTAssertNil(routes.match(method: "GET", path: "/"))
        XCTAssertEqual(routes.match(method: "GET", path: "/v1/payroll/2024")?.cost, 2)
        XCTAssertEqual(routes.all.count, Fixtures.routes.count)
    }
}
