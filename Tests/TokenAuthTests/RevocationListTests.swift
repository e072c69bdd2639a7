import XCTest
@testable import TokenAuth

final class RevocationListTests: XCTestCase {
    private func token(jti: String?, tenant: String = "contoso", issuedAt: Int64? = 1000, expiresAt: Int64 = 5000) -> VerifiedToken {
        VerifiedToken(
            issuer: "https://id.acme.example", keyID: "k", subject: "u", audience: ["erp-gateway"], expiresAt: expiresAt,
            issuedAt: issuedAt, notBefore: nil, jwtID: jti, tenant: tenant, role: nil, node: nil
        )
    }

    func testARevokedJWTIDIsRevokedUntilItExpires() {
        var list = RevocationList()
        XCTAssertFalse(list.isRevoked(self.token(jti: "a")))
        list.revoke(jwtID: "a", until: 5000)
        XCTAssertTrue(list.isRevoked(self.token(jti: "a")))
        XCTAssertFalse(list.isRevoked(self.token(jti: "b")))
        XCTAssertFalse(list.isRevoked(self.token(jti: nil)))
        list.prune(now: 5000)
        XCTAssertTrue(list.isRevoked(self.token(jti: "a")), "kept through its expiry second")
        list.prune(now: 5001)
        XCTAssertFalse(list.isRevoked(self.token(jti: "a")))
        XCTAssertEqual(list.count, 0)
    }

    func testATenantRevocationCoversTokensIssuedBeforeIt() {
        var list = RevocationList()
        list.revoke(tenant: "contoso", issuedBefore: 2000, until: 9000)
        XCTAssertTrue(list.isRevoked(self.token(jti: "x", issuedAt: 1999)))
        XCTAssertTrue(list.isRevoked(self.token(jti: "x", issuedAt: 2000)), "the revocation's own second may predate it")
        XCTAssertFalse(list.isRevoked(self.token(jti: "x", issuedAt: 2001)), "a token issued after the revocation is fine")
        XCTAssertTrue(list.isRevoked(self.token(jti: "x", issuedAt: nil)), "no iat cannot prove it is newer")
        XCTAssertFalse(list.isRevoked(self.token(jti: "x", tenant: "fabrikam", issuedAt: 1)))
        list.revoke(tenant: "contoso", issuedBefore: 1500, until: 100)
        XCTAssertTrue(list.isRevoked(self.token(jti: "x", issuedAt: 1999)), "a later, narrower message never shortens a revocation")
    }

    func testMessagesRoundTripAndMerge() {
        let messages: [RevocationMessage] = [.token(jwtID: "abc-1", expiresAt: 1_800_000_000), .tenant("contoso", issuedBefore: 1_700_000_000, until: 1_800_000_000)]
        var fromMessages = RevocationList()
        for message in messages {
            XCTAssertEqual(RevocationMessage(message.text), message)
            message.apply(to: &fromMessages)
        }
        var merged = RevocationList()
        merged.merge(fromMessages)
        XCTAssertEqual(merged, fromMessages)
        for junk in ["", "jti", "jti a", "jti a b", "tenant a 1", "other a 1 2", "jti a 1 extra"] {
            XCTAssertNil(RevocationMessage(junk), junk)
        }
    }
}
