import XCTest
@testable import Hierarchy

/// One test per reason a tree is rejected. Each starts from a valid tree, makes one mistake, and
/// checks where it is reported (node path or id, field) and what the message says; most also
/// check that the mistake is reported once, without follow-up noise.
final class ValidationTests: XCTestCase {
    // MARK: - Structure

    func testAnUnknownParentIsReportedByIDAndItsSubtreeIsLeftOut() {
        let source = Fixtures.tree([
            Fixtures.oem("acme"),
            Fixtures.partner("northwind", under: "nobody"),
            Fixtures.customer("contoso", under: "northwind"),
        ])

        assertOnlyIssue(source, node: "northwind", field: "parent", message: "unknown parent 'nobody'")
    }

    func testTwoPartnersParentingEachOtherAreACycle() {
        let source = Fixtures.tree([
            Fixtures.oem("acme"),
            Fixtures.partner("p-one", under: "p-two"),
            Fixtures.partner("p-two", under: "p-one"),
            Fixtures.customer("contoso", under: "p-one"),
        ])

        assertOnlyIssue(source, node: "p-one", field: "parent", message: "parents form a cycle: p-one → p-two → p-one")
    }

    func testANodeThatIsItsOwnParentIsACycle() {
        let source = Fixtures.tree([Fixtures.oem("acme"), Fixtures.partner("loop", under: "loop")])

        assertOnlyIssue(source, node: "loop", field: "parent", message: "parents form a cycle: loop → loop")
    }

    func testAnIDUsedTwiceIsReported() {
        let source = Fixtures.chain(adding: [Fixtures.customer("contoso", under: "northwind")])

        assertOnlyIssue(source, node: "contoso", field: "id", message: "id 'contoso' is used by another node")
    }

    func testAnIDWithInvalidSyntaxIsReported() {
        assertOnlyIssue(
            Fixtures.chain(adding: [Fixtures.customer("Litware", under: "northwind")]),
            node: "Litware", field: "id", message: "invalid id: node id has the character 'L' at offset 0"
        )
        assertOnlyIssue(
            Fixtures.chain(adding: [Fixtures.customer("", under: "northwind")]),
            node: "(unnamed)", field: "id", message: "node id is empty"
        )
    }

    func testAnOEMWithAParentIsReported() {
        let source = Fixtures.tree([
            Fixtures.oem("globex"),
            Fixtures.oem("acme") { $0.parent = "globex" },
            Fixtures.partner("northwind", under: "acme"),
            Fixtures.customer("contoso", under: "northwind"),
        ])

        assertOnlyIssue(source, node: "acme", field: "parent", message: "an OEM is a root of the tree and has no parent")
    }

