import Cells
import NIOCore
import NIOHTTP1

/// One request's exchange — the request arriving, the upstream attempts (retries, a resend after
/// a stale pooled connection, fallback cells), the response relayed or answered by the gateway —
/// as a value: events in, actions out. No I/O and no clock of its own: the connection handler
/// holds the channels, the lease and the cell route, tells the machine what happened (with the
/// loop's `now`) and carries out what comes back. Tested as a value, without a channel.
///
/// Three sides move independently, as in an HTTP/1.1 proxy they must: the request may still be
/// arriving while the upstream answers, and an upstream attempt may fail and start again while
/// the request is held.
struct ExchangeStateMachine {
    /// The client's request stream.
    enum RequestStream: Equatable {
        case receiving
        case complete
    }

    /// The upstream side.
    enum UpstreamStage: Equatable {
        /// Not forwarding (yet): the phases before `forward` run, or the gateway answered itself.
        case notForwarding
        /// An attempt is being started: its cell and endpoint are chosen, or it waits for a slot
        /// of its cell.
        case selecting
        /// A connection to the attempt's endpoint is being leased.
        case leasing
        /// Connected: the request goes out as it arrives. `reused`: a pooled connection, which
        /// the upstream may have closed while it was idle.
        case connected(reused: Bool)
        /// The upstream is done with this exchange (its response relayed, or it failed).
        case released
    }

    /// The response stream to the client.
    enum ResponseStream: Equatable {
        case notStarted
        /// The upstream's response head arrived and is held while its body is collected (a
        /// response whose fields are masked): the client has seen nothing of it, so a failure
        /// can still be answered with a problem.
        case holding(status: UInt)
        /// The upstream's response head went to the client; its body follows.
        case relaying(status: UInt)
        /// The response is complete (relayed, or answered by the gateway).
        case complete(status: UInt)
    }

    /// Whether the client connection is kept after the answer.
    enum AfterAnswer: Equatable {
        case keepOpen
        case close
    }

    /// What to do with a piece of the request body.
    enum BodyAction: Equatable {
        /// Write it to the upstream connection.
        case forward
        /// Held until the upstream connection is there (`bufferedForUpstream`).
        case hold
        /// The gateway already answered: read and dropped.
        case drop
        /// Over the body limit.
        case fail(GatewayProblem)
    }

    /// What to do once the request is complete.
    enum EndAction: Equatable {
        /// Write the end upstream and flush; the response head must arrive by `responseDeadline`
        /// (nil: it already did).
        case forwardEnd(responseDeadline: NIODeadline?)
        /// Held with the rest until the upstream connection is there.
        case hold
        /// The gateway already answered and the rest of the request is read: the exchange is over.
        case finishExchange
    }

    /// What to do after an upstream attempt failed before any response byte.
    enum FailedAttemptAction: Equatable {
        /// Safe to send again (`RetryPolicy`): ask the cell's retry budget, then either
        /// `retryGranted(after:)` or answer `problem`.
        case retryIfBudgetAllows(problem: GatewayProblem)
        case fail(GatewayProblem)
    }

    /// What to do when the upstream connection closed mid-exchange.
    enum UpstreamClosedAction: Equatable {
        /// A pooled connection the upstream had closed while idle: nothing was processed, and the
        /// request has no body, so it goes again on a fresh connection to the same endpoint. Not
        /// the endpoint's failure, and not a retry the budget counts.
        case resendOnFreshConnection
        /// Not answered yet: an attempt failure (`upstream-failed` after connecting): blame the
        /// endpoint, then `attemptFailed`.
        case attemptFailed
        /// The response already started: the only honest signal left is to cut the client
        /// connection.
        case closeMidResponse
        /// The response was held to be masked and broke off before its end: nothing reached
        /// the client, which is answered `upstream-failed`. Not retried: the upstream answered.
        case failHeldResponse
    }

    /// What the connection's timer found when it fired.
    enum Expiry: Equatable {
        case none
        /// No response head in time. Not retried: the upstream may still be working on it.
        case responseTimedOut
        /// The request body paused longer than `timeouts.requestBodyIdle`.
        case bodyStalled(idle: TimeAmount)
        /// The client took none of the response for `timeouts.responseBodyIdle` (its connection,
        /// or its HTTP/2 stream's flow-control window, stayed full).
        case responseStalled(idle: TimeAmount)
    }

