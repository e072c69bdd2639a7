import TokenAuth
import XCTest
@testable import ProxyEngine

/// When a new set of fetched keys reaches an event loop, its cache of verified tokens is
/// emptied exactly when a key was withdrawn: tokens a withdrawn key verified must be checked
/// again, while a plain refresh (same keys, a later bound) keeps the cache.
final class FetchedKeysOnTheLoopTests: XCTestCase {
    func testOnlyAWithdrawnKeyOrADroppedSetEmptiesTheCache() throws {
        let secret = [UInt8](repeating: 7, count: 32)
        let a = try VerificationKey(kid: "a", algorithm: .HS256, secret: secret)
        let b = try VerificationKey(kid: "b", algorithm: .HS256, secret: secret)
        let first = IssuerKeySet(keys: [a], usableUntil: 100)
        let old = FetchedKeySets(["i": first])

        XCTAssertFalse(ProxyEnvironment.withdrawsKeys(from: old, to: old), "the same set")
        XCTAssertFalse(ProxyEnvironment.withdrawsKeys(from: old, to: FetchedKeySets(["i": first.extended(until: 200)])), "refreshed, same keys")
        XCTAssertFalse(ProxyEnvironment.withdrawsKeys(from: old, to: FetchedKeySets(["i": IssuerKeySet(keys: [a, b], usableUntil: 200)])), "a key added")
        XCTAssertTrue(ProxyEnvironment.withdrawsKeys(from: old, to: FetchedKeySets(["i": IssuerKeySet(keys: [b], usableUntil: 200)])), "rotated away")
        XCTAssertTrue(ProxyEnvironment.withdrawsKeys(from: old, to: .none), "the set dropped past its bound")
        XCTAssertFalse(ProxyEnvironment.withdrawsKeys(from: .none, to: old), "the first keys")
    }
}
