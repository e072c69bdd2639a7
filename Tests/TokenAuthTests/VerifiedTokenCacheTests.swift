import XCTest
@testable import TokenAuth

final class VerifiedTokenCacheTests: XCTestCase {
    private let now: Int64 = 1_760_000_000

    private func verified(jti: String? = nil, tenant: String = "contoso", expiresAt: Int64? = nil) -> VerifiedToken {
        VerifiedToken(
            issuer: "https://login.oem-a.example", keyID: "k", subject: "user", audience: ["erp-gateway"],
            expiresAt: expiresAt ?? now + 600, issuedAt: now, notBefore: nil, jwtID: jti, tenant: tenant,
            role: nil, node: nil
        )
    }

    private func token(_ n: Int) -> String { "eyJhbGciOiJSUzI1NiJ9.eyJuIjo\(n)fQ.c2lnbmF0dXJl\(n)" }

    func testHitReturnsTheVerifiedClaimsForExactlyThatToken() {
        var cache = VerifiedTokenCache(capacity: 8)
        let claims = verified(jti: "a")
        cache.insert(token(1)[...], claims, now: now)
        XCTAssertEqual(cache.lookup(token(1)[...], now: now), claims)
        // A slice of a larger string finds it too.
        let header = "Bearer \(token(1))"
        XCTAssertEqual(cache.lookup(header.dropFirst(7), now: now), claims)
        XCTAssertNil(cache.lookup(token(2)[...], now: now))
        XCTAssertNil(cache.lookup(token(1).dropLast(), now: now))
        XCTAssertNil(cache.lookup((token(1) + "A")[...], now: now))
    }

    /// Only a token's length and last bytes (its signature's, in a compact JWS) are hashed:
    /// tokens that end alike share a slot, and neither is ever answered with the other's claims.
    func testTokensThatEndAlikeAreNeverTakenForEachOther() {
        let signature = String(repeating: "s", count: VerifiedTokenCache.hashedBytes)
        let first = "eyJhbGciOiJSUzI1NiJ9.eyJuIjoxfQ.\(signature)"
        let second = "eyJhbGciOiJSUzI1NiJ9.eyJuIjoyfQ.\(signature)"
        XCTAssertEqual(VerifiedTokenCache.hash(first[...]), VerifiedTokenCache.hash(second[...]))
        XCTAssertNotEqual(VerifiedTokenCache.hash(first[...]), VerifiedTokenCache.hash((first.dropLast() + "t")[...]))
        XCTAssertNotEqual(VerifiedTokenCache.hash(first[...]), VerifiedTokenCache.hash((first + "s")[...]), "the length is hashed too")

        var cache = VerifiedTokenCache(capacity: 8)
        let firstClaims = verified(jti: "first")
        let secondClaims = verified(jti: "second")
        cache.insert(first[...], firstClaims, now: now)
        XCTAssertNil(cache.lookup(second[...], now: now), "another token, though it ends alike")
        cache.insert(second[...], secondClaims, now: now)
        XCTAssertEqual(cache.lookup(second[...], now: now), secondClaims)
        XCTAssertNil(cache.lookup(first[...], now: now), "it gave way to the token that shares its slot")
        XCTAssertEqual(cache.count, 1)
    }

    func testComparesBytesNotCanonicalEquivalence() {
        var cache = VerifiedTokenCache(capacity: 8)
        let ascii = "aaaK.bbb.ccc"
        cache.insert(ascii[...], verified(), now: now)
        // KELVIN SIGN is canonically equivalent to "K", so Swift's String == says equal.
        let kelvin = "aaa\u{212A}.bbb.ccc"
        XCTAssertEqual(kelvin, ascii)
        XCTAssertNil(cache.lookup(kelvin[...], now: now))
    }

    func testEntriesExpireAtTheTokensExpiry() {
        var cache = VerifiedTokenCache(capacity: 8)
        cache.insert(token(1)[...], verified(expiresAt: now + 10), now: now)
        XCTAssertNotNil(cache.lookup(token(1)[...], now: now + 9))
        XCTAssertNil(cache.lookup(token(1)[...], now: now + 10))
        XCTAssertEqual(cache.count, 0)
        XCTAssertNil(cache.lookup(token(1)[...], now: now))
    }