    /// How a failure reaches the client.
    enum FailAction: Equatable {
        /// Answer with the problem document, then keep or close the connection.
        case answer(AfterAnswer)
        /// The response started: close the client connection.
        case closeMidResponse
    }

    /// What to do when the response is complete.
    struct ResponseEnd: Equatable {
        /// The upstream connection goes back to the pool (else it is closed).
        var upstreamReusable: Bool
        var then: AfterAnswer
    }

    private(set) var request: RequestStream = .receiving
    private(set) var upstream: UpstreamStage = .notForwarding
    private(set) var response: ResponseStream = .notStarted

    let method: HTTPMethod
    /// The request declared a body (its framing is not empty).
    let hasBody: Bool
    /// The client asked to keep the connection and did not ask to switch protocols.
    let clientKeepsAlive: Bool
    let maxRequestBodyBytes: Int
    /// How long the request body may pause; nil without a body.
    private let bodyIdle: TimeAmount?
    /// How long an attempt's response head may take (the serving cell's, else the default).
    private var responseTimeout: TimeAmount
    /// How long the client may take none of the response while it is relayed.
    private let responseBodyIdle: TimeAmount
    /// Since when the client could take no more (its channel not writable); nil while it can.
    private var clientStalledSince: NIODeadline?

    private(set) var requestBodyBytes = 0
    private(set) var responseBytes = 0
    /// When the head or the last piece of the body was read.
    private var lastBodyRead: NIODeadline
    /// Idempotent, without a body, nothing of it streamed: may be sent again after a stale
    /// pooled connection failed before any response byte.
    private var replayable: Bool
    /// Fresh connections tried after pooled ones turned out closed.
    private var staleResends = 0
    /// The whole request went to the current attempt's connection.
    private var requestSent = false
    /// The upstream's response asked to keep its connection.
    private var upstreamKeepsAlive = false
    private var closeClientAfterResponse = false
    /// Request parts waiting for the upstream connection.
    private(set) var bufferedForUpstream: [UpstreamRequestPart] = []
    /// When the response head must have arrived; nil while no request is with an upstream.
    private(set) var responseDeadline: NIODeadline?
    /// What the last failed attempt ran into, answered when no attempt is left.
    private(set) var lastFailure: GatewayProblem?

    static let maxStaleResends = 2

    init(
        method: HTTPMethod, hasBody: Bool, clientKeepsAlive: Bool, maxRequestBodyBytes: Int, bodyIdle: TimeAmount,
        responseTimeout: TimeAmount, responseBodyIdle: TimeAmount = .seconds(60), started: NIODeadline
    ) {
        self.responseBodyIdle = responseBodyIdle
        self.method = method
        self.hasBody = hasBody
        self.clientKeepsAlive = clientKeepsAlive
        self.maxRequestBodyBytes = maxRequestBodyBytes
        self.bodyIdle = hasBody ? bodyIdle : nil
        self.responseTimeout = responseTimeout
        self.lastBodyRead = started
        self.replayable = method.isIdempotent && !hasBody
    }

    var requestComplete: Bool { self.request == .complete }
    /// The client has (part of) the response: a failure can no longer be answered.
    var responseStarted: Bool {
        switch self.response {
        case .notStarted, .holding: false
        case .relaying, .complete: true
        }
    }
    var responseComplete: Bool {
        if case .complete = self.response { return true }
        return false
    }
    /// The gateway answered this request itself; the rest of the request is read and dropped.
    private(set) var answeredByGateway = false

    /// The status the client got or is getting.
    var responseStatus: UInt? {
        switch self.response {
        case .notStarted, .holding: nil
        case .relaying(let status), .complete(let status): status
        }
    }

    /// When the request body runs out of time, while it is still arriving.
    var bodyDeadline: NIODeadline? {
        guard let idle = self.bodyIdle, self.request == .receiving, !self.answeredByGateway else { return nil }
        return self.lastBodyRead + idle
    }

    /// When the response is cut because the client takes none of it: while it is relayed and
    /// the client cannot take more.
    var responseStallDeadline: NIODeadline? {
        guard case .relaying = self.response, let since = self.clientStalledSince else { return nil }
        return since + self.responseBodyIdle
    }

