import NIOCore
import NIOHTTP1

/// The client connection around its exchanges — when the client is read, what waits behind the
/// request being answered, which timer runs between requests, when the connection closes — as a
/// value: events in, verdicts out. The handler owns the I/O (reads, timers, writes, closing)
/// and the exchange in progress; it tells the machine where that exchange stands
/// (`ExchangeStage`) and applies what comes back. Tested as a value, without a channel.
///
/// An HTTP/2 stream is served by the same machine with `servesOneRequest`: its one request
/// arrives with the stream (no wait for a head), nothing follows it (no keep-alive), and the
/// connection's GOAWAY, not the stream, answers a shutdown.
struct ClientConnectionStateMachine {
    /// Where the exchange in progress stands, as far as the connection is concerned.
    enum ExchangeStage: Equatable {
        /// No exchange: between requests.
        case none
        /// The request is still arriving. `canTakeMore`: its next bytes have somewhere to go now
        /// (dropped, when the gateway answered it itself; else the upstream connection can take
        /// them).
        case receiving(canTakeMore: Bool)
        /// The request is complete; its answer is being produced or sent.
        case answering
    }

    /// The timer that runs while the connection has no exchange.
    enum Wait: Equatable {
        case none
        /// Keep-alive: waiting for the first byte of the next request.
        case idle
        /// Waiting for the rest of a request head.
        case headerRead
        /// An HTTP/2 stream's answer is written: its last frames wait for the client's
        /// flow-control window, for at most `timeouts.responseBodyIdle`.
        case streamEnd
    }

    /// What to do with a request part the decoder delivered.
    enum PartVerdict: Equatable {
        /// Start or continue the exchange with it.
        case handle
        /// Kept until the exchange in progress is answered (a pipelined request).
        case held
        /// The connection is closing: dropped.
        case drop
    }

    /// What to do about an error the pipeline reported.
    enum ErrorVerdict: Equatable {
        /// Nothing to answer (an I/O error, or the connection is closing anyway): close.
        case close
        /// Bad bytes behind a complete request: answered once that request's answer is out.
        case deferred
        /// The request in progress is malformed: answer it with the problem.
        case failExchange(GatewayProblem)
        /// Bytes that never became a request: answer with the problem and close.
        case answerAndClose(GatewayProblem)
    }

    /// What to do when the wait timer fires.
    enum WaitExpiry: Equatable {
        /// A request head did not arrive in time: answer (408) and close.
        case answer(GatewayProblem)
        /// An idle keep-alive connection: close without a word.
        case close
        /// An exchange started, or the connection closes, meanwhile.
        case ignore
    }

    /// What to do once an exchange is over and the pipelined parts are replayed.
    enum NextStep: Equatable {
        /// A pipelined request is in progress: go on with it.
        case continueExchange
        /// Answer the parse error that followed the finished request, and close.
        case answerDeferredError(GatewayProblem, HTTPParserError)
        /// Shutdown or a half-closed client: nothing more will be asked.
        case close
        /// Keep-alive: wait for the next request.
        case awaitRequest
    }

    /// An HTTP/2 stream: one request, then the stream ends.
    let servesOneRequest: Bool
    private(set) var wait: Wait = .none
    /// Nothing more is read or answered.
    private(set) var closing = false
    /// Shutdown: finish the exchange in progress, then close.
    private(set) var quiescing = false
    /// The client half-closed (sent its last byte): answer what it asked, then close.
    private(set) var inputClosed = false
    private var readPending = false
    /// Quota refusals answered in a row on this connection, and the pause they call for.
    private var pacing = RefusalPacing()
    /// Reading and serving are paused after refusals in a row (`exchangeEnded`).
    private(set) var pausedAfterRefusals = false
    /// A parse error in bytes after the request being answered.
    private var deferredError: HTTPParserError?
    /// Parts of requests that arrived while an earlier request was still being answered.
    private var pipelined = CircularBuffer<ClientRequestPart>()

    /// Whether the answer to the current exchange must close the connection whatever the
    /// request asked: the gateway is shutting down, or the client will send nothing more.
    var closesAfterAnswer: Bool { self.quiescing || self.inputClosed }

