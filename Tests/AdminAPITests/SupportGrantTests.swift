import GatewayConfig
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

    func testARequestNobodyAnswersInTimeExpiresAndIsNoLongerDecided() {
        var grant = SupportGrant(
            id: "sg-1", customer: self.customer, requester: .init(actor: "eng-1", oem: "acme"), reason: "r", ticket: "t", duration: 3600,
            scope: .readOnly, breakGlass: false, requestedAt: 1_000, answerWithin: 600
        )
        XCTAssertEqual(grant.answerBy, 1_600)
        XCTAssertEqual(grant.status(at: 1_599), .requested)
        XCTAssertNil(grant.endedAt(at: 1_599))
        XCTAssertEqual(grant.status(at: 1_600), .expired)
        XCTAssertEqual(grant.endedAt(at: 1_600), 1_600)
        XCTAssertEqual(grant.approve(by: self.by("admin-c1", at: 1_600), isPlatformAdmin: false), .notPending)
        XCTAssertEqual(grant.refuse(by: self.by("admin-c1", at: 1_700), isPlatformAdmin: false), .notPending)
        XCTAssertEqual(grant.revoke(by: self.by("eng-1", "support", at: 1_700)), .alreadyEnded)
        XCTAssertEqual(grant.state, .requested, "unchanged: the store keeps what was decided, the clock reads it")
        XCTAssertNil(grant.expiresAt)

        // The default wait, and an approval within it that outlives it.
        var answered = self.grant()
        XCTAssertEqual(answered.answerBy, 1_000 + 24 * 3600)
        XCTAssertNil(answered.approve(by: self.by("admin-c1", at: 1_000 + 24 * 3600 - 1), isPlatformAdmin: false))
        XCTAssertEqual(answered.status(at: 1_000 + 24 * 3600 + 60), .approved, "answerBy bounds the wait for an answer, not the grant")
    }

    func testEachEndedGrantEndsWhenItsLastChangeOrDeadlineWas() {
        var refused = self.grant()
        XCTAssertNil(refused.refuse(by: self.by("admin-c1", at: 1_100), isPlatformAdmin: false))
        XCTAssertEqual(refused.endedAt(at: 9_999), 1_100)
        var revoked = self.grant()
        XCTAssertNil(revoked.approve(by: self.by("admin-c1", at: 1_100), isPlatformAdmin: false))
        XCTAssertNil(revoked.endedAt(at: 1_200), "active")
        XCTAssertNil(revoked.revoke(by: self.by("admin-c1", at: 1_200)))
        XCTAssertEqual(revoked.endedAt(at: 1_300), 1_200)
        var expired = self.grant()
        XCTAssertNil(expired.approve(by: self.by("admin-c1", at: 1_100), isPlatformAdmin: false))
        XCTAssertEqual(expired.endedAt(at: 99_999), 1_100 + 3600)
    }

    /// The list a support engineer or an admin reads at `now`, and what the store is told to
    /// remove, for grants kept `keepEnded` seconds after they end.
    func listing(_ grants: [SupportGrant], now: Int64, keepEnded: Int64) -> (listed: [String: String], trimmed: [String]) {
        var settings = GatewaySettings.SupportAccess(signingKeyFile: "k", signingKeyPEM: "", verificationKeyPEM: "", algorithm: .ES256)
        settings.keepEnded = .seconds(keepEnded)
        let operation = SupportGrantOperation(
            kind: .list, caller: .engineer(actor: "eng-1", oem: nil), customer: self.customer, settings: settings, policy: .unrestricted,
            requestID: "r", now: now
        )
        let stored = grants.map(SupportGrantJSON.stored)
        guard case .respond(let response) = operation.judge(stored), let listed = JSONValue.parse(Array(response.body.utf8))?["grants"]?.array else {
            XCTFail("a list")
            return ([:], [])
        }
        var statuses: [String: String] = [:]
        for grant in listed { statuses[grant["id"]?.string ?? "?"] = grant["status"]?.string }
        return (statuses, operation.trimmed(stored).sorted())
    }

    func testGrantsEndedLongerAgoThanTheyAreKeptAreNeitherListedNorKept() {
        func grant(_ id: String, requestedAt: Int64, answerWithin: Int64 = 86_400) -> SupportGrant {
            SupportGrant(
                id: id, customer: self.customer, requester: .init(actor: "eng-1", oem: nil), reason: "r", ticket: "t", duration: 600, scope: .readOnly,
                breakGlass: false, requestedAt: requestedAt, answerWithin: answerWithin
            )
        }
        let pending = grant("pending", requestedAt: 90_000)
        let unanswered = grant("unanswered", requestedAt: 10_000, answerWithin: 3600)  // expired at 13,600
        var refused = grant("refused", requestedAt: 10_000)
        XCTAssertNil(refused.refuse(by: self.by("admin-c1", at: 20_000), isPlatformAdmin: false))
        var approved = grant("approved", requestedAt: 10_000)
        XCTAssertNil(approved.approve(by: self.by("admin-c1", at: 50_000), isPlatformAdmin: false))  // ends at 50,600
        let all = [pending, unanswered, refused, approved]

        let early = self.listing(all, now: 20_000, keepEnded: 86_400)
        XCTAssertEqual(early.listed, ["pending": "requested", "unanswered": "expired", "refused": "refused", "approved": "approved"])
        XCTAssertEqual(early.trimmed, [])
        // A day after 13,600 and 20,000 but not after 50,600.
        let later = self.listing(all, now: 106_400, keepEnded: 86_400)
        XCTAssertEqual(later.listed, ["pending": "requested", "approved": "expired"])
        XCTAssertEqual(later.trimmed, ["refused", "unanswered"])
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
        let quick = SupportGrant(
            id: "sg-3", customer: self.customer, requester: .init(actor: "eng-2", oem: nil), reason: "r", ticket: "t", duration: 60, scope: .readOnly,
            breakGlass: false, requestedAt: 5, answerWithin: 600
        )
        XCTAssertEqual(SupportGrantJSON.decode(SupportGrantJSON.stored(quick))?.answerBy, 605)
        // Stored before requests expired: the default wait from its request.
        guard case .object(var members)? = JSONValue.parse(Array(SupportGrantJSON.stored(quick).utf8)) else { return XCTFail("an object") }
        XCTAssertEqual(members.removeValue(forKey: "answerBy"), .integer(605))
        XCTAssertEqual(SupportGrantJSON.decode(JSONValue.object(members).text)?.answerBy, 5 + SupportGrant.defaultAnswerWithin)
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
