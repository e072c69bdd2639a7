import Hierarchy
import SupportAccess
import XCTest

@testable import AdminAPI

/// The support grant's state machine as a value, on a clock the test sets: requested →
/// approved or refused → revoked or expired, and who may move it.
final class SupportGrantTests: XCTestCase {
    let customer = try! NodePath(parsing: "acme/p1/c1")

    func grant(breakGlass: Bool = false, duration: Int64 = 3600, at time: Int64 = 1_000) -> SupportGrant {
        SupportGrant(
            id: "sg-1", customer: self.customer, requester: .init(actor: "eng-1", oem: "acme"), reason: "invoice totals wrong", ticket: "SUP-42",
            duration: duration, scope: .readOnly, breakGlass: breakGlass, requestedAt: time
        )
    }

    func by(_ actor: String, _ role: String = "customer-admin", at time: Int64) -> SupportGrant.Decision {
        SupportGrant.Decision(actor: actor, role: role, time: time)
    }

    func testARequestedGrantIsNotActiveUntilApprovedThenActiveForItsDurationThenExpired() throws {
        var grant = self.grant()
        XCTAssertEqual(grant.status(at: 1_000), .requested)
        XCTAssertFalse(grant.isActive(at: 1_500))
        XCTAssertNil(grant.approve(by: self.by("admin-c1", at: 2_000), isPlatformAdmin: false))
        XCTAssertEqual(grant.expiresAt, 2_000 + 3600, "the duration runs from the approval, not the request")
        XCTAssertEqual(grant.status(at: 2_000), .approved)
        XCTAssertTrue(grant.isActive(at: 5_599))
        XCTAssertEqual(grant.status(at: 5_600), .expired)
        XCTAssertFalse(grant.isActive(at: 5_600))
        XCTAssertEqual(grant.revoke(by: self.by("admin-c1", at: 6_000)), .alreadyEnded, "nothing is left to end")
    }

    func testTheRequesterCannotDecideItsOwnGrant() {
        var grant = self.grant()
        XCTAssertEqual(grant.approve(by: self.by("eng-1", "platform-admin", at: 1_100), isPlatformAdmin: true), .ownGrant)
        XCTAssertEqual(grant.refuse(by: self.by("eng-1", at: 1_100), isPlatformAdmin: false), .ownGrant)
        XCTAssertEqual(grant.status(at: 1_100), .requested)
    }

    func testARefusedGrantCanBeNeitherApprovedNorRevoked() {
        var grant = self.grant()
        XCTAssertNil(grant.refuse(by: self.by("admin-p1", "partner-admin", at: 1_100), isPlatformAdmin: false))
        XCTAssertEqual(grant.status(at: 1_100), .refused)
        XCTAssertEqual(grant.decision?.actor, "admin-p1")
        XCTAssertEqual(grant.approve(by: self.by("admin-c1", at: 1_200), isPlatformAdmin: false), .notPending)
        XCTAssertEqual(grant.revoke(by: self.by("admin-c1", at: 1_200)), .alreadyEnded)
        XCTAssertNil(grant.expiresAt)
    }

    func testAnApprovedGrantRevokedEndsAtOnceAndCannotBeApprovedAgain() throws {
        var grant = self.grant()
        XCTAssertNil(grant.approve(by: self.by("admin-c1", at: 1_100), isPlatformAdmin: false))
        XCTAssertNil(grant.revoke(by: self.by("eng-1", "support", at: 1_200)))
        XCTAssertEqual(grant.status(at: 1_200), .revoked, "revoked before its expiry")
        XCTAssertEqual(grant.revocation?.actor, "eng-1")
        XCTAssertEqual(grant.approve(by: self.by("admin-c1", at: 1_300), isPlatformAdmin: false), .notPending)
        XCTAssertEqual(grant.revoke(by: self.by("admin-c1", at: 1_300)), .alreadyEnded)
    }

    func testAPendingGrantCanBeWithdrawn() throws {
        var grant = self.grant()
        XCTAssertNil(grant.revoke(by: self.by("eng-1", "support", at: 1_100)))
        XCTAssertEqual(grant.status(at: 1_100), .revoked)
        XCTAssertNil(grant.expiresAt)
    }

    func testABreakGlassGrantIsApprovedByAPlatformAdminOnly() throws {
        var grant = self.grant(breakGlass: true)
        XCTAssertEqual(grant.approve(by: self.by("admin-c1", at: 1_100), isPlatformAdmin: false), .breakGlassNeedsPlatformAdmin)
        XCTAssertEqual(grant.approve(by: self.by("eng-1", "platform-admin", at: 1_100), isPlatformAdmin: true), .ownGrant)
        XCTAssertNil(grant.approve(by: self.by("ops-2", "platform-admin", at: 1_100), isPlatformAdmin: true))
        XCTAssertEqual(grant.status(at: 1_100), .approved)
    }

    func testAGrantSurvivesTheStoreUnchanged() throws {
        var grant = self.grant()
        XCTAssertNil(grant.approve(by: self.by("admin-c1", at: 1_100), isPlatformAdmin: false))
        let read = try XCTUnwrap(SupportGrantJSON.decode(SupportGrantJSON.stored(grant)))
        XCTAssertEqual(read, grant)
        let routes = SupportGrant(
            id: "sg-2", customer: self.customer, requester: .init(actor: "eng-2", oem: nil), reason: "r", ticket: "t", duration: 60,
            scope: .routes(["/v1/ledger", "/v1/payroll"]), breakGlass: true, requestedAt: 5
        )
        XCTAssertEqual(SupportGrantJSON.decode(SupportGrantJSON.stored(routes)), routes)
    }

    func testTheScopeAllowsReadsOrTheNamedRoutes() {
        XCTAssertTrue(SupportScope.readOnly.allows(method: "GET", routePrefix: "/v1/ledger"))
        XCTAssertTrue(SupportScope.readOnly.allows(method: "HEAD", routePrefix: "/v1/ledger"))
        XCTAssertFalse(SupportScope.readOnly.allows(method: "POST", routePrefix: "/v1/ledger"))
        XCTAssertFalse(SupportScope.readOnly.allows(method: "DELETE", routePrefix: "/v1/ledger"))
        let routes = SupportScope.routes(["/v1/ledger"])
        XCTAssertTrue(routes.allows(method: "POST", routePrefix: "/v1/ledger"))
        XCTAssertFalse(routes.allows(method: "GET", routePrefix: "/v1/payroll"))
        XCTAssertEqual(SupportScope(claim: routes.claim), routes)
        XCTAssertEqual(SupportScope(claim: "read-only"), .readOnly)
        XCTAssertNil(SupportScope(claim: "everything"))
        XCTAssertNil(SupportScope(claim: "routes:"))
    }

    func testDurationsAreReadInSecondsMinutesOrHours() {
        XCTAssertEqual(AdminEngine.seconds(.string("4h")), 4 * 3600)
        XCTAssertEqual(AdminEngine.seconds(.string("90m")), 90 * 60)
        XCTAssertEqual(AdminEngine.seconds(.string("2s")), 2)
        XCTAssertEqual(AdminEngine.seconds(.integer(120)), 120)
        XCTAssertNil(AdminEngine.seconds(.string("4d")))
        XCTAssertNil(AdminEngine.seconds(.string("-1h")))
    }
}