    init(servesOneRequest: Bool = false) {
        self.servesOneRequest = servesOneRequest
    }

    // MARK: Waiting between requests

    /// The connection is ready for a request (`first`: a new connection). Returns the timer to
    /// arm, or nil when one runs already or the connection is closing.
    mutating func awaitRequest(first: Bool) -> Wait? {
        guard !self.closing, self.wait == .none else { return nil }
        if self.servesOneRequest {
            // The stream was made by its request's HEADERS: the head is there already. After
            // the answer only its delivery is left to wait for.
            guard !first else { return nil }
            self.wait = .streamEnd
            return self.wait
        }
        self.wait = first ? .headerRead : .idle
        return self.wait
    }

    /// The first byte of the next request arrived: the idle timer gives way to the (shorter)
    /// header-read one. Returns the timer to arm, if it changes.
    mutating func firstByteArrived() -> Wait? {
        guard self.wait == .idle else { return nil }
        self.wait = .headerRead
        return .headerRead
    }

    /// A request head arrived, or the connection closes: no timer runs between requests.
    mutating func stopWaiting() {
        self.wait = .none
    }

    /// The wait timer fired.
    func waitTimerFired(hasExchange: Bool) -> WaitExpiry {
        guard !hasExchange, !self.closing else { return .ignore }
        switch self.wait {
        case .none: return .ignore
        case .idle, .streamEnd: return .close
        case .headerRead: return .answer(.requestHeaderTimeout)
        }
    }

    // MARK: Reading

    mutating func partArrived(_ part: ClientRequestPart, stage: ExchangeStage) -> PartVerdict {
        guard !self.closing else { return .drop }
        guard stage == .answering || self.pausedAfterRefusals else { return .handle }
        self.pipelined.append(part)
        return .held
    }

    /// Whether the client is read now. Holding reads is the backpressure, and costs two
    /// `epoll_ctl` calls per pause; so a complete request does not pause reading by itself:
    /// the client is read until the first part of a following (pipelined) request arrives, which
    /// bounds what is buffered to one read.
    func shouldRead(_ stage: ExchangeStage) -> Bool {
        guard !self.closing, self.deferredError == nil, !self.pausedAfterRefusals else { return false }
        switch stage {
        case .none, .answering: return self.pipelined.isEmpty
        case .receiving(let canTakeMore): return canTakeMore
        }
    }

    /// The pipeline asks for a read: true to read now; otherwise it is remembered.
    mutating func readRequested(_ stage: ExchangeStage) -> Bool {
        if self.shouldRead(stage) { return true }
        self.readPending = true
        return false
    }

    /// Something changed that may allow reading: true when a held read should happen now.
    mutating func resumeReading(_ stage: ExchangeStage) -> Bool {
        guard self.readPending, self.shouldRead(stage) else { return false }
        self.readPending = false
        return true
    }

    // MARK: Errors, half-close, shutdown

    mutating func errorCaught(_ error: any Error, stage: ExchangeStage, channelActive: Bool) -> ErrorVerdict {
        // Once the connection is closing (an answer that closes it is on its way) or gone, the
        // decoder's complaint about the unread rest — typically "stream ended at an unexpected
        // time" — is not a new request to answer.
        guard !self.closing, channelActive, let parserError = error as? HTTPParserError else { return .close }
        switch stage {
        case .answering:
            self.deferredError = parserError
            return .deferred
        case .receiving:
            return .failExchange(Self.problem(for: parserError))
        case .none:
            return .answerAndClose(Self.problem(for: parserError))
        }
    }

    /// The client half-closed. True when the connection closes now (nothing is asked of it).
    mutating func inputClosedByClient(stage: ExchangeStage) -> Bool {
        self.inputClosed = true
        return stage == .none && self.pipelined.isEmpty
    }

    /// Shutdown began. True when the connection closes now (no exchange to finish). An HTTP/2
    /// stream goes on: its connection's GOAWAY lets the streams it has finish.
    mutating func quiesce(stage: ExchangeStage) -> Bool {
        guard !self.servesOneRequest else { return false }
        self.quiescing = true
        return stage == .none
    }

