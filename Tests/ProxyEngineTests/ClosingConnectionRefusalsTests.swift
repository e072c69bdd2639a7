import Hierarchy
import NIOCore
import XCTest
@testable import ProxyEngine

/// The per-customer pacing of refusals on connections that close after their answer, as a value.
final class ClosingConnectionRefusalsTests: XCTestCase {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private let wait = TimeAmount.milliseconds(100)

    private func customer(_ index: Int) -> NodeID { try! NodeID("c\(index)") }

    func testFromTheThirdRefusalInARowTheAnswerWaitsDoublingUpToTheLongestPause() {
        var refusals = ClosingConnectionRefusals()
        let pauses = (0..<8).map { _ in refusals.refused(self.customer(1), retryAfter: self.wait, now: self.start) }
        XCTAssertEqual(pauses, [nil, nil, .milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1)])
        XCTAssertEqual(refusals.held, 6)
        XCTAssertNil(refusals.refused(self.customer(2), retryAfter: self.wait, now: self.start), "another customer's first refusal is answered at once")
    }

    func testAnAdmissionOrTwoQuietSecondsStartTheCountAgain() {
        var refusals = ClosingConnectionRefusals()
        for _ in 0..<3 { _ = refusals.refused(self.customer(1), retryAfter: self.wait, now: self.start) }
        refusals.admitted(self.customer(1))
        XCTAssertTrue(refusals.isEmpty)
        XCTAssertNil(refusals.refused(self.customer(1), retryAfter: self.wait, now: self.start))

        for _ in 0..<2 { _ = refusals.refused(self.customer(1), retryAfter: self.wait, now: self.start) }
        XCTAssertNil(
            refusals.refused(self.customer(1), retryAfter: self.wait, now: self.start + ClosingConnectionRefusals.forgetAfter),
            "no refusal for the forget interval: the first of a new count"
        )
    }

    func testPastTheHeldBoundARefusalIsAnsweredAtOnce() {
        var refusals = ClosingConnectionRefusals()
        var held = 0
        var index = 0
        while held < ClosingConnectionRefusals.maxHeld {
            for _ in 0..<3 where held < ClosingConnectionRefusals.maxHeld {
                if refusals.refused(self.customer(index), retryAfter: self.wait, now: self.start) != nil { held += 1 }
            }
            index += 1
        }
        XCTAssertEqual(refusals.held, ClosingConnectionRefusals.maxHeld)
        XCTAssertNil(refusals.refused(self.customer(0), retryAfter: self.wait, now: self.start), "a connection per held answer: bounded")
        refusals.released()
        XCTAssertNotNil(refusals.refused(self.customer(0), retryAfter: self.wait, now: self.start))
    }

    func testAtCapacityANewCustomerIsAnsweredAtOnceUntilStaleOnesAreForgotten() {
        var refusals = ClosingConnectionRefusals()
        for index in 0..<ClosingConnectionRefusals.capacity {
            _ = refusals.refused(self.customer(index), retryAfter: self.wait, now: self.start)
        }
        let newcomer = self.customer(ClosingConnectionRefusals.capacity)
        for _ in 0..<3 {
            XCTAssertNil(refusals.refused(newcomer, retryAfter: self.wait, now: self.start), "not remembered, so never counted")
        }
        let later = self.start + ClosingConnectionRefusals.forgetAfter
        for _ in 0..<2 { XCTAssertNil(refusals.refused(newcomer, retryAfter: self.wait, now: later)) }
        XCTAssertNotNil(refusals.refused(newcomer, retryAfter: self.wait, now: later), "the stale ones were swept: the newcomer counts")
    }
}
