import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Partner issuer self-service through the real binary: once its OEM allows it, a partner's
/// admin onboards and rotates its own signing key, and tokens signed with it speak for the
/// partner's customers and no one else's.
final class PartnerIssuerSelfServiceTests: AdminTestCase {
    func testAPartnerAdminRotatesItsOwnKeyOnceItsOEMAllowsIt() throws {
        self.gateway = try self.startAdminGateway()
        let partner = try self.token("partner-admin", "p1")
        let oem = try self.token("oem-admin", "acme")
        func key(_ kid: String, _ alg: String, _ pair: TestIdentity.KeyPair) throws -> String {
            #"{"kid":"\#(kid)","alg":"\#(alg)","pem":\#(jsonString(try String(contentsOfFile: pair.publicKey, encoding: .utf8)))}"#
        }
        let oldKey = try key("p1-1", "RS256", TestIdentity.partnerOne)
        let newKey = try key("p1-2", "ES256", TestIdentity.partnerOneNew)
        func put(_ node: String, _ keys: [String]) throws -> RawHTTPConnection.Response {
            let read = try self.admin("GET", "/admin/v1/nodes/\(node)/issuers", token: partner)
            let body = #"{"issuers":[{"iss":"https://id.p1.test","audience":"erp-gateway","keys":[\#(keys.joined(separator: ","))]}]}"#
            return try self.admin("PUT", "/admin/v1/nodes/\(node)/issuers", token: partner, ifMatch: read.header("etag") ?? "*", body: body)
        }
        /// Polls the data plane until the token gets `expected`; true if it did.
        func eventually(_ token: String, _ expected: Int) throws -> Bool {
            let start = Date()
            while Date().timeIntervalSince(start) < 5 {
                if try request(port: self.port, "GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")]).status == expected { return true }
                usleep(20_000)
            }
            return false
        }

        // Not before the OEM allows it: the partner sees its node, the change is not its own.
        let refused = try put("p1", [oldKey])
        XCTAssertEqual(refused.status, 403, refused.text)
        XCTAssertEqual(try refused.json()["type"] as? String, "urn:erp-gateway:problem:admin-action-forbidden")
        let selfGranted = try self.admin("PATCH", "/admin/v1/nodes/p1", token: partner, ifMatch: try self.etag("p1"), body: #"{"partnerIssuerSelfService":true}"#)
        XCTAssertEqual(selfGranted.status, 403, selfGranted.text)
        let allowed = try self.admin("PATCH", "/admin/v1/nodes/acme", token: oem, ifMatch: try self.etag("acme"), body: #"{"partnerIssuerSelfService":true}"#)
        XCTAssertEqual(allowed.status, 200, allowed.text)

        // Onboard, overlap, retire: three writes of the partner's own list.
        let old = try TestIdentity.mint(issuer: "https://id.p1.test", key: TestIdentity.partnerOne.privateKey, kid: "p1-1", tenant: "c1")
        let new = try TestIdentity.mint(issuer: "https://id.p1.test", key: TestIdentity.partnerOneNew.privateKey, alg: "ES256", kid: "p1-2", tenant: "c1")
        XCTAssertTrue(try eventually(old, 401), "no issuer yet")
        XCTAssertEqual(try put("p1", [oldKey]).status, 200)
        XCTAssertTrue(try eventually(old, 200), "the onboarded key verifies")
        XCTAssertEqual(try put("p1", [oldKey, newKey]).status, 200)
        XCTAssertTrue(try eventually(new, 200), "both keys during the overlap")
        XCTAssertTrue(try eventually(old, 200))
        XCTAssertEqual(try put("p1", [newKey]).status, 200)
        XCTAssertTrue(try eventually(old, 401), "the retired key no longer verifies")
        XCTAssertTrue(try eventually(new, 200))

        // The issuer speaks for the partner's subtree only: not for a sibling partner's customer.
        let sibling = try TestIdentity.mint(issuer: "https://id.p1.test", key: TestIdentity.partnerOneNew.privateKey, alg: "ES256", kid: "p1-2", tenant: "c2")
        let foreign = try request(port: self.port, "GET", "/v1/ledger", headers: [("Authorization", "Bearer \(sibling)")])
        XCTAssertEqual(foreign.status, 403, foreign.text)
        XCTAssertEqual(try foreign.json()["type"] as? String, "urn:erp-gateway:problem:tenant-not-permitted")
        // Nor does the partner's admin reach a sibling's issuers.
        XCTAssertEqual(try put("p2", [newKey]).status, 404)

        let audit = try self.admin("GET", "/admin/v1/nodes/p1/audit", token: partner)
        let entries = try XCTUnwrap(try audit.json()["entries"] as? [[String: Any]])
        XCTAssertEqual(entries.filter { $0["role"] as? String == "partner-admin" }.count, 3, audit.text)
    }
}