    func testAPartnerOrCustomerWithoutAParentIsReported() {
        assertOnlyIssue(
            Fixtures.chain(adding: [Fixtures.partner("fabrikam", under: "acme") { $0.parent = nil }]),
            node: "fabrikam", field: "parent", message: "a partner needs a parent (an OEM)"
        )
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.parent = nil }),
            node: "contoso", field: "parent", message: "a customer needs a parent (a partner)"
        )
    }

    func testAPartnerUnderAPartnerIsReported() {
        let source = Fixtures.chain(adding: [
            Fixtures.partner("sub", under: "northwind"),
            Fixtures.customer("litware", under: "sub"),
        ])

        assertOnlyIssue(source, node: "sub", field: "parent", message: "the parent of a partner must be an OEM, but 'northwind' is a partner")
    }

    func testACustomerUnderAnOEMIsReported() {
        let source = Fixtures.chain(adding: [Fixtures.customer("walk-in", under: "acme")])

        assertOnlyIssue(source, node: "walk-in", field: "parent", message: "the parent of a customer must be a partner, but 'acme' is an OEM")
    }

    // MARK: - Unknown names

    func testAnUnknownFeatureIsReported() {
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.features = ["ledger", "invoicing", "teleport"] }),
            node: "acme", field: "features", message: "unknown feature 'teleport'"
        )
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.addOns = ["teleport", "warp"] }),
            node: "acme/northwind/contoso", field: "addOns", message: "unknown features 'teleport', 'warp'"
        )
    }

    func testAnUnknownPackageIsReported() {
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.package = "platinum" }),
            node: "acme/northwind/contoso", field: "package", message: "unknown package 'platinum'"
        )
    }

    func testAnUnknownCellIsReportedWhereItIsPinnedOnly() {
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.placement = PlacementSource(cell: "mars-1") }, adding: [Fixtures.customer("litware", under: "northwind")]),
            node: "acme/northwind", field: "placement.cell", message: "unknown cell 'mars-1'"
        )
    }

    func testAnUnknownRegionIsReported() {
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.residency = ["eu", "mars"] }),
            node: "acme", field: "residency", message: "no cell is in region 'mars'"
        )
        assertIssue(
            Fixtures.chain(customer: { $0.placement = PlacementSource(tier: .pooled, region: "mars") }),
            node: "acme/northwind/contoso", field: "placement.region", message: "no cell is in region 'mars'"
        )
    }

    // MARK: - Features and packages

    func testAnOEMPackageBeyondWhatTheOEMMaySellIsReported() {
        let source = Fixtures.chain(oem: {
            $0.features = ["ledger", "invoicing"]
            $0.packages = [PackageSource(name: "acme-plus", features: ["ledger", "payroll"])]
        })

        assertOnlyIssue(
            source, node: "acme", field: "packages.acme-plus",
            message: "a package must be a subset of what the OEM may sell; not allowed: 'payroll'"
        )
    }

    func testAnOEMPackageReusingACatalogNameIsReported() {
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.packages = [PackageSource(name: "starter", features: ["ledger"])] }),
            node: "acme", field: "packages.starter", message: "package 'starter' is already defined"
        )
    }

    func testAPartnerWideningItsOEMsFeaturesIsReported() {
        let source = Fixtures.chain(
            oem: { $0.features = ["ledger", "invoicing"] },
            partner: { $0.features = ["ledger", "payroll", "crm"] }
        )

        assertOnlyIssue(
            source, node: "acme/northwind", field: "features",
            message: "may only narrow its parent's features; not allowed above: 'payroll', 'crm'"
        )
    }

    func testACustomerDeclaringFeaturesIsReported() {
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.features = ["ledger"] }),
            node: "acme/northwind/contoso", field: "features", message: "a customer's features come from its package and add-ons"
        )
    }

    // MARK: - Narrowing

    func testAChildWideningResidencyIsReported() {
        let source = Fixtures.chain(oem: { $0.residency = ["eu"] }, customer: { $0.residency = ["eu", "us"] })

        assertOnlyIssue(
            source, node: "acme/northwind/contoso", field: "residency",
            message: "may only narrow its parent's regions 'eu'; not allowed: 'us'"
        )
    }

    func testAChildWideningOriginsIsReported() {
        let source = Fixtures.chain(
            oem: { $0.origins = ["https://app.acme.example"] },
            partner: { $0.origins = ["https://app.acme.example", "https://books.northwind.example"] }
        )

        assertOnlyIssue(
            source, node: "acme/northwind", field: "origins",
            message: "may only narrow its parent's origins; not allowed: 'https://books.northwind.example'"
        )
    }

    func testOriginsBelowANodeWithoutAnyAreAWidening() {
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.origins = ["https://app.contoso.example"] }),
            node: "acme/northwind/contoso", field: "origins", message: "not allowed: 'https://app.contoso.example'"
        )
    }

    // MARK: - Limits

    func testALimitAboveTheParentsIsReported() {
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.limits = Limits(ratePerSecond: 100) }, partner: { $0.limits = Limits(ratePerSecond: 200) }),
            node: "acme/northwind", field: "limits.rate", message: "200 is above the 100 of acme"
        )
        // The nearest ancestor that sets the field is the ceiling, however far up it is.
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.limits = Limits(perDay: 1000) }, customer: { $0.limits = Limits(perDay: 2000) }),
            node: "acme/northwind/contoso", field: "limits.perDay", message: "2000 is above the 1000 of acme"
        )
    }

    func testCustomerDefaultsAboveTheNodesOwnLimitsAreReported() {
        assertOnlyIssue(
            Fixtures.chain(partner: {
                $0.limits = Limits(ratePerSecond: 100)
                $0.customerDefaults = Limits(ratePerSecond: 150)
            }),
            node: "acme/northwind", field: "customerDefaults.rate", message: "150 is above the 100 of"
        )
    }

    func testCustomerDefaultsOnACustomerAreReported() {
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.customerDefaults = Limits(ratePerSecond: 5) }),
            node: "acme/northwind/contoso", field: "customerDefaults", message: "customer defaults belong on an OEM or partner"
        )
    }

    func testABurstWithoutARateIsReported() {
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.limits = Limits(burst: 10) }),
            node: "acme/northwind/contoso", field: "limits.burst", message: "a burst needs a rate"
        )
    }

    func testALimitBelowOneIsReported() {
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.limits = Limits(concurrency: 0) }),
            node: "acme/northwind", field: "limits.concurrency", message: "must be at least 1"
        )
    }

    // MARK: - Placement

    func testADedicatedCellUsedByTwoCustomersIsReportedForTheSecond() {
        let dedicated = PlacementSource(cell: "eu-dedicated-1")
        let source = Fixtures.chain(
            customer: { $0.placement = dedicated },
            adding: [Fixtures.customer("litware", under: "northwind") { $0.placement = dedicated }]
        )

        assertOnlyIssue(
            source, node: "acme/northwind/litware", field: "placement",
            message: "dedicated cell 'eu-dedicated-1' serves exactly one customer, but is placed for acme/northwind/contoso, acme/northwind/litware"
        )
    }

    func testADedicatedCellPinnedOnAPartnerWithTwoCustomersIsReported() {
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.placement = PlacementSource(cell: "eu-dedicated-1") }, adding: [Fixtures.customer("litware", under: "northwind")]),
            node: "acme/northwind/litware", field: "placement", message: "dedicated cell 'eu-dedicated-1' serves exactly one customer"
        )
    }

    func testAPinnedCellOutsideTheNodesResidencyIsReported() {
        let source = Fixtures.chain(
            oem: {
                $0.residency = ["us"]
                $0.placement = Fixtures.usPool
            },
            customer: { $0.placement = PlacementSource(cell: "eu-pool-1") }
        )

        assertOnlyIssue(
            source, node: "acme/northwind/contoso", field: "placement.cell",
            message: "cell 'eu-pool-1' is in region 'eu', outside the allowed regions 'us'"
        )
    }

    func testAnInheritedRegionOutsideACustomersNarrowerResidencyIsReported() {
        let source = Fixtures.chain(oem: { $0.residency = ["eu", "us"] }, customer: { $0.residency = ["us"] })

        assertOnlyIssue(
            source, node: "acme/northwind/contoso", field: "placement",
            message: "inherits region 'eu' from acme, which is outside this customer's regions 'us'"
        )
    }

    func testAnInheritedCellOutsideACustomersNarrowerResidencyIsReported() {
        let source = Fixtures.chain(partner: { $0.placement = PlacementSource(cell: "eu-pool-1") }, customer: { $0.residency = ["us"] })

        assertOnlyIssue(
            source, node: "acme/northwind/contoso", field: "placement",
            message: "inherits cell 'eu-pool-1' from acme/northwind, which is outside this customer's regions 'us'"
        )
    }

    func testTheDedicatedTierWithoutAPinnedCellIsReported() {
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.placement = PlacementSource(tier: .dedicated, region: "eu") }),
            node: "acme/northwind/contoso", field: "placement", message: "the dedicated tier needs a pinned cell"
        )
    }

    func testARegionWithoutAPooledCellIsReported() {
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.placement = PlacementSource(tier: .pooled, region: "ap") }),
            node: "acme/northwind/contoso", field: "placement", message: "no pooled cell in region 'ap'"
        )
    }

    func testACustomerWithoutAnyPlacementIsReported() {
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.placement = nil }),
            node: "acme/northwind/contoso", field: "placement", message: "no placement: set a cell, or a tier and region"
        )
    }

    func testAPlacementWithBothACellAndATierIsReported() {
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.placement = PlacementSource(cell: "eu-pool-1", tier: .pooled, region: "eu") }),
            node: "acme/northwind/contoso", field: "placement", message: "pin a cell or name a tier and region, not both"
        )
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.placement = PlacementSource(tier: .pooled) }),
            node: "acme/northwind", field: "placement", message: "needs either a cell, or a tier and a region"
        )
    }

    // MARK: - Portal domains

    func testAPortalDomainClaimedTwiceIsReportedForTheSecondClaim() {
        let source = Fixtures.chain(
            partner: { $0.portalDomains = ["erp.northwind.example"] },
            customer: { $0.portalDomains = ["erp.northwind.example"] }
        )

        assertOnlyIssue(
            source, node: "acme/northwind/contoso", field: "portalDomains",
            message: "'erp.northwind.example' is already the portal domain of acme/northwind"
        )
    }

    func testABadPortalDomainIsReported() {
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.portalDomains = ["ERP.contoso.example"] }),
            node: "acme/northwind/contoso", field: "portalDomains", message: "'ERP.contoso.example' must be lowercase"
        )
        for bad in ["contoso", "erp.contoso.example:8443", "https://erp.contoso.example", "erp..contoso.example", "-erp.contoso.example"] {
            assertOnlyIssue(
                Fixtures.chain(customer: { $0.portalDomains = [bad] }),
                node: "acme/northwind/contoso", field: "portalDomains", message: "'\(bad)' is not a host name"
            )
        }
    }

    // MARK: - Branding

    func testOverridingALockedBrandingFieldBelowTheLockIsReported() {
        let source = Fixtures.chain(
            oem: { $0.branding = BrandingSource(values: [.displayName: "Acme ERP"], locked: [.displayName]) },
            customer: { $0.branding = BrandingSource(values: [.displayName: "Contoso"]) }
        )

        assertOnlyIssue(
            source, node: "acme/northwind/contoso", field: "branding.displayName",
            message: "is locked by acme and cannot be changed below it"
        )
    }

    func testAnHTTPBrandingURLIsReported() {
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.branding = BrandingSource(values: [.logoUrl: "http://cdn.northwind.example/logo.png"]) }),
            node: "acme/northwind", field: "branding.logoUrl", message: "must be an https:// URL"
        )
    }

    func testAJavaScriptBrandingURLIsReported() {
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.branding = BrandingSource(values: [.supportUrl: "javascript:alert(document.cookie)"]) }),
            node: "acme/northwind", field: "branding.supportUrl", message: "must be an https:// URL"
        )
    }

    func testABrandingURLWithQuotesOrWithoutAHostIsReported() {
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.branding = BrandingSource(values: [.termsUrl: #"https://northwind.example/"onload="x"#]) }),
            node: "acme/northwind", field: "branding.termsUrl", message: "must not contain spaces, quotes"
        )
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.branding = BrandingSource(values: [.privacyUrl: "https:///privacy"]) }),
            node: "acme/northwind", field: "branding.privacyUrl", message: "must name a valid host"
        )
    }

    func testANonHexColourIsReported() {
        for bad in ["red", "#12345g", "#1234", "112233"] {
            assertOnlyIssue(
                Fixtures.chain(customer: { $0.branding = BrandingSource(values: [.primaryColor: bad]) }),
                node: "acme/northwind/contoso", field: "branding.primaryColor", message: "must be a hex colour"
            )
        }
    }

    func testATooLongDisplayNameIsReported() {
        let source = Fixtures.chain(customer: { $0.branding = BrandingSource(values: [.displayName: String(repeating: "x", count: 81)]) })

        assertOnlyIssue(source, node: "acme/northwind/contoso", field: "branding.displayName", message: "must be 1 to 80 characters")
        XCTAssertNoThrow(try TreeCompiler.compile(
            Fixtures.chain(customer: { $0.branding = BrandingSource(values: [.displayName: String(repeating: "x", count: 80)]) })
        ))
    }

    func testADisplayNameWithAnAngleBracketIsReported() {
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.branding = BrandingSource(values: [.displayName: "Contoso <script>"]) }),
            node: "acme/northwind/contoso", field: "branding.displayName", message: "must not contain control characters or angle brackets"
        )
    }

    func testABadSupportEmailIsReported() {
        for bad in ["help", "help@localhost", "@contoso.example", "help desk@contoso.example", "a@b@contoso.example"] {
            assertOnlyIssue(
                Fixtures.chain(customer: { $0.branding = BrandingSource(values: [.supportEmail: bad]) }),
                node: "acme/northwind/contoso", field: "branding.supportEmail", message: "must be an e-mail address"
            )
        }
    }

    // MARK: - Origins

    func testAnHTTPOriginOtherThanLocalhostIsReported() {
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.origins = ["http://app.acme.example"] }),
            node: "acme", field: "origins", message: "must be an https:// origin (http:// only for localhost)"
        )
    }

    func testAnOriginWithAPathIsReported() {
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.origins = ["https://app.acme.example/embed"] }),
            node: "acme", field: "origins", message: "must be scheme://host[:port], lowercase, with no path"
        )
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.origins = ["https://app.acme.example:99999"] }),
            node: "acme", field: "origins", message: "has an invalid port"
        )
    }

    // MARK: - Issuers

    func testAnIssuerRegisteredTwiceIsReported() {
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.issuers = ["https://id.acme.example"] }, partner: { $0.issuers = ["https://id.acme.example"] }),
            node: "acme/northwind", field: "issuers", message: "issuer 'https://id.acme.example' is already registered on acme"
        )
    }

    func testAnIssuerOnACustomerIsReported() {
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.issuers = ["https://id.contoso.example", "other"] }),
            node: "acme/northwind/contoso", field: "issuers", message: "issuers are registered on an OEM or a partner"
        )
    }

    func testAnInvalidIssuerIsReported() {
        assertOnlyIssue(
            Fixtures.chain(oem: { $0.issuers = ["https://id.acme.example/ tenant"] }),
            node: "acme", field: "issuers", message: "is not a valid issuer"
        )
    }

    func testPartnerIssuerSelfServiceIsAnOEMsSettingOnly() {
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.partnerIssuerSelfService = true }),
            node: "acme/northwind", field: "partnerIssuerSelfService", message: "only an OEM decides whether its partners manage their own token issuers"
        )
        // Written as false it is still not the partner's to write.
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.partnerIssuerSelfService = false }),
            node: "acme/northwind/contoso", field: "partnerIssuerSelfService", message: "only an OEM decides"
        )
    }

    // MARK: - Packages by kind

    func testACustomerWithoutAPackageIsReported() {
        assertOnlyIssue(
            Fixtures.chain(customer: { $0.package = nil }),
            node: "acme/northwind/contoso", field: "package", message: "a customer subscribes to a package"
        )
    }

    func testAPackageOrAddOnsOnAPartnerAreReported() {
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.package = "starter" }),
            node: "acme/northwind", field: "package", message: "only a customer subscribes to a package"
        )
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.addOns = ["crm"] }),
            node: "acme/northwind", field: "addOns", message: "only a customer has add-ons"
        )
        assertOnlyIssue(
            Fixtures.chain(partner: { $0.packages = [PackageSource(name: "northwind-basic", features: ["ledger"])] }),
            node: "acme/northwind", field: "packages", message: "only an OEM defines packages"
        )
    }

    // MARK: - Catalog

    func testAFeatureListedTwiceInTheCatalogIsReported() {
        var catalog = Fixtures.catalog
        catalog.features.append("ledger")

        assertOnlyIssue(Fixtures.chain().with(catalog: catalog), node: "catalog", field: "features[6]", message: "feature 'ledger' is listed twice")
    }

    func testARoutePathNotStartingWithASlashIsReported() {
        assertOnlyIssue(
            Fixtures.chain().with(route: RouteSource(method: nil, pathPrefix: "v1/assets", feature: nil, cost: 1)),
            node: "catalog", field: "routes[6]", message: "path 'v1/assets' must start with '/'"
        )
    }

    func testARouteWithAnUnknownFeatureIsReported() {
        assertOnlyIssue(
            Fixtures.chain().with(route: RouteSource(method: nil, pathPrefix: "/v1/assets", feature: "assets", cost: 1)),
            node: "catalog", field: "routes[6]", message: "unknown feature 'assets'"
        )
    }

    func testARouteCostingNothingIsReported() {
        assertOnlyIssue(
            Fixtures.chain().with(route: RouteSource(method: nil, pathPrefix: "/v1/assets", feature: nil, cost: 0)),
            node: "catalog", field: "routes[6]", message: "cost must be between 1 and 1000, got 0"
        )
    }

    func testARouteDefinedTwiceIsReported() {
        // Methods are compared case-insensitively: `post` is `POST`.
        assertOnlyIssue(
            Fixtures.chain().with(route: RouteSource(method: "post", pathPrefix: "/v1/ledger", feature: "ledger", cost: 2)),
            node: "catalog", field: "routes[6]", message: "route 'POST /v1/ledger' is defined twice"
        )
    }

    func testARouteExposingSomethingOtherThanFieldNamesIsReported() {
        let cases: [(names: [String], message: String)] = [
            (["*"], "exposeHeaders: '*' is not a header field name"),
            (["X-Balance", "X Total"], "exposeHeaders: 'X Total' is not a header field name"),
            (["retry-after"], "exposeHeaders: 'retry-after' is always exposed"),
            (["X-Balance", "x-balance"], "exposeHeaders: 'x-balance' is listed twice"),
        ]
        for (names, message) in cases {
            assertOnlyIssue(
                Fixtures.chain().with(route: RouteSource(method: nil, pathPrefix: "/v1/assets", feature: nil, cost: 1, exposeHeaders: names)),
                node: "catalog", field: "routes[6]", message: message
            )
        }
    }

    func testARoutesExposedFieldsAreJoinedOnceWhenCompiled() throws {
        let snapshot = try TreeCompiler.compile(
            Fixtures.chain().with(route: RouteSource(method: "GET", pathPrefix: "/v1/assets", feature: nil, cost: 1, exposeHeaders: ["ETag", "X-Total-Count"]))
        )
        XCTAssertEqual(snapshot.catalog.routes.match(method: "GET", path: "/v1/assets/1")?.exposedHeaders, "ETag, X-Total-Count")
        XCTAssertNil(snapshot.catalog.routes.match(method: "GET", path: "/v1/ledger")?.exposedHeaders)
    }

    func testACatalogPackageWithAnUnknownFeatureIsReported() {
        var catalog = Fixtures.catalog
        catalog.packages.append(PackageSource(name: "assets", features: ["ledger", "assets"]))

        assertOnlyIssue(Fixtures.chain().with(catalog: catalog), node: "catalog", field: "packages.assets", message: "unknown feature 'assets'")
    }

    // MARK: - The tree as a whole

    func testEveryIssueOfATreeIsReportedAtOnce() {
        var catalog = Fixtures.catalog
        catalog.features.append("ledger")
        let source = Fixtures.chain(
            oem: {
                $0.branding = BrandingSource(values: [.logoUrl: "http://acme.example/logo.png"])
                $0.origins = ["http://app.acme.example"]
            },
            partner: {
                $0.features = ["ledger", "teleport"]
                $0.limits = Limits(burst: 5)
            },
            customer: { $0.package = "platinum" },
            adding: [
                Fixtures.customer("litware", under: "northwind") {
                    $0.issuers = ["https://id.litware.example"]
                    $0.placement = PlacementSource(cell: "mars-1")
                },
                Fixtures.partner("orphan", under: "nobody"),
                Fixtures.customer("stray", under: "orphan", package: "platinum"),
            ]
        ).with(catalog: catalog)

        let found = issues(of: source)

        XCTAssertEqual(found.count, 9, found.map(\.description).joined(separator: "\n"))
        XCTAssertEqual(Set(found.map { "\($0.node) \($0.field)" }), [
            "catalog features[6]",
            "acme branding.logoUrl",
            "acme origins",
            "acme/northwind features",
            "acme/northwind limits.burst",
            "acme/northwind/contoso package",
            "acme/northwind/litware issuers",
            "acme/northwind/litware placement.cell",
            "orphan parent",
        ])
    }

    /// A node left out of the tree, and its subtree, add no follow-up issues (no "unknown parent"
    /// for the children, nothing they would have inherited), but their own mistakes are listed
    /// in the same run: fixing the parent must not reveal a second round of errors.
    func testTheSubtreeOfAStructurallyBrokenNodeAddsItsOwnMistakesButNoFollowUps() {
        let source = Fixtures.chain(adding: [
            Fixtures.partner("orphan", under: "nobody") { $0.features = ["teleport"] },
            Fixtures.customer("stray-1", under: "orphan", package: "platinum"),
            Fixtures.customer("stray-2", under: "orphan") { $0.branding = BrandingSource(values: [.primaryColor: "red"]) },
            Fixtures.customer("stray-3", under: "orphan") { $0.limits = Limits(burst: 1) },
            Fixtures.partner("misplaced", under: "northwind"),
            Fixtures.customer("stray-4", under: "misplaced") { $0.issuers = ["x"] },
        ])

        let found = issues(of: source)

        XCTAssertEqual(
            found.map { "\($0.node) \($0.field)" }.sorted(),
            ["misplaced parent", "orphan features", "orphan parent", "stray-2 branding.primaryColor", "stray-3 limits.burst", "stray-4 issuers"],
            found.map(\.description).joined(separator: "\n")
        )
    }

    func testARejectedTreeThrowsAndReturnsNothing() {
        var snapshot: TenantSnapshot?
        do {
            snapshot = try TreeCompiler.compile(Fixtures.chain(customer: { $0.package = "platinum" }))
            XCTFail("an invalid tree must not compile")
        } catch {
            XCTAssertEqual(error.issues.count, 1)
            XCTAssertEqual(error.description, "acme/northwind/contoso package: unknown package 'platinum'")
        }
        XCTAssertNil(snapshot)
    }

    func testIssuesAreListedInDocumentOrderWithTheirPositions() {
        // The compiler visits the customer last, but its mistake is written first.
        let source = Fixtures.chain(
            oem: {
                $0.branding = BrandingSource(values: [.primaryColor: "red"])
                $0.fieldLocations = ["branding.primaryColor": SourceLocation(line: 9, column: 5)]
            },
            partner: {
                $0.features = ["teleport"]
                $0.location = SourceLocation(line: 20, column: 3)
            },
            customer: {
                $0.package = "platinum"
                $0.fieldLocations = ["package": SourceLocation(line: 2, column: 7)]
            }
        )

        let found = issues(of: source)

        XCTAssertEqual(found.map(\.field), ["package", "branding.primaryColor", "features"])
        XCTAssertEqual(found.map(\.location), [SourceLocation(line: 2, column: 7), SourceLocation(line: 9, column: 5), SourceLocation(line: 20, column: 3)])
    }
}