    /// The connection is being closed, by the gateway or the client.
    mutating func startClosing() {
        self.closing = true
        self.wait = .none
    }

    // MARK: After an exchange

    /// The longest pause, and the shortest (a concurrency refusal says 0).
    static let longestPause = RefusalPacing.longestPause
    static let shortestPause = RefusalPacing.shortestPause

    /// An exchange ended with the connection kept open. `quotaRetryAfter`: it was refused for a
    /// quota, and could pass after this long. Returns how long to pause before the next request
    /// is read or served (`RefusalPacing`).
    mutating func exchangeEnded(quotaRetryAfter: TimeAmount?) -> TimeAmount? {
        guard let pause = self.pacing.exchangeEnded(quotaRetryAfter: quotaRetryAfter), !self.closing else { return nil }
        self.pausedAfterRefusals = true
        return pause
    }

    /// The connection this stream belongs to is pausing (HTTP/2: the pause is the connection's,
    /// and a stream opened during it waits like a request read during it).
    mutating func pauseStarted() {
        guard !self.closing else { return }
        self.pausedAfterRefusals = true
    }

    /// The pause after refusals is over: reading and serving go on.
    mutating func pauseEnded() {
        self.pausedAfterRefusals = false
    }

    /// The next part that arrived while the finished exchange was answered, to be handled in
    /// order until a pipelined request is in progress.
    mutating func nextPipelinedPart() -> ClientRequestPart? {
        self.pipelined.popFirst()
    }

    /// Once the pipelined parts are replayed: what the connection does next.
    mutating func afterExchange(hasExchange: Bool) -> NextStep {
        if hasExchange { return .continueExchange }
        if let error = self.deferredError {
            self.deferredError = nil
            return .answerDeferredError(Self.problem(for: error), error)
        }
        return self.closesAfterAnswer ? .close : .awaitRequest
    }

    /// The problem for what the decoder refused.
    static func problem(for error: HTTPParserError) -> GatewayProblem {
        switch error {
        case .headerOverflow: .headerFieldsTooLarge
        case .unexpectedContentLength, .invalidContentLength, .invalidChunkSize:
            .ambiguousFraming
        default: .malformedRequest
        }
    }
}

/// How a connection whose requests keep being refused for quotas is slowed (operations.md, "A
/// client that keeps sending what is refused"), as a value: an HTTP/1.1 connection's machine
/// keeps one, and so does an HTTP/2 connection for all its streams.
struct RefusalPacing {
    /// From this many quota refusals in a row, the connection pauses before its next request.
    static let refusalsBeforePause = 3
    /// The longest pause, and the shortest (a concurrency refusal says 0).
    static let longestPause = TimeAmount.seconds(1)
    static let shortestPause = TimeAmount.milliseconds(10)

    /// Quota refusals answered in a row; any other answer resets the count.
    private(set) var refusalsInARow = 0

    /// An answer went out. `quotaRetryAfter`: it was a quota refusal, which could pass after this
    /// long (exact, not the header's whole seconds). Returns how long to pause: from the third
    /// refusal in a row that wait (at least `shortestPause`), doubling with each further refusal
    /// in a row, at most `longestPause`. A client that goes on sending what will be refused —
    /// over one connection or many — is slowed to a few attempts a second per connection, so a
    /// flood cannot take its event loop from other tenants; a client that waits as asked, or
    /// whose connection carries admitted requests in between (another tenant's too), is never
    /// paused.
    mutating func exchangeEnded(quotaRetryAfter: TimeAmount?) -> TimeAmount? {
        guard let retryAfter = quotaRetryAfter else {
            self.refusalsInARow = 0
            return nil
        }
        self.refusalsInARow += 1
        guard self.refusalsInARow >= Self.refusalsBeforePause else { return nil }
        var pause = max(retryAfter, Self.shortestPause)
        var doublings = self.refusalsInARow - Self.refusalsBeforePause
        while doublings > 0, pause < Self.longestPause {
            pause = pause + pause
            doublings -= 1
        }
        return min(pause, Self.longestPause)
    }
}
