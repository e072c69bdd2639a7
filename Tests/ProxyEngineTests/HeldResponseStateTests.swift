import NIOCore
import NIOHTTP1
import XCTest
@testable import ProxyEngine

/// The exchange while a response is held to be masked: the client has seen nothing, so a
/// failure is still answered with a problem, and no response deadline runs any more.
final class HeldResponseStateTests: XCTestCase {
    private static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func connected(reused: Bool = true) -> ExchangeStateMachine {
        var machine = ExchangeStateMachine(
            method: .GET, hasBody: false, clientKeepsAlive: true, maxRequestBodyBytes: 100, bodyIdle: .seconds(5),
            responseTimeout: .seconds(30), started: Self.start
        )
        machine.startForwarding()
        machine.endpointChosen(responseTimeout: .seconds(30))
        _ = machine.connected(reused: reused, now: Self.start)
        return machine
    }

    func testAHeldResponseThatBreaksOffIsAnsweredNotCutNorResent() {
        var machine = self.connected()
        _ = machine.requestEnded(now: Self.start)
        machine.responseHeadHeld(status: 200, upstreamKeepsAlive: true)
        XCTAssertFalse(machine.responseStarted)
        XCTAssertNil(machine.responseStatus, "the client has no status yet")
        XCTAssertNil(machine.nextDeadline, "the head arrived: no response deadline")
        // A replayable request on a reused connection would be resent were nothing answered yet.
        XCTAssertEqual(machine.upstreamClosed(), .failHeldResponse)
        XCTAssertEqual(machine.answering(status: 502, closesConnection: false, connectionClosing: false), .answer(.keepOpen))
    }

    func testARequestEndingAfterTheHeadWasHeldArmsNoResponseDeadline() {
        var machine = self.connected()
        machine.responseHeadHeld(status: 200, upstreamKeepsAlive: true)
        XCTAssertEqual(machine.requestEnded(now: Self.start), .forwardEnd(responseDeadline: nil))
        XCTAssertEqual(machine.deadlinesReached(now: Self.start + .seconds(60)), .none)
    }

    func testTheHeldResponseIsSentAsARelayedOne() {
        var machine = self.connected()
        _ = machine.requestEnded(now: Self.start)
        machine.responseHeadHeld(status: 200, upstreamKeepsAlive: true)
        XCTAssertEqual(machine.responseHeadReceived(status: 200, upstreamKeepsAlive: true, connectionClosing: false), .keepOpen)
        machine.responseBodyReceived(bytes: 42)
        XCTAssertEqual(machine.responseEnded(), ExchangeStateMachine.ResponseEnd(upstreamReusable: true, then: .keepOpen))
        XCTAssertEqual(machine.responseBytes, 42)
    }
}
