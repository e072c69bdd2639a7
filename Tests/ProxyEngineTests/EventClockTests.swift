import NIOCore
import XCTest
@testable import ProxyEngine

final class EventClockTests: XCTestCase {
    /// A clock that answers a later instant each time it is read, and counts the reads.
    private final class Ticking {
        var reads = 0
        func read() -> NIODeadline {
            self.reads += 1
            return .uptimeNanoseconds(UInt64(self.reads) * 1_000)
        }
    }

    func testOutsideAnEventEveryCallReadsTheClock() {
        let source = Ticking()
        var clock = EventClock()
        XCTAssertEqual(clock.now(source.read), .uptimeNanoseconds(1_000))
        XCTAssertEqual(clock.now(source.read), .uptimeNanoseconds(2_000))
        XCTAssertEqual(source.reads, 2)
    }

    func testOneEventReadsTheClockOnceAndTheNextReadsItAnew() {
        let source = Ticking()
        var clock = EventClock()
        clock.enter()
        let first = clock.now(source.read)
        XCTAssertEqual(clock.now(source.read), first)
        XCTAssertEqual(clock.now(source.read), first)
        clock.leave()
        XCTAssertEqual(source.reads, 1)

        clock.enter()
        XCTAssertGreaterThan(clock.now(source.read), first, "a new event does not keep the last one's instant")
        clock.leave()
        XCTAssertEqual(source.reads, 2)
    }

    func testAnEventStartedWithinAnotherSharesItsReadingUntilTheOuterOneEnds() {
        let source = Ticking()
        var clock = EventClock()
        clock.enter()
        let outer = clock.now(source.read)
        clock.enter()
        XCTAssertEqual(clock.now(source.read), outer)
        clock.leave()
        XCTAssertEqual(clock.now(source.read), outer, "the outer event is still being handled")
        clock.leave()
        XCTAssertNotEqual(clock.now(source.read), outer)
        XCTAssertEqual(source.reads, 2)
    }
}
