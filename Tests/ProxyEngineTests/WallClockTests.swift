import NIOCore
import NIOEmbedded
import XCTest
@testable import ProxyEngine

final class WallClockTests: XCTestCase {
    func testAFollowingClockAdvancesWithTheLoopsVirtualTime() {
        let loop = EmbeddedEventLoop()
        let clock = WallClock.following(loop, from: 1_800_000_000_000_000)
        XCTAssertEqual(clock.nowMicroseconds, 1_800_000_000_000_000)
        loop.advanceTime(by: .milliseconds(1_500))
        XCTAssertEqual(clock.nowMicroseconds, 1_800_000_001_500_000)
        XCTAssertEqual(clock.nowSeconds, 1_800_000_001)
    }

    func testTheSystemClockIsTheUnixTime() {
        let before = Int64(Date().timeIntervalSince1970)
        let now = WallClock.system.nowSeconds
        XCTAssertTrue((before - 1...before + 1).contains(now))
    }
}
