import NIOCore
import NIOHTTP1
import XCTest
@testable import ProxyEngine

/// The exchange as a value: forwarding, held parts, retries, stale resends, timeouts and the
/// client connection's fate after each answer — events in, actions out, time given by the test.
final class ExchangeStateMachineTests: XCTestCase {
    private static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private static let responseTimeout = TimeAmount.seconds(30)
    private static let bodyIdle = TimeAmount.seconds(5)

    private func machine(_ method: HTTPMethod = .GET, hasBody: Bool = false, keepAlive: Bool = true, maxBody: Int = 100) -> ExchangeStateMachine {
        ExchangeStateMachine(
            method: method, hasBody: hasBody, clientKeepsAlive: keepAlive, maxRequestBodyBytes: maxBody, bodyIdle: Self.bodyIdle,
            responseTimeout: Self.responseTimeout, started: Self.start
        )
    }

    private func forwarding(_ machine: inout ExchangeStateMachine, responseTimeout: TimeAmount = responseTimeout) {
        machine.startForwarding()
        machine.endpointChosen(responseTimeout: responseTimeout)
    }

    private func body(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    private func isEnd(_ part: UpstreamRequestPart?) -> Bool {
        if case .end = part { return true }
        return false
    }

    // MARK: - Forwarding

    func testABodilessRequestHeldUntilConnectedGoesOutWithItsResponseDeadline() {
        var machine = self.machine()
        self.forwarding(&machine)
        XCTAssertEqual(machine.requestEnded(now: Self.start), .hold)
        XCTAssertFalse(machine.canTakeRequestBytes(upstreamWritable: true), "nowhere to put bytes before the connection")
        let connectedAt = Self.start + .milliseconds(3)
        let (parts, deadline) = machine.connected(reused: false, now: connectedAt)
        XCTAssertEqual(parts.count, 1)
        XCTAssertTrue(self.isEnd(parts.first))
        XCTAssertEqual(deadline, connectedAt + Self.responseTimeout)
        XCTAssertEqual(machine.nextDeadline, connectedAt + Self.responseTimeout)

        XCTAssertEqual(machine.responseHeadReceived(status: 200, upstreamKeepsAlive: true, connectionClosing: false), .keepOpen)
        XCTAssertNil(machine.responseDeadline, "the head arrived: no response timeout runs")
        machine.responseBodyReceived(bytes: 2)
        XCTAssertEqual(machine.responseEnded(), .init(upstreamReusable: true, then: .keepOpen))
        XCTAssertEqual(machine.responseStatus, 200)
        XCTAssertEqual(machine.responseBytes, 2)
    }

    func testABodyStreamsOnceConnectedAndEachReadMovesItsIdleDeadline() {
        var machine = self.machine(.POST, hasBody: true)
        XCTAssertEqual(machine.bodyDeadline, Self.start + Self.bodyIdle)
        self.forwarding(&machine)
        let later = Self.start + .seconds(2)
        XCTAssertEqual(machine.bodyReceived(self.body("abc"), now: later), .hold)
        XCTAssertEqual(machine.bodyDeadline, later + Self.bodyIdle)
        let (parts, deadline) = machine.connected(reused: false, now: later)
        XCTAssertEqual(parts.count, 1)
        XCTAssertNil(deadline, "the request is not complete yet")
        XCTAssertTrue(machine.canTakeRequestBytes(upstreamWritable: true))
        XCTAssertFalse(machine.canTakeRequestBytes(upstreamWritable: false), "the upstream's backpressure holds the client")
        XCTAssertEqual(machine.bodyReceived(self.body("de"), now: later), .forward)
        XCTAssertEqual(machine.requestEnded(now: later), .forwardEnd(responseDeadline: later + Self.responseTimeout))
        XCTAssertNil(machine.bodyDeadline, "the body is complete")
        XCTAssertEqual(machine.requestBodyBytes, 5)
    }

    func testABodyOverTheLimitFails() {
        var machine = self.machine(.POST, hasBody: true, maxBody: 4)
        self.forwarding(&machine)
        _ = machine.connected(reused: false, now: Self.start)
        XCTAssertEqual(machine.bodyReceived(self.body("abcd"), now: Self.start), .forward)
        XCTAssertEqual(machine.bodyReceived(self.body("e"), now: Self.start), .fail(.bodyTooLarge))
    }

    func testTheCellsResponseTimeoutIsTheOneUsed() {
        var machine = self.machine()
        self.forwarding(&machine, responseTimeout: .seconds(2))
        _ = machine.requestEnded(now: Self.start)
        XCTAssertEqual(machine.connected(reused: false, now: Self.start).responseDeadline, Self.start + .seconds(2))
    }

    // MARK: - Retries

    func testAConnectFailureIsRetriedWithTheHeldRequest() {
        var machine = self.machine(.POST, hasBody: true)
        self.forwarding(&machine)
        _ = machine.bodyReceived(self.body("abc"), now: Self.start)
        _ = machine.requestEnded(now: Self.start)
        // Nothing was sent: even a POST with a body may go to another endpoint.
        XCTAssertEqual(machine.attemptFailed(.upstreamUnreachable, failure: .connectFailed, attempt: 1, maxAttempts: 3), .retryIfBudgetAllows(problem: .upstreamUnreachable))
        machine.retryGranted(after: .connectFailed)
        XCTAssertEqual(machine.upstream, .selecting)
        machine.endpointChosen(responseTimeout: Self.responseTimeout)
        let (parts, deadline) = machine.connected(reused: false, now: Self.start)
        XCTAssertEqual(parts.count, 2, "the body and the end, held for the next attempt")
        XCTAssertNotNil(deadline)
        XCTAssertEqual(machine.lastFailure, .upstreamUnreachable)
    }

    func testNoAttemptBeyondTheMaximum() {
        var machine = self.machine()
        self.forwarding(&machine)
        XCTAssertEqual(machine.attemptFailed(.upstreamConnectTimeout, failure: .connectFailed, attempt: 3, maxAttempts: 3), .fail(.upstreamConnectTimeout))
    }

    func testAnIdempotentBodilessRequestIsResentAfterAnUpstreamFailedItAfterConnecting() {
        var machine = self.machine()
        self.forwarding(&machine)
        _ = machine.requestEnded(now: Self.start)
        _ = machine.connected(reused: false, now: Self.start)
        XCTAssertEqual(machine.upstreamClosed(), .attemptFailed, "a fresh connection: the endpoint's failure")
        XCTAssertEqual(machine.attemptFailed(.upstreamFailed, failure: .afterConnect, attempt: 1, maxAttempts: 3), .retryIfBudgetAllows(problem: .upstreamFailed))
        machine.retryGranted(after: .afterConnect)
        XCTAssertNil(machine.responseDeadline, "the failed attempt's timeout is gone")
        machine.endpointChosen(responseTimeout: Self.responseTimeout)
        let parts = machine.connected(reused: false, now: Self.start).parts
        XCTAssertEqual(parts.count, 1)
        XCTAssertTrue(self.isEnd(parts.first), "its end is all there is to resend")
    }

    func testARequestWithABodyOrANonIdempotentMethodIsNotResentAfterConnecting() {
        var post = self.machine(.POST, hasBody: true)
        self.forwarding(&post)
        _ = post.connected(reused: false, now: Self.start)
        XCTAssertEqual(post.attemptFailed(.upstreamFailed, failure: .afterConnect, attempt: 1, maxAttempts: 3), .fail(.upstreamFailed))

        var bodilessPost = self.machine(.POST)
        self.forwarding(&bodilessPost)
        _ = bodilessPost.requestEnded(now: Self.start)
        _ = bodilessPost.connected(reused: false, now: Self.start)
        XCTAssertEqual(bodilessPost.attemptFailed(.upstreamFailed, failure: .afterConnect, attempt: 1, maxAttempts: 3), .fail(.upstreamFailed))
    }

    func testAStalePooledConnectionIsReplacedTwiceWithoutCountingAsAnAttempt() {
        var machine = self.machine()
        self.forwarding(&machine)
        _ = machine.requestEnded(now: Self.start)
        for _ in 0..<ExchangeStateMachine.maxStaleResends {
            _ = machine.connected(reused: true, now: Self.start)
            XCTAssertEqual(machine.upstreamClosed(), .resendOnFreshConnection)
            XCTAssertEqual(machine.upstream, .leasing)
            XCTAssertNil(machine.responseDeadline)
        }
        _ = machine.connected(reused: true, now: Self.start)
        XCTAssertEqual(machine.upstreamClosed(), .attemptFailed, "a third closed connection is the endpoint's failure")
    }

    func testAFreshConnectionClosingIsNotTakenForAStaleOne() {
        var machine = self.machine()
        self.forwarding(&machine)
        _ = machine.requestEnded(now: Self.start)
        _ = machine.connected(reused: false, now: Self.start)
        XCTAssertEqual(machine.upstreamClosed(), .attemptFailed)
    }

    func testAnUpstreamClosingMidResponseClosesTheClient() {
        var machine = self.machine()
        self.forwarding(&machine)
        _ = machine.requestEnded(now: Self.start)
        _ = machine.connected(reused: true, now: Self.start)
        _ = machine.responseHeadReceived(status: 200, upstreamKeepsAlive: true, connectionClosing: false)
        XCTAssertEqual(machine.upstreamClosed(), .closeMidResponse)
        XCTAssertEqual(machine.answering(status: 502, closesConnection: false, connectionClosing: false), .closeMidResponse)
        XCTAssertEqual(machine.attemptFailed(.upstreamFailed, failure: .connectFailed, attempt: 1, maxAttempts: 3), .fail(.upstreamFailed), "never retried once the response started")
    }

    // MARK: - Timeouts

    func testTheResponseTimeoutFiresAtItsDeadlineAndOnlyBeforeTheHead() {
        var machine = self.machine()
        self.forwarding(&machine)
        _ = machine.requestEnded(now: Self.start)
        _ = machine.connected(reused: false, now: Self.start)
        XCTAssertEqual(machine.deadlinesReached(now: Self.start + Self.responseTimeout - .nanoseconds(1)), .none)
        XCTAssertEqual(machine.deadlinesReached(now: Self.start + Self.responseTimeout), .responseTimedOut)
        XCTAssertEqual(machine.deadlinesReached(now: Self.start + Self.responseTimeout), .none, "reported once")

        var answered = self.machine()
        self.forwarding(&answered)
        _ = answered.requestEnded(now: Self.start)
        _ = answered.connected(reused: false, now: Self.start)
        _ = answered.responseHeadReceived(status: 200, upstreamKeepsAlive: true, connectionClosing: false)
        XCTAssertEqual(answered.deadlinesReached(now: Self.start + .seconds(60)), .none)
    }

    func testAStalledBodyTimesOutAfterTheIdleTimeFromItsLastRead() {
        var machine = self.machine(.PUT, hasBody: true)
        self.forwarding(&machine)
        _ = machine.connected(reused: false, now: Self.start)
        let lastRead = Self.start + .seconds(4)
        _ = machine.bodyReceived(self.body("x"), now: lastRead)
        XCTAssertEqual(machine.deadlinesReached(now: Self.start + Self.bodyIdle), .none, "the read moved the deadline")
        XCTAssertEqual(machine.deadlinesReached(now: lastRead + Self.bodyIdle), .bodyStalled(idle: Self.bodyIdle))
    }

    func testABodilessRequestHasNoBodyDeadline() {
        let machine = self.machine()
        XCTAssertNil(machine.bodyDeadline)
        XCTAssertNil(machine.nextDeadline)
    }

    // MARK: - The client connection after an answer

    func testTheGatewaysOwnAnswerKeepsTheConnectionOnlyWhenTheStreamIsAtAMessageBoundary() {
        var complete = self.machine()
        _ = complete.requestEnded(now: Self.start)
        XCTAssertEqual(complete.answering(status: 403, closesConnection: false, connectionClosing: false), .answer(.keepOpen))

        var bodilessHeadOnly = self.machine()
        XCTAssertEqual(bodilessHeadOnly.answering(status: 403, closesConnection: false, connectionClosing: false), .answer(.keepOpen), "only the end marker is still to come")
        XCTAssertEqual(bodilessHeadOnly.requestEnded(now: Self.start), .finishExchange)

        var unreadBody = self.machine(.POST, hasBody: true)
        XCTAssertEqual(unreadBody.answering(status: 429, closesConnection: false, connectionClosing: false), .answer(.close))

        var closingProblem = self.machine()
        XCTAssertEqual(closingProblem.answering(status: 400, closesConnection: true, connectionClosing: false), .answer(.close))

        var shuttingDown = self.machine()
        XCTAssertEqual(shuttingDown.answering(status: 403, closesConnection: false, connectionClosing: true), .answer(.close))

        var http10 = self.machine(keepAlive: false)
        XCTAssertEqual(http10.answering(status: 403, closesConnection: false, connectionClosing: false), .answer(.close))
    }

    func testAfterTheGatewayAnsweredTheRestOfTheBodyIsDropped() {
        var machine = self.machine(.POST, hasBody: true)
        self.forwarding(&machine)
        _ = machine.bodyReceived(self.body("abc"), now: Self.start)
        _ = machine.answering(status: 503, closesConnection: false, connectionClosing: false)
        XCTAssertEqual(machine.upstream, .released)
        XCTAssertEqual(machine.bodyReceived(self.body("def"), now: Self.start), .drop)
        XCTAssertTrue(machine.canTakeRequestBytes(upstreamWritable: false), "dropped bytes need no upstream")
        XCTAssertNil(machine.bodyDeadline)
        XCTAssertEqual(machine.requestEnded(now: Self.start), .finishExchange)
    }

    func testAnEarlyResponseToARequestStillArrivingClosesTheConnectionAndIsNotReused() {
        var machine = self.machine(.POST, hasBody: true)
        self.forwarding(&machine)
        _ = machine.connected(reused: false, now: Self.start)
        _ = machine.bodyReceived(self.body("abc"), now: Self.start)
        XCTAssertEqual(machine.responseHeadReceived(status: 413, upstreamKeepsAlive: true, connectionClosing: false), .close)
        XCTAssertEqual(machine.responseEnded(), .init(upstreamReusable: false, then: .close))
    }

    func testAResponseAskingToCloseTheUpstreamConnectionIsNotPooled() {
        var machine = self.machine()
        self.forwarding(&machine)
        _ = machine.requestEnded(now: Self.start)
        _ = machine.connected(reused: false, now: Self.start)
        XCTAssertEqual(machine.responseHeadReceived(status: 200, upstreamKeepsAlive: false, connectionClosing: false), .keepOpen)
        XCTAssertEqual(machine.responseEnded(), .init(upstreamReusable: false, then: .keepOpen))
    }

    func testAResponseDuringShutdownClosesTheClient() {
        var machine = self.machine()
        self.forwarding(&machine)
        _ = machine.requestEnded(now: Self.start)
        _ = machine.connected(reused: false, now: Self.start)
        XCTAssertEqual(machine.responseHeadReceived(status: 200, upstreamKeepsAlive: true, connectionClosing: true), .close)
        XCTAssertEqual(machine.responseEnded().then, .close)
    }

    // MARK: - A client that takes none of the response

    func testAResponseTheClientTakesNoneOfIsCutAfterTheIdleTime() {
        var machine = ExchangeStateMachine(
            method: .GET, hasBody: false, clientKeepsAlive: true, maxRequestBodyBytes: 100, bodyIdle: Self.bodyIdle,
            responseTimeout: Self.responseTimeout, responseBodyIdle: .seconds(60), started: Self.start
        )
        self.forwarding(&machine)
        _ = machine.requestEnded(now: Self.start)
        _ = machine.connected(reused: false, now: Self.start)
        let stalled = Self.start + .seconds(1)
        XCTAssertNil(machine.clientWritabilityChanged(writable: false, now: stalled), "no response yet: nothing to cut")
        _ = machine.responseHeadReceived(status: 200, upstreamKeepsAlive: true, connectionClosing: false)
        XCTAssertEqual(machine.responseStallDeadline, stalled + .seconds(60))
        XCTAssertEqual(machine.nextDeadline, stalled + .seconds(60))
        XCTAssertEqual(machine.deadlinesReached(now: stalled + .seconds(59)), .none)
        XCTAssertEqual(machine.deadlinesReached(now: stalled + .seconds(60)), .responseStalled(idle: .seconds(60)))
    }

    func testTheStallClockStartsAgainWhenTheClientCatchesUp() {
        var machine = self.machine()
        self.forwarding(&machine)
        _ = machine.requestEnded(now: Self.start)
        _ = machine.connected(reused: false, now: Self.start)
        _ = machine.responseHeadReceived(status: 200, upstreamKeepsAlive: true, connectionClosing: false)
        XCTAssertNotNil(machine.clientWritabilityChanged(writable: false, now: Self.start))
        XCTAssertNil(machine.clientWritabilityChanged(writable: true, now: Self.start + .seconds(50)))
        XCTAssertNil(machine.responseStallDeadline)
        let again = Self.start + .seconds(55)
        XCTAssertEqual(machine.clientWritabilityChanged(writable: false, now: again), again + .seconds(60))
        XCTAssertEqual(machine.clientWritabilityChanged(writable: false, now: again + .seconds(1)), again + .seconds(60), "still the first moment")
        _ = machine.responseEnded()
        XCTAssertNil(machine.responseStallDeadline, "nothing left to cut")
    }
}
