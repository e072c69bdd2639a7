import NIOCore
import NIOHTTP2
import XCTest
@testable import ProxyEngine

/// The deadlines of an HTTP/2 connection and the errors that close it, as values.
final class HTTP2ConnectionLifecycleTests: XCTestCase {
    private static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private static let timeout = TimeAmount.seconds(10)

    func testThePrefaceMustComeInTime() {
        var lifecycle = HTTP2ConnectionLifecycle(timeout: Self.timeout, now: Self.start)
        XCTAssertEqual(lifecycle.deadline, Self.start + Self.timeout)
        XCTAssertEqual(lifecycle.timerFired(now: Self.start + .seconds(4)), .armTimer(Self.start + Self.timeout), "fired early: wait on")
        guard case .close = lifecycle.timerFired(now: Self.start + Self.timeout) else { return XCTFail("not closed") }
        XCTAssertEqual(lifecycle.stage, .closed)
    }

    func testTheFirstFrameEndsThePrefaceWait() {
        var lifecycle = HTTP2ConnectionLifecycle(timeout: Self.timeout, now: Self.start)
        XCTAssertEqual(lifecycle.frameReceived(), .cancelTimer)
        XCTAssertEqual(lifecycle.frameReceived(), .none, "later frames change nothing")
        XCTAssertEqual(lifecycle.timerFired(now: Self.start + .seconds(60)), .none)
        XCTAssertNil(lifecycle.deadline)
    }

    func testAGracefulCloseWhosePingIsNotAcknowledgedCloses() {
        var lifecycle = HTTP2ConnectionLifecycle(timeout: Self.timeout, now: Self.start)
        _ = lifecycle.frameReceived()
        let sent = Self.start + .seconds(60)
        XCTAssertEqual(lifecycle.goAwaySent(lastStreamID: .maxID, now: sent), .armTimer(sent + Self.timeout))
        guard case .close = lifecycle.timerFired(now: sent + Self.timeout) else { return XCTFail("not closed") }
    }

    func testTheFinalGoAwayLeavesTheCloseToTheLastStream() {
        var lifecycle = HTTP2ConnectionLifecycle(timeout: Self.timeout, now: Self.start)
        _ = lifecycle.frameReceived()
        _ = lifecycle.goAwaySent(lastStreamID: .maxID, now: Self.start)
        XCTAssertEqual(lifecycle.goAwaySent(lastStreamID: HTTP2StreamID(7), now: Self.start + .milliseconds(1)), .cancelTimer)
        XCTAssertEqual(lifecycle.stage, .draining)
        XCTAssertEqual(lifecycle.timerFired(now: Self.start + .seconds(3600)), .none, "streams end by their own timeouts")
    }

    func testStreamErrorsKeepTheConnectionAndConnectionErrorsCloseIt() {
        let kept: [any Error] = [
            NIOHTTP2Errors.streamError(streamID: HTTP2StreamID(3), baseError: NIOHTTP2Errors.createdStreamAfterGoaway()),
            NIOHTTP2Errors.missingPseudoHeader(":path"), NIOHTTP2Errors.forbiddenHeaderField(name: "connection", value: "close"),
            NIOHTTP2Errors.contentLengthViolated(),
        ]
        for error in kept { XCTAssertFalse(HTTP2ConnectionLifecycle.closesConnection(error), "\(error)") }
        let closing: [any Error] = [
            NIOHTTP2Errors.excessiveRSTFrames(), NIOHTTP2Errors.excessiveContinuationFrames(), NIOHTTP2Errors.excessiveControlFrames(),
            NIOHTTP2Errors.excessivelyLargeHeaderBlock(), NIOHTTP2Errors.maxStreamsViolation(), NIOHTTP2Errors.flowControlViolation(),
            IOError(errnoCode: ECONNRESET, reason: "read"),
        ]
        for error in closing { XCTAssertTrue(HTTP2ConnectionLifecycle.closesConnection(error), "\(error)") }
    }
}
