import IssuerKeyFetch
import XCTest

/// The refresh schedule, Cache-Control and the discovery document as values, with an injected
/// clock (seconds).
final class KeyRefreshScheduleTests: XCTestCase {
    static let bounds = KeyRefreshSchedule.Bounds(minimumRefresh: 60, defaultRefresh: 600, maximumRefresh: 86_400, staleKeysFor: 3600)

    func testTheFirstFetchIsDueAtOnceAndOneRunsAtATime() {
        var schedule = KeyRefreshSchedule(bounds: Self.bounds, now: 1000)
        XCTAssertEqual(schedule.tick(now: 1000), .fetch)
        XCTAssertEqual(schedule.tick(now: 5000), .wait, "one fetch at a time")
        XCTAssertEqual(schedule.unknownKey(now: 5000), .wait)
    }

    func testMaxAgeIsHeldWithinTheBounds() {
        XCTAssertEqual(Self.bounds.refreshInterval(maxAge: nil), 600)
        XCTAssertEqual(Self.bounds.refreshInterval(maxAge: 5), 60, "raised to minimumRefresh")
        XCTAssertEqual(Self.bounds.refreshInterval(maxAge: 3000), 3000)
        XCTAssertEqual(Self.bounds.refreshInterval(maxAge: 10_000_000), 86_400, "lowered to maximumRefresh")
        var schedule = KeyRefreshSchedule(bounds: Self.bounds, now: 0)
        _ = schedule.tick(now: 0)
        schedule.succeeded(now: 1, maxAge: 3000)
        XCTAssertEqual(schedule.tick(now: 3000), .wait)
        XCTAssertEqual(schedule.tick(now: 3001), .fetch)
    }

    func testAnUnknownKidRefreshesEarlyAtMostOncePerMinimumRefresh() {
        var schedule = KeyRefreshSchedule(bounds: Self.bounds, now: 0)
        _ = schedule.tick(now: 0)
        schedule.succeeded(now: 1, maxAge: 86_400)
        // Within a minute of the last fetch's start: no early fetch, however many kids.
        for second in stride(from: 1.0, to: 60, by: 0.5) {
            XCTAssertEqual(schedule.unknownKey(now: second), .wait)
        }
        XCTAssertEqual(schedule.unknownKey(now: 60), .fetch)
        schedule.succeeded(now: 60.2, maxAge: 86_400)
        var fetches = 0
        // A flood over ten minutes: at most one fetch per minute.
        for tenth in 603...6600 where schedule.unknownKey(now: Double(tenth) / 10) == .fetch {
            fetches += 1
            schedule.succeeded(now: Double(tenth) / 10, maxAge: 86_400)
        }
        XCTAssertEqual(fetches, 10)
    }

    func testFailuresRetryAfterMinimumRefreshAndKeysExpireStaleKeysForAfterTheirRefreshWasDue() {
        var schedule = KeyRefreshSchedule(bounds: Self.bounds, now: 0)
        _ = schedule.tick(now: 0)
        XCTAssertFalse(schedule.keysExpired(now: 1_000_000), "no keys, nothing to expire")
        schedule.succeeded(now: 0, maxAge: 600)
        XCTAssertEqual(schedule.usableUntil, 600 + 3600)
        XCTAssertEqual(schedule.tick(now: 600), .fetch)
        schedule.failed(now: 601)
        XCTAssertEqual(schedule.tick(now: 660), .wait)
        XCTAssertEqual(schedule.tick(now: 661), .fetch)
        schedule.failed(now: 662)
        XCTAssertEqual(schedule.usableUntil, 4200, "failures never extend the bound")
        XCTAssertFalse(schedule.keysExpired(now: 4199))
        XCTAssertTrue(schedule.keysExpired(now: 4200))
        _ = schedule.tick(now: 4300)
        schedule.succeeded(now: 4300, maxAge: nil)
        XCTAssertFalse(schedule.keysExpired(now: 4301))
    }

    func testCacheControlMaxAge() {
        XCTAssertNil(CacheControl.maxAge(nil))
        XCTAssertNil(CacheControl.maxAge("public"))
        XCTAssertEqual(CacheControl.maxAge("public, max-age=300"), 300)
        XCTAssertEqual(CacheControl.maxAge("Max-Age = 42 , must-revalidate"), 42)
        XCTAssertEqual(CacheControl.maxAge(#"max-age="7""#), 7)
        XCTAssertEqual(CacheControl.maxAge("max-age=99999999999999999999999"), Int64.max)
        XCTAssertNil(CacheControl.maxAge("max-age=-1"))
        XCTAssertEqual(CacheControl.maxAge("no-store"), 0)
        XCTAssertEqual(CacheControl.maxAge("max-age=600, no-cache"), 0)
    }

    func testDiscoveryDocumentIssuerMustMatchAndJWKSMustBeHTTPS() throws {
        let text = #"{"issuer":"https://id.example","jwks_uri":"https://id.example/keys","response_types_supported":["code"]}"#
        let document = try DiscoveryDocument.parse(Array(text.utf8))
        XCTAssertEqual(try document.jwksURL(forIssuer: "https://id.example"), "https://id.example/keys")
        XCTAssertThrowsError(try document.jwksURL(forIssuer: "https://id.example/")) { XCTAssertEqual($0 as? FetchFailure, .issuerMismatch) }
        let plain = try DiscoveryDocument.parse(Array(#"{"issuer":"i","jwks_uri":"http://id.example/keys"}"#.utf8))
        XCTAssertThrowsError(try plain.jwksURL(forIssuer: "i")) { XCTAssertEqual($0 as? FetchFailure, .insecureKeySetURL) }
        XCTAssertThrowsError(try DiscoveryDocument.parse(Array(#"{"issuer":"i"}"#.utf8))) { XCTAssertEqual($0 as? FetchFailure, .notADiscoveryDocument) }
    }
}
