import NIOCore
import NIOWebSocket
import XCTest

@testable import ProxyEngine

/// The relayed WebSocket as a value: the close handshake each way, the gateway's own close
/// (lifetimes, drain, suspension), and the session ending once.
final class WebSocketSessionStateMachineTests: XCTestCase {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func machine(idle: Int64 = 10, lifetime: Int64 = 100, grace: Int64 = 2) -> WebSocketSessionStateMachine {
        WebSocketSessionStateMachine(openedAt: self.start, idleTimeout: .seconds(idle), maxLifetime: .seconds(lifetime), closeGrace: .seconds(grace))
    }

    func testDataFramesAreForwardedAndCounted() {
        var machine = self.machine()
        XCTAssertEqual(machine.frameArrived(from: .client, opcode: .text, payloadBytes: 5, now: self.start), .forward)
        XCTAssertEqual(machine.frameArrived(from: .upstream, opcode: .binary, payloadBytes: 7, now: self.start), .forward)
        XCTAssertEqual(machine.frameArrived(from: .client, opcode: .ping, payloadBytes: 0, now: self.start), .forward)
        XCTAssertEqual(machine.bytesFromClient, 5)
        XCTAssertEqual(machine.bytesFromUpstream, 7)
    }

    func testAClientsCloseIsForwardedAndTheAnswerFinishes() {
        var machine = self.machine()
        XCTAssertEqual(machine.frameArrived(from: .client, opcode: .connectionClose, payloadBytes: 2, now: self.start), .forward)
        XCTAssertFalse(machine.mayWrite(to: .upstream), "nothing follows a close frame")
        XCTAssertTrue(machine.mayWrite(to: .client))
        XCTAssertEqual(machine.frameArrived(from: .client, opcode: .text, payloadBytes: 1, now: self.start), .drop(finish: false), "nothing after its own close")
        XCTAssertEqual(machine.frameArrived(from: .upstream, opcode: .text, payloadBytes: 1, now: self.start), .forward, "the other way is open until its close")
        XCTAssertEqual(machine.frameArrived(from: .upstream, opcode: .connectionClose, payloadBytes: 2, now: self.start), .forwardAndFinish)
        XCTAssertTrue(machine.ended)
    }

    func testIdleTimeoutClosesWith1001ToBothSidesThenCutsAfterTheGrace() {
        var machine = self.machine(idle: 10, grace: 2)
        XCTAssertEqual(machine.nextDeadline, self.start + .seconds(10))
        _ = machine.frameArrived(from: .client, opcode: .text, payloadBytes: 1, now: self.start + .seconds(5))
        XCTAssertEqual(machine.deadlinesReached(now: self.start + .seconds(10)), .none, "activity moved the idle deadline")
        XCTAssertEqual(machine.nextDeadline, self.start + .seconds(15))
        XCTAssertEqual(machine.deadlinesReached(now: self.start + .seconds(15)), .close(.idle, sides: [.client, .upstream]))
        XCTAssertEqual(WebSocketSessionStateMachine.CloseReason.idle.code, .goingAway)
        XCTAssertEqual(machine.nextDeadline, self.start + .seconds(17), "only the cut is left, not the idle deadline behind it")
        XCTAssertEqual(machine.deadlinesReached(now: self.start + .seconds(16)), .none, "the close frames go once")
        XCTAssertEqual(machine.deadlinesReached(now: self.start + .seconds(17)), .cut, "nobody answered within the grace")
        XCTAssertTrue(machine.ended)
        XCTAssertEqual(machine.deadlinesReached(now: self.start + .seconds(30)), .none)
    }

    func testMaxLifetimeClosesABusySocket() {
        var machine = self.machine(idle: 10, lifetime: 20)
        for second in stride(from: 1, through: 19, by: 3) {
            _ = machine.frameArrived(from: .upstream, opcode: .text, payloadBytes: 1, now: self.start + .seconds(Int64(second)))
        }
        XCTAssertEqual(machine.nextDeadline, self.start + .seconds(20))
        XCTAssertEqual(machine.deadlinesReached(now: self.start + .seconds(20)), .close(.maxLifetime, sides: [.client, .upstream]))
    }

    func testDrainClosesAfterTheGraceAndTheAnswersFinish() {
        var machine = self.machine(grace: 2)
        machine.goAway(.draining, now: self.start + .seconds(1))
        machine.goAway(.draining, now: self.start + .seconds(2))
        XCTAssertEqual(machine.frameArrived(from: .client, opcode: .text, payloadBytes: 1, now: self.start + .seconds(2)), .forward, "runs on meanwhile")
        XCTAssertEqual(machine.nextDeadline, self.start + .seconds(3), "the first drain's moment")
        XCTAssertEqual(machine.deadlinesReached(now: self.start + .seconds(3)), .close(.draining, sides: [.client, .upstream]))
        XCTAssertEqual(machine.nextDeadline, self.start + .seconds(5), "the cut, not the drain moment behind it")
        XCTAssertEqual(WebSocketSessionStateMachine.CloseReason.draining.code, .goingAway)
        XCTAssertEqual(machine.frameArrived(from: .upstream, opcode: .text, payloadBytes: 1, now: self.start + .seconds(3)), .drop(finish: false))
        XCTAssertEqual(machine.frameArrived(from: .upstream, opcode: .connectionClose, payloadBytes: 2, now: self.start + .seconds(3)), .drop(finish: false))
        XCTAssertEqual(machine.frameArrived(from: .client, opcode: .connectionClose, payloadBytes: 2, now: self.start + .seconds(3)), .drop(finish: true))
        XCTAssertTrue(machine.ended)
    }

    func testSuspensionClosesAtOnceWithPolicyViolationOnce() {
        var machine = self.machine()
        XCTAssertEqual(machine.close(.tenantSuspended, now: self.start), [.client, .upstream])
        XCTAssertEqual(machine.close(.tokenRevoked, now: self.start), [], "already closing")
        XCTAssertEqual(machine.closeReason, .tenantSuspended)
        XCTAssertEqual(WebSocketSessionStateMachine.CloseReason.tenantSuspended.code, .policyViolation)
        XCTAssertEqual(WebSocketSessionStateMachine.CloseReason.tokenRevoked.code, .policyViolation)
    }

    func testAfterAClientsCloseTheGatewayClosesOnlyTheClientSide() {
        var machine = self.machine()
        _ = machine.frameArrived(from: .client, opcode: .connectionClose, payloadBytes: 2, now: self.start)
        XCTAssertEqual(machine.close(.draining, now: self.start), [.client], "the upstream got the client's close already")
    }

    func testTheSessionEndsOnceWhateverClosesIt() {
        var machine = self.machine()
        XCTAssertTrue(machine.connectionClosed())
        XCTAssertFalse(machine.connectionClosed())
        XCTAssertEqual(machine.close(.idle, now: self.start), [])
        XCTAssertEqual(machine.frameArrived(from: .client, opcode: .text, payloadBytes: 1, now: self.start), .drop(finish: false))
    }
}
