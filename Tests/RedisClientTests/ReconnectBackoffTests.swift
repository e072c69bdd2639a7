import RedisClient
import XCTest

/// Pure values: no sockets, no clock, no sleeps. Time is whatever integer the test says.
final class ReconnectBackoffTests: XCTestCase {
    private let ms: Int64 = 1_000_000

    private func configuration(jitter: Double) -> ReconnectBackoff.Configuration {
        ReconnectBackoff.Configuration(initialDelayNanoseconds: 100 * ms, maximumDelayNanoseconds: 1_000 * ms, multiplier: 2, jitter: jitter)
    }

    private func delays(_ backoff: inout ReconnectBackoff, count: Int, random: inout some RandomNumberGenerator) -> [Int64] {
        (0..<count).map { step in
            switch backoff.connectionFailed(now: Int64(step) * ms, using: &random) {
            case .retry(let delay): delay
            }
        }
    }

    func testDelaysGrowByTheMultiplierUpToTheCap() {
        var backoff = ReconnectBackoff(configuration: configuration(jitter: 0))
        var random = FixedRandom(fraction: 0.7)
        XCTAssertEqual(delays(&backoff, count: 7, random: &random), [100, 200, 400, 800, 1_000, 1_000, 1_000].map { $0 * ms })
        XCTAssertEqual(backoff.consecutiveFailures, 7)
    }

    func testTheCapHoldsForeverWithoutOverflow() {
        let huge = ReconnectBackoff.Configuration(initialDelayNanoseconds: 1, maximumDelayNanoseconds: .max, multiplier: 1_000, jitter: 0)
        var backoff = ReconnectBackoff(configuration: huge)
        var random = FixedRandom(fraction: 0)
        let all = delays(&backoff, count: 20, random: &random)
        XCTAssertEqual(all.prefix(3), [1, 1_000, 1_000_000])
        XCTAssertEqual(all.last, .max)
        XCTAssertEqual(all, all.sorted())
    }

    func testJitterRemovesAtMostItsShareAndNeverAddsDelay() {
        var random = SplitMix64(seed: 42)
        var backoff = ReconnectBackoff(configuration: configuration(jitter: 0.5))
        let jittered = delays(&backoff, count: 200, random: &random)
        let ceilings = [100, 200, 400, 800].map { $0 * ms } + Array(repeating: 1_000 * ms, count: 196)
        for (delay, ceiling) in zip(jittered, ceilings) {
            XCTAssertLessThanOrEqual(delay, ceiling)
            XCTAssertGreaterThan(delay, ceiling / 2)
        }
        XCTAssertGreaterThan(Set(jittered.suffix(196)).count, 100, "jitter spreads the capped delays")
    }

    func testJitterExtremes() {
        var backoff = ReconnectBackoff(configuration: configuration(jitter: 0.5))
        var none = FixedRandom(fraction: 0)
        XCTAssertEqual(backoff.connectionFailed(now: 0, using: &none), .retry(afterNanoseconds: 100 * ms))
        var almostAll = FixedRandom(fraction: 0.999_999)
        guard case .retry(let delay) = backoff.connectionFailed(now: 0, using: &almostAll) else { return XCTFail() }
        XCTAssertGreaterThan(delay, 100 * ms)  // 200 ms less just under half
        XCTAssertLessThan(delay, 101 * ms)
    }

    func testFullJitterNeverGivesAZeroDelay() {
        var backoff = ReconnectBackoff(configuration: .init(initialDelayNanoseconds: 1, maximumDelayNanoseconds: 1, multiplier: 1, jitter: 1))
        var random = FixedRandom(fraction: 0.999_999)
        XCTAssertEqual(backoff.connectionFailed(now: 0, using: &random), .retry(afterNanoseconds: 1))
    }

    func testConnectedResetsTheDelayAndTheFailureCount() {
        var backoff = ReconnectBackoff(configuration: configuration(jitter: 0))
        var random = FixedRandom(fraction: 0)
        _ = delays(&backoff, count: 5, random: &random)
        backoff.connected()
        XCTAssertEqual(backoff.consecutiveFailures, 0)
        XCTAssertEqual(delays(&backoff, count: 2, random: &random), [100 * ms, 200 * ms])
    }

    func testAvailabilityFollowsTheConnection() {
        var backoff = ReconnectBackoff()
        var random = FixedRandom(fraction: 0)
        XCTAssertEqual(backoff.state, .initial)
        XCTAssertTrue(backoff.isAvailable, "before any attempt: optimistic, the first attempt is bounded")

        _ = backoff.connectionFailed(now: 5_000, using: &random)
        XCTAssertFalse(backoff.isAvailable)
        XCTAssertEqual(backoff.disconnectedSinceNanoseconds, 5_000)

        backoff.connected()
        XCTAssertTrue(backoff.isAvailable)
        XCTAssertEqual(backoff.state, .connected)
        XCTAssertNil(backoff.disconnectedSinceNanoseconds)
    }

    func testAnOutageIsDatedFromItsFirstFailure() {
        var backoff = ReconnectBackoff()
        var random = FixedRandom(fraction: 0)
        backoff.connected()
        _ = backoff.connectionFailed(now: 1_000, using: &random)
        _ = backoff.connectionFailed(now: 9_000, using: &random)
        _ = backoff.connectionFailed(now: 20_000, using: &random)
        XCTAssertEqual(backoff.state, .disconnected(sinceNanoseconds: 1_000))

        backoff.connected()
        _ = backoff.connectionFailed(now: 50_000, using: &random)
        XCTAssertEqual(backoff.disconnectedSinceNanoseconds, 50_000, "a new outage, a new date")
    }

    func testSameSeedSameSchedule() {
        var first = ReconnectBackoff(), second = ReconnectBackoff()
        var randomA = SplitMix64(seed: 7), randomB = SplitMix64(seed: 7)
        XCTAssertEqual(delays(&first, count: 10, random: &randomA), delays(&second, count: 10, random: &randomB))
    }
}

/// Always the same fraction of the range: `Double.random(in: 0..<1)` returns about `fraction`.
struct FixedRandom: RandomNumberGenerator {
    let fraction: Double

    mutating func next() -> UInt64 {
        UInt64(self.fraction * Double(UInt64.max >> 11)) << 11
    }
}

/// A tiny seeded generator, so a jittered schedule is reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