    func testExpiredTokensAreNotInserted() {
        var cache = VerifiedTokenCache(capacity: 8)
        cache.insert(token(1)[...], verified(expiresAt: now), now: now)
        XCTAssertEqual(cache.count, 0)
    }

    func testCapacityIsABoundAndTheOldestGoesFirst() {
        var cache = VerifiedTokenCache(capacity: 3)
        for n in 1...3 { cache.insert(token(n)[...], verified(jti: "\(n)"), now: now) }
        XCTAssertEqual(cache.count, 3)
        cache.insert(token(4)[...], verified(jti: "4"), now: now)
        XCTAssertEqual(cache.count, 3)
        XCTAssertNil(cache.lookup(token(1)[...], now: now))
        for n in 2...4 { XCTAssertEqual(cache.lookup(token(n)[...], now: now)?.jwtID, "\(n)") }
        for n in 5...1000 { cache.insert(token(n)[...], verified(jti: "\(n)"), now: now) }
        XCTAssertEqual(cache.count, 3)
        for n in 998...1000 { XCTAssertNotNil(cache.lookup(token(n)[...], now: now)) }
    }

    func testInsertingTheSameTokenAgainReplacesItsEntry() {
        var cache = VerifiedTokenCache(capacity: 2)
        cache.insert(token(1)[...], verified(jti: "old"), now: now)
        cache.insert(token(1)[...], verified(jti: "new"), now: now)
        XCTAssertEqual(cache.count, 1)
        XCTAssertEqual(cache.lookup(token(1)[...], now: now)?.jwtID, "new")
    }

    func testRevocationByJWTID() {
        var cache = VerifiedTokenCache(capacity: 8)
        cache.insert(token(1)[...], verified(jti: "revoked"), now: now)
        cache.insert(token(2)[...], verified(jti: "kept"), now: now)
        cache.insert(token(3)[...], verified(jti: nil), now: now)
        XCTAssertEqual(cache.remove(jwtID: "revoked"), 1)
        XCTAssertNil(cache.lookup(token(1)[...], now: now))
        XCTAssertNotNil(cache.lookup(token(2)[...], now: now))
        XCTAssertNotNil(cache.lookup(token(3)[...], now: now))
        XCTAssertEqual(cache.remove(jwtID: "unknown"), 0)
        // The freed slot is reused in ring order; nothing else is lost.
        for n in 4...8 { cache.insert(token(n)[...], verified(), now: now) }
        XCTAssertEqual(cache.count, 7)
    }

    func testRemovalOfATenant() {
        var cache = VerifiedTokenCache(capacity: 8)
        cache.insert(token(1)[...], verified(tenant: "contoso"), now: now)
        cache.insert(token(2)[...], verified(tenant: "fabrikam"), now: now)
        cache.insert(token(3)[...], verified(tenant: "contoso"), now: now)
        XCTAssertEqual(cache.removeAll(tenant: "contoso"), 2)
        XCTAssertEqual(cache.count, 1)
        XCTAssertNil(cache.lookup(token(1)[...], now: now))
        XCTAssertNil(cache.lookup(token(3)[...], now: now))
        XCTAssertEqual(cache.lookup(token(2)[...], now: now)?.tenant, "fabrikam")
        cache.removeAll()
        XCTAssertEqual(cache.count, 0)
    }

    func testVerifierAndCacheTogether() throws {
        let verifier = try Fixture.verifier()
        var cache = VerifiedTokenCache(capacity: 16)
        let token = try Fixture.mint(Fixture.claims(), with: Fixture.ec256)[...]
        XCTAssertNil(cache.lookup(token, now: Fixture.now))
        let verified = try verifier.verify(token, now: Fixture.now).get()
        cache.insert(token, verified, now: Fixture.now)
        XCTAssertEqual(cache.lookup(token, now: Fixture.now + 1), verified)
        XCTAssertNil(cache.lookup(token, now: verified.expiresAt))
    }
}
