import AdminAPI
import Hierarchy
import XCTest

/// The authorization function alone: who may do what to which node.
final class AdminAuthorizationTests: XCTestCase {
    func path(_ text: String) -> NodePath { try! NodePath(parsing: text) }

    func principal(_ role: AdminRole, _ scope: String?) -> AdminPrincipal {
        AdminPrincipal(actor: "alice", role: role, scope: scope.map(self.path))
    }

    func testNothingOutsideTheSubtreeIsVisibleAndItLooksExactlyLikeANodeThatDoesNotExist() {
        let partner = self.principal(.partnerAdmin, "acme/p1")
        for action in AdminAction.allCases {
            for outside in ["acme", "acme/p2", "acme/p2/c3", "globex", "globex/gp/g1"] {
                XCTAssertEqual(AdminAuthorization.decide(partner, action, target: self.path(outside)), .notFound, "\(action) \(outside)")
            }
            XCTAssertEqual(AdminAuthorization.decide(partner, action, target: nil), .notFound)
        }
    }

    func testAnAdminEditsItsOwnPresentationButGrantsItselfNothing() {
        let partner = self.principal(.partnerAdmin, "acme/p1")
        let own = self.path("acme/p1")
        XCTAssertEqual(AdminAuthorization.decide(partner, .read, target: own), .allowed)
        XCTAssertEqual(AdminAuthorization.decide(partner, .editPresentation, target: own), .allowed)
        XCTAssertEqual(AdminAuthorization.decide(partner, .createChild, target: own), .allowed)
        for action in [AdminAction.editEntitlements, .suspend, .reactivate, .delete, .editPlacement] {
            XCTAssertEqual(AdminAuthorization.decide(partner, action, target: own), .forbidden, "\(action)")
        }
    }

    func testBelowItsNodeAnAdminManagesEverythingButPlacement() {
        let partner = self.principal(.partnerAdmin, "acme/p1")
        let customer = self.path("acme/p1/c1")
        for action in [AdminAction.read, .editPresentation, .editEntitlements, .suspend, .reactivate, .delete] {
            XCTAssertEqual(AdminAuthorization.decide(partner, action, target: customer), .allowed, "\(action)")
        }
        XCTAssertEqual(AdminAuthorization.decide(partner, .editPlacement, target: customer), .forbidden)
        XCTAssertEqual(AdminAuthorization.decide(partner, .createChild, target: customer), .forbidden, "customers have no children")
    }

    func testAPartnerManagesItsOwnIssuersExactlyWhenItsOEMAllows() {
        let own = self.path("acme/p1")
        let without = self.principal(.partnerAdmin, "acme/p1")
        let with = AdminPrincipal(actor: "alice", role: .partnerAdmin, scope: own, managesOwnIssuers: true)
        XCTAssertEqual(AdminAuthorization.decide(without, .manageIssuers, target: own), .forbidden)
        XCTAssertEqual(AdminAuthorization.decide(with, .manageIssuers, target: own), .allowed)
        for outside in ["acme", "acme/p2", "globex/gp"] {
            XCTAssertEqual(AdminAuthorization.decide(with, .manageIssuers, target: self.path(outside)), .notFound, outside)
        }
        // Allowing it is the OEM's decision, never the partner's.
        XCTAssertEqual(AdminAuthorization.decide(with, .delegateIssuers, target: own), .forbidden)
    }

    func testAnOEMAdminDecidesWhetherItsPartnersManageTheirIssuers() {
        let oem = self.principal(.oemAdmin, "acme")
        XCTAssertEqual(AdminAuthorization.decide(oem, .delegateIssuers, target: self.path("acme")), .allowed)
        XCTAssertEqual(AdminAuthorization.decide(oem, .delegateIssuers, target: self.path("acme/p1")), .forbidden, "a setting of OEMs only")
        XCTAssertEqual(AdminAuthorization.decide(oem, .delegateIssuers, target: self.path("globex")), .notFound)
    }

    func testACustomerAdminSeesOnlyItself() {
        let customer = self.principal(.customerAdmin, "acme/p1/c1")
        XCTAssertEqual(AdminAuthorization.decide(customer, .read, target: self.path("acme/p1/c1")), .allowed)
        XCTAssertEqual(AdminAuthorization.decide(customer, .editPresentation, target: self.path("acme/p1/c1")), .allowed)
        XCTAssertEqual(AdminAuthorization.decide(customer, .editEntitlements, target: self.path("acme/p1/c1")), .forbidden)
        XCTAssertEqual(AdminAuthorization.decide(customer, .read, target: self.path("acme/p1/c2")), .notFound)
        XCTAssertEqual(AdminAuthorization.decide(customer, .read, target: self.path("acme/p1")), .notFound)
    }

    func testPortalCertificatesAreManagedLikeThePortalDomainsTheyServe() {
        for (role, scope) in [(AdminRole.customerAdmin, "acme/p1/c1"), (.partnerAdmin, "acme/p1"), (.oemAdmin, "acme")] {
            let principal = self.principal(role, scope)
            XCTAssertEqual(AdminAuthorization.decide(principal, .manageCertificates, target: self.path(scope)), .allowed, "\(role) on its own node")
            XCTAssertEqual(AdminAuthorization.decide(principal, .manageCertificates, target: self.path("acme/p1/c1")), .allowed, "\(role) below")
            XCTAssertEqual(AdminAuthorization.decide(principal, .manageCertificates, target: self.path("acme/p2")), role == .oemAdmin ? .allowed : .notFound)
        }
    }

    func testThePlatformAdminMayDoEverythingToAnyNode() {
        let platform = self.principal(.platformAdmin, nil)
        for action in AdminAction.allCases {
            XCTAssertEqual(AdminAuthorization.decide(platform, action, target: self.path("globex/gp")), .allowed, "\(action)")
        }
        XCTAssertEqual(AdminAuthorization.decide(platform, .read, target: nil), .notFound)
    }

    func testRoutesMatchExactlyTheTable() {
        for entry in AdminRoute.table {
            let concrete = entry.path.replacingOccurrences(of: "{id}", with: "acme")
            guard case .success(let route) = AdminRoute.match(method: entry.method, path: concrete) else {
                return XCTFail("\(entry.method) \(concrete) does not match")
            }
            XCTAssertEqual(route.nodeID, entry.path.contains("{id}") ? "acme" : nil)
        }
        XCTAssertEqual(AdminRoute.match(method: "GET", path: "/admin/v1/nodes/"), .failure(.notFound))
        XCTAssertEqual(AdminRoute.match(method: "GET", path: "/admin/v1/nodes/acme/children/x"), .failure(.notFound))
        XCTAssertEqual(AdminRoute.match(method: "GET", path: "/admin/v1/nodes/acme/unknown"), .failure(.notFound))
        XCTAssertEqual(AdminRoute.match(method: "PUT", path: "/admin/v1/nodes/acme"), .failure(.methodNotAllowed(allowed: ["DELETE", "GET", "PATCH"])))
    }
}