    /// The earliest deadline of this exchange, for the connection's timer.
    var nextDeadline: NIODeadline? {
        Self.earlier(Self.earlier(self.responseDeadline, self.bodyDeadline), self.responseStallDeadline)
    }

    private static func earlier(_ a: NIODeadline?, _ b: NIODeadline?) -> NIODeadline? {
        switch (a, b) {
        case (let a?, let b?): min(a, b)
        case (let a?, nil): a
        case (nil, let b?): b
        case (nil, nil): nil
        }
    }

    /// Whether the client can be read now: its bytes have somewhere to go (dropped after a local
    /// answer, else the upstream connection takes them).
    func canTakeRequestBytes(upstreamWritable: Bool) -> Bool {
        if self.answeredByGateway { return true }
        if case .connected = self.upstream { return upstreamWritable }
        return false
    }

    // MARK: - The request

    mutating func bodyReceived(_ buffer: ByteBuffer, now: NIODeadline) -> BodyAction {
        self.requestBodyBytes += buffer.readableBytes
        self.lastBodyRead = now
        if self.answeredByGateway { return .drop }
        if self.requestBodyBytes > self.maxRequestBodyBytes {
            return .fail(.bodyTooLarge)
        }
        self.replayable = false
        if case .connected = self.upstream { return .forward }
        self.bufferedForUpstream.append(.body(.byteBuffer(buffer)))
        return .hold
    }

    mutating func requestEnded(now: NIODeadline) -> EndAction {
        self.request = .complete
        if self.answeredByGateway { return .finishExchange }
        if case .connected = self.upstream {
            return .forwardEnd(responseDeadline: self.requestFullySent(now: now))
        }
        self.bufferedForUpstream.append(.end(nil))
        return .hold
    }

    private mutating func requestFullySent(now: NIODeadline) -> NIODeadline? {
        self.requestSent = true
        guard self.response == .notStarted else { return nil }
        let deadline = now + self.responseTimeout
        self.responseDeadline = deadline
        return deadline
    }

    // MARK: - Upstream attempts

    /// The phases before `forward` are done: an attempt starts.
    mutating func startForwarding() {
        precondition(self.upstream == .notForwarding, "forwarding started twice")
        self.upstream = .selecting
    }

    /// The cell router chose the attempt's endpoint: lease a connection to it.
    mutating func endpointChosen(responseTimeout: TimeAmount) {
        self.responseTimeout = responseTimeout
        self.upstream = .leasing
    }

    /// A connection was leased. Returns the held request parts to write after the head, and
    /// the response deadline when they complete the request.
    mutating func connected(reused: Bool, now: NIODeadline) -> (parts: [UpstreamRequestPart], responseDeadline: NIODeadline?) {
        self.upstream = .connected(reused: reused)
        let parts = self.bufferedForUpstream
        self.bufferedForUpstream.removeAll()
        var deadline: NIODeadline?
        if case .end = parts.last { deadline = self.requestFullySent(now: now) }
        return (parts, deadline)
    }

    /// The attempt failed before any response byte. `attempt` counts the attempts made so far.
    mutating func attemptFailed(_ problem: GatewayProblem, failure: RetryPolicy.Failure, attempt: Int, maxAttempts: Int) -> FailedAttemptAction {
        self.lastFailure = problem
        let safe = RetryPolicy.mayRetry(method: self.method.rawValue, failure: failure, bodyStreamed: self.hasBody, attempt: attempt, maxAttempts: maxAttempts)
        guard safe, !self.responseStarted else { return .fail(problem) }
        return .retryIfBudgetAllows(problem: problem)
    }

    /// The cell's retry budget allows the retry: the next attempt starts.
    mutating func retryGranted(after failure: RetryPolicy.Failure) {
        self.responseDeadline = nil
        self.requestSent = false
        if failure == .afterConnect {
            // Only a bodiless request is retried after connecting: its end is all there is to resend.
            self.bufferedForUpstream = self.requestComplete ? [.end(nil)] : []
        }
        self.upstream = .selecting
    }

