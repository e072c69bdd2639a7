import NIOCore
import NIOHTTP1
import XCTest
@testable import ProxyEngine

/// The connection's decisions as values: no channel, no clock.
final class ClientConnectionStateMachineTests: XCTestCase {
    typealias Machine = ClientConnectionStateMachine
    private static let head = ClientRequestPart.head(RelayedRequestHead(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/next")))

    // MARK: Timers between requests

    // MARK: Refusals in a row

    func testAConnectionPausesFromItsThirdQuotaRefusalInARowForTheRetryAfterCapped() {
        var machine = Machine()
        XCTAssertNil(machine.exchangeEnded(quotaRetryAfter: .seconds(1)))
        XCTAssertNil(machine.exchangeEnded(quotaRetryAfter: .seconds(1)))
        XCTAssertEqual(machine.exchangeEnded(quotaRetryAfter: .seconds(1)), .seconds(1))
        XCTAssertTrue(machine.pausedAfterRefusals)
        XCTAssertFalse(machine.shouldRead(.none), "nothing is read while paused")
        XCTAssertEqual(machine.partArrived(Self.head, stage: .none), .held, "what was already read waits too")
        machine.pauseEnded()
        XCTAssertTrue(machine.shouldRead(.none) == false, "the held request is served first")
        XCTAssertNotNil(machine.nextPipelinedPart())
        XCTAssertTrue(machine.shouldRead(.none))

        XCTAssertEqual(machine.exchangeEnded(quotaRetryAfter: .seconds(30)), Machine.longestPause, "capped")
        machine.pauseEnded()
    }

    func testThePauseDoublesWithEachFurtherRefusalInARow() {
        var machine = Machine()
        _ = machine.exchangeEnded(quotaRetryAfter: .zero)
        _ = machine.exchangeEnded(quotaRetryAfter: .zero)
        XCTAssertEqual(machine.exchangeEnded(quotaRetryAfter: .zero), Machine.shortestPause, "a concurrency refusal says 0")
        XCTAssertEqual(machine.exchangeEnded(quotaRetryAfter: .milliseconds(30)), .milliseconds(60))
        XCTAssertEqual(machine.exchangeEnded(quotaRetryAfter: .milliseconds(30)), .milliseconds(120))
        for _ in 0..<40 { _ = machine.exchangeEnded(quotaRetryAfter: .milliseconds(30)) }
        XCTAssertEqual(machine.exchangeEnded(quotaRetryAfter: .milliseconds(30)), Machine.longestPause)
        XCTAssertNil(machine.exchangeEnded(quotaRetryAfter: nil), "an admitted request starts the count again")
        XCTAssertNil(machine.exchangeEnded(quotaRetryAfter: .milliseconds(30)))
    }

    func testAnyOtherAnswerResetsTheCount() {
        var machine = Machine()
        XCTAssertNil(machine.exchangeEnded(quotaRetryAfter: .seconds(1)))
        XCTAssertNil(machine.exchangeEnded(quotaRetryAfter: .seconds(1)))
        XCTAssertNil(machine.exchangeEnded(quotaRetryAfter: nil), "an admitted request, or another tenant's")
        XCTAssertNil(machine.exchangeEnded(quotaRetryAfter: .seconds(1)))
        XCTAssertNil(machine.exchangeEnded(quotaRetryAfter: .seconds(1)))
        XCTAssertFalse(machine.pausedAfterRefusals)
    }

    func testANewConnectionWaitsForAHeadThenKeepAliveWaitsIdleUntilTheFirstByte() {
        var machine = Machine()
        XCTAssertEqual(machine.awaitRequest(first: true), .headerRead)
        XCTAssertNil(machine.awaitRequest(first: true), "one timer at a time")
        XCTAssertEqual(machine.waitTimerFired(hasExchange: false), .answer(.requestHeaderTimeout))
        machine.stopWaiting()  // a head arrived
        XCTAssertEqual(machine.waitTimerFired(hasExchange: true), .ignore)

        XCTAssertEqual(machine.awaitRequest(first: false), .idle)
        XCTAssertEqual(machine.waitTimerFired(hasExchange: false), .close, "an idle keep-alive connection closes silently")
        XCTAssertEqual(machine.firstByteArrived(), .headerRead)
        XCTAssertNil(machine.firstByteArrived(), "only the first byte switches timers")
        XCTAssertEqual(machine.waitTimerFired(hasExchange: false), .answer(.requestHeaderTimeout))
    }

    func testNoTimerOnceClosing() {
        var machine = Machine()
        machine.startClosing()
        XCTAssertNil(machine.awaitRequest(first: true))
        XCTAssertEqual(machine.waitTimerFired(hasExchange: false), .ignore)
    }

    // MARK: Reading and pipelining

    func testPartsBehindACompleteRequestAreHeldAndReadingPausesUntilItIsAnswered() {
        var machine = Machine()
        XCTAssertEqual(machine.partArrived(Self.head, stage: .none), .handle)
        XCTAssertEqual(machine.partArrived(.end(nil), stage: .receiving(canTakeMore: true)), .handle)
        XCTAssertTrue(machine.shouldRead(.answering), "a complete request does not pause reading by itself")
        XCTAssertEqual(machine.partArrived(Self.head, stage: .answering), .held)
        XCTAssertEqual(machine.partArrived(.end(nil), stage: .answering), .held)
        XCTAssertFalse(machine.shouldRead(.answering), "one pipelined read is buffered at most")
        XCTAssertFalse(machine.readRequested(.answering))
        XCTAssertFalse(machine.resumeReading(.answering))

        // The answer is out: the held parts are replayed in order.
        XCTAssertEqual(machine.nextPipelinedPart().map(Self.describe), "head /next")
        XCTAssertEqual(machine.nextPipelinedPart().map(Self.describe), "end")
        XCTAssertNil(machine.nextPipelinedPart())
        XCTAssertEqual(machine.afterExchange(hasExchange: true), .continueExchange)
        XCTAssertTrue(machine.resumeReading(.answering), "the read held back happens now")
        XCTAssertFalse(machine.resumeReading(.answering), "once")
    }

    func testAStreamingRequestIsReadOnlyWhileItsBytesHaveSomewhereToGo() {
        var machine = Machine()
        XCTAssertFalse(machine.readRequested(.receiving(canTakeMore: false)), "the upstream is not connected or not writable")
        XCTAssertFalse(machine.resumeReading(.receiving(canTakeMore: false)))
        XCTAssertTrue(machine.resumeReading(.receiving(canTakeMore: true)))
        XCTAssertTrue(machine.readRequested(.receiving(canTakeMore: true)))
    }

    func testNothingIsReadOrHandledOnceClosing() {
        var machine = Machine()
        machine.startClosing()
        XCTAssertEqual(machine.partArrived(Self.head, stage: .none), .drop)
        XCTAssertFalse(machine.shouldRead(.none))
        XCTAssertFalse(machine.readRequested(.receiving(canTakeMore: true)))
    }

    // MARK: Errors

    func testAParseErrorIsAnsweredWhereItBelongs() {
        var machine = Machine()
        XCTAssertEqual(machine.errorCaught(HTTPParserError.invalidMethod, stage: .none, channelActive: true), .answerAndClose(.malformedRequest))
        XCTAssertEqual(
            machine.errorCaught(HTTPParserError.invalidChunkSize, stage: .receiving(canTakeMore: true), channelActive: true),
            .failExchange(.ambiguousFraming)
        )
        XCTAssertEqual(machine.errorCaught(IOError(errnoCode: ECONNRESET, reason: "read"), stage: .none, channelActive: true), .close)
        XCTAssertEqual(machine.errorCaught(HTTPParserError.invalidMethod, stage: .none, channelActive: false), .close)
    }

    func testAParseErrorBehindACompleteRequestWaitsForItsAnswer() {
        var machine = Machine()
        XCTAssertEqual(machine.errorCaught(HTTPParserError.headerOverflow, stage: .answering, channelActive: true), .deferred)
        XCTAssertFalse(machine.shouldRead(.answering), "nothing more is read after bad bytes")
        XCTAssertEqual(machine.afterExchange(hasExchange: false), .answerDeferredError(.headerFieldsTooLarge, .headerOverflow))
        XCTAssertEqual(machine.afterExchange(hasExchange: false), .awaitRequest, "answered once")
    }

    func testTheDecodersComplaintAfterClosingIsNotAnswered() {
        var machine = Machine()
        machine.startClosing()
        XCTAssertEqual(machine.errorCaught(HTTPParserError.invalidEOFState, stage: .none, channelActive: true), .close)
    }

    // MARK: Half-close and shutdown

    func testAHalfClosedClientGetsWhatItAskedThenTheConnectionCloses() {
        var machine = Machine()
        XCTAssertFalse(machine.inputClosedByClient(stage: .answering))
        XCTAssertTrue(machine.closesAfterAnswer)
        XCTAssertEqual(machine.afterExchange(hasExchange: false), .close)

        var idle = Machine()
        XCTAssertTrue(idle.inputClosedByClient(stage: .none), "nothing asked: close now")

        var pipelined = Machine()
        _ = pipelined.partArrived(Self.head, stage: .answering)
        XCTAssertFalse(pipelined.inputClosedByClient(stage: .none), "a held request is still answered")
    }

    func testShutdownFinishesTheExchangeInProgressThenCloses() {
        var busy = Machine()
        XCTAssertFalse(busy.quiesce(stage: .receiving(canTakeMore: true)))
        XCTAssertTrue(busy.closesAfterAnswer)
        XCTAssertEqual(busy.afterExchange(hasExchange: false), .close)

        var idle = Machine()
        XCTAssertTrue(idle.quiesce(stage: .none))
    }

    func testKeepAliveWaitsForTheNextRequest() {
        var machine = Machine()
        XCTAssertFalse(machine.closesAfterAnswer)
        XCTAssertEqual(machine.afterExchange(hasExchange: false), .awaitRequest)
    }

    private static func describe(_ part: ClientRequestPart) -> String {
        switch part {
        case .head(let head): "head \(head.uri)"
        case .body: "body"
        case .end: "end"
        }
    }

    // MARK: An HTTP/2 stream

    func testAStreamWaitsForNoHeadAndAfterItsAnswerOnlyForItsDelivery() {
        var machine = Machine(servesOneRequest: true)
        XCTAssertNil(machine.awaitRequest(first: true), "the head came with the stream")
        XCTAssertEqual(machine.partArrived(Self.head, stage: .none), .handle)
        XCTAssertNil(machine.exchangeEnded(quotaRetryAfter: nil))
        XCTAssertEqual(machine.afterExchange(hasExchange: false), .awaitRequest)
        XCTAssertEqual(machine.awaitRequest(first: false), .streamEnd)
        XCTAssertEqual(machine.waitTimerFired(hasExchange: false), .close)
    }

    func testShutdownLeavesAStreamToItsConnection() {
        var machine = Machine(servesOneRequest: true)
        XCTAssertFalse(machine.quiesce(stage: .none), "the connection's GOAWAY lets the stream finish")
        XCTAssertFalse(machine.closesAfterAnswer)
        var connection = Machine()
        XCTAssertTrue(connection.quiesce(stage: .none))
    }
}
