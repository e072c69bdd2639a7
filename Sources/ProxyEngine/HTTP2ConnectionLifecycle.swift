import NIOCore
import NIOHTTP2

/// The deadlines of an HTTP/2 connection that NIOHTTP2 leaves to the application, as a value:
/// events in, actions out. `HTTP2ConnectionGuard` drives it; tested without a channel.
///
/// - The client's preface and SETTINGS must arrive within `timeouts.headerRead` of the
///   connection becoming HTTP/2: a client that connects and stays silent holds nothing for long.
/// - A graceful close (idle connection, shutdown) is `NIOHTTP2ServerConnectionManagementHandler`'s:
///   a GOAWAY naming the highest stream id with a PING, then, once the client acknowledges the
///   PING, a GOAWAY naming the last stream opened, and the close when the open streams are done.
///   A client that never acknowledges would hold the connection forever; from the first GOAWAY
///   it has `timeouts.headerRead` for that.
struct HTTP2ConnectionLifecycle {
    enum Stage: Equatable {
        /// Waiting for the client's preface and SETTINGS, until the deadline.
        case awaitingPreface(deadline: NIODeadline)
        case open
        /// The first GOAWAY of a graceful close is out; its PING must be acknowledged by the
        /// deadline.
        case closingAwaitingAcknowledgement(deadline: NIODeadline)
        /// The final GOAWAY is out: the connection closes when its last stream ends.
        case draining
        case closed
    }

    enum Action: Equatable {
        case none
        /// Make sure the connection's timer fires by then.
        case armTimer(NIODeadline)
        case cancelTimer
        /// Close the connection now, for this reason (logged).
        case close(reason: String)
    }

    private(set) var stage: Stage
    /// How long the preface, and the acknowledgement of a graceful close's PING, may take.
    let timeout: TimeAmount

    /// The connection became HTTP/2 at `now`; arm a timer for the returned deadline.
    init(timeout: TimeAmount, now: NIODeadline) {
        self.timeout = timeout
        self.stage = .awaitingPreface(deadline: now + timeout)
    }

    var deadline: NIODeadline? {
        switch self.stage {
        case .awaitingPreface(let deadline), .closingAwaitingAcknowledgement(let deadline): deadline
        case .open, .draining, .closed: nil
        }
    }

    /// A frame of the connection (stream 0) arrived. The first is the client's SETTINGS: NIOHTTP2
    /// checks the preface and refuses anything else first.
    mutating func frameReceived() -> Action {
        guard case .awaitingPreface = self.stage else { return .none }
        self.stage = .open
        return .cancelTimer
    }

    /// A GOAWAY went out from the connection manager (a graceful close; the GOAWAY of a protocol
    /// error is NIOHTTP2's own and closes the connection through `errorCaught`).
    mutating func goAwaySent(lastStreamID: HTTP2StreamID, now: NIODeadline) -> Action {
        switch self.stage {
        case .awaitingPreface, .open:
            guard lastStreamID == .maxID else {
                self.stage = .draining
                return .cancelTimer
            }
            let deadline = now + self.timeout
            self.stage = .closingAwaitingAcknowledgement(deadline: deadline)
            return .armTimer(deadline)
        case .closingAwaitingAcknowledgement:
            self.stage = .draining
            return .cancelTimer
        case .draining, .closed:
            return .none
        }
    }

    /// The timer fired at `now`.
    mutating func timerFired(now: NIODeadline) -> Action {
        switch self.stage {
        case .awaitingPreface(let deadline) where now >= deadline:
            self.stage = .closed
            return .close(reason: "no preface and SETTINGS within timeouts.headerRead")
        case .closingAwaitingAcknowledgement(let deadline) where now >= deadline:
            self.stage = .closed
            return .close(reason: "the PING of a graceful close was not acknowledged within timeouts.headerRead")
        case .awaitingPreface(let deadline), .closingAwaitingAcknowledgement(let deadline):
            return .armTimer(deadline)
        case .open, .draining, .closed:
            return .none
        }
    }

    /// The connection is closing for another reason.
    mutating func closed() {
        self.stage = .closed
    }

    /// Whether an error NIOHTTP2 reported on the connection closes it. NIOHTTP2 answers a
    /// connection error with GOAWAY and reports it, but leaves the socket open — RFC 9113 §5.4.1
    /// asks for the close after that GOAWAY — and it reports a stream error (already answered with
    /// RST_STREAM, the connection unharmed) the same way. The errors below only ever come from
    /// stream errors; every other error closes: a connection error, an I/O error, and the few
    /// kinds NIOHTTP2 raises either way (then the client is broken enough to lose its connection).
    /// Stream errors are bounded all the same: NIOHTTP2 counts them (`streamErrors`,
    /// `maxGlitches`) and ends the connection over the limit.
    static func closesConnection(_ error: any Error) -> Bool {
        switch error {
        case is NIOHTTP2Errors.StreamError,
            // The header block of one request (RFC 9113 §8.1.1: a malformed request is a stream error).
            is NIOHTTP2Errors.MissingPseudoHeader, is NIOHTTP2Errors.DuplicatePseudoHeader, is NIOHTTP2Errors.PseudoHeaderAfterRegularHeader,
            is NIOHTTP2Errors.UnknownPseudoHeader, is NIOHTTP2Errors.UnsupportedPseudoHeader, is NIOHTTP2Errors.InvalidPseudoHeaders,
            is NIOHTTP2Errors.MissingHostHeader, is NIOHTTP2Errors.DuplicateHostHeader, is NIOHTTP2Errors.EmptyPathHeader,
            is NIOHTTP2Errors.InvalidHTTP2HeaderFieldName, is NIOHTTP2Errors.InvalidHTTP2HeaderFieldValue, is NIOHTTP2Errors.ForbiddenHeaderField,
            is NIOHTTP2Errors.InvalidPseudoHeaderValue, is NIOHTTP2Errors.TrailersWithoutEndStream,
            // A body that disagrees with its Content-Length.
            is NIOHTTP2Errors.ContentLengthViolated, is NIOHTTP2Errors.ContentLengthHeadersMismatch,
            is NIOHTTP2Errors.ContentLengthHeaderNegative, is NIOHTTP2Errors.ContentLengthHeaderMalformedValue:
            false
        default:
            true
        }
    }
}