    /// The upstream connection closed while this exchange held it.
    mutating func upstreamClosed() -> UpstreamClosedAction {
        if self.responseStarted { return .closeMidResponse }
        if case .holding = self.response { return .failHeldResponse }
        if self.replayable, case .connected(reused: true) = self.upstream, self.staleResends < Self.maxStaleResends {
            self.staleResends += 1
            self.responseDeadline = nil
            self.requestSent = false
            self.bufferedForUpstream = self.requestComplete ? [.end(nil)] : []
            self.upstream = .leasing
            return .resendOnFreshConnection
        }
        return .attemptFailed
    }

    // MARK: - The response

    /// The client's channel became writable or not. Returns the stall deadline to arm when the
    /// client stops taking the response being relayed. Only a change of writability costs
    /// anything: a client that keeps up never gets here.
    mutating func clientWritabilityChanged(writable: Bool, now: NIODeadline) -> NIODeadline? {
        if writable {
            self.clientStalledSince = nil
            return nil
        }
        if self.clientStalledSince == nil { self.clientStalledSince = now }
        return self.responseStallDeadline
    }

    /// The upstream's response head arrived. Returns whether the client connection closes after
    /// this response; `connectionClosing`: the connection closes after its answer whatever the
    /// request asked (shutdown, half-closed client).
    mutating func responseHeadReceived(status: UInt, upstreamKeepsAlive: Bool, connectionClosing: Bool) -> AfterAnswer {
        self.responseDeadline = nil
        self.response = .relaying(status: status)
        self.upstreamKeepsAlive = upstreamKeepsAlive
        let keep = self.clientKeepsAlive && self.requestComplete && !connectionClosing
        self.closeClientAfterResponse = !keep
        return keep ? .keepOpen : .close
    }

    /// The upstream's head arrived, to be held until its body is complete (field masking); its
    /// status goes to the client later, through `responseHeadReceived`.
    mutating func responseHeadHeld(status: UInt, upstreamKeepsAlive: Bool) {
        self.responseDeadline = nil
        self.response = .holding(status: status)
        self.upstreamKeepsAlive = upstreamKeepsAlive
    }

    mutating func responseBodyReceived(bytes: Int) {
        self.responseBytes += bytes
    }

    mutating func responseEnded() -> ResponseEnd {
        let status = self.responseStatus ?? 0
        self.response = .complete(status: status)
        let reusable = self.upstreamKeepsAlive && self.requestSent
        self.upstream = .released
        // A request still arriving leaves the stream mid-message: the connection cannot go on.
        let close = self.closeClientAfterResponse || !self.requestComplete
        return ResponseEnd(upstreamReusable: reusable, then: close ? .close : .keepOpen)
    }

    // MARK: - Answers of the gateway's own

    /// The gateway answers the request itself (a refusal, a failure, a local response). The
    /// upstream side, if any, is dropped (the handler cancels a lease and closes a connection).
    mutating func answering(status: UInt, closesConnection: Bool, connectionClosing: Bool) -> FailAction {
        self.responseDeadline = nil
        if self.upstream != .notForwarding { self.upstream = .released }
        if self.responseStarted { return .closeMidResponse }
        self.response = .complete(status: status)
        self.answeredByGateway = true
        // A request whose body has not been read yet leaves the stream mid-message, unless it
        // has no body at all (then only its end marker is still to come).
        let close = closesConnection || !self.clientKeepsAlive || connectionClosing || (!self.requestComplete && self.hasBody)
        return .answer(close ? .close : .keepOpen)
    }

    /// A WebSocket this exchange opened closed: the payload bytes relayed each way over its life.
    mutating func relayed(bytesIn: Int, bytesOut: Int) {
        self.requestBodyBytes += bytesIn
        self.responseBytes += bytesOut
    }

    mutating func localBodyWritten(bytes: Int) {
        self.responseBytes += bytes
    }

    // MARK: - Time

    /// The connection's timer fired at `now`.
    mutating func deadlinesReached(now: NIODeadline) -> Expiry {
        if let deadline = self.responseDeadline, now >= deadline, !self.responseStarted {
            self.responseDeadline = nil
            return .responseTimedOut
        }
        if let deadline = self.bodyDeadline, now >= deadline, let idle = self.bodyIdle {
            return .bodyStalled(idle: idle)
        }
        if let deadline = self.responseStallDeadline, now >= deadline {
            return .responseStalled(idle: self.responseBodyIdle)
        }
        return .none
    }
}
