import NIOCore
import NIOWebSocket

/// One relayed WebSocket after the backend's `101`, as a value: frames and events in, actions
/// out. No I/O and no clock of its own: `WebSocketTunnel` tells it what happened (with the
/// loop's `now`) and carries out what comes back. Tested as a value, without a channel.
///
/// The close handshake (RFC 6455 §5.5.1) is followed per direction: a close frame from one end
/// goes to the other, and once a close frame has gone each way both connections are closed.
/// When the gateway itself closes the socket (idle, lifetime, drain, suspension) it sends a
/// close frame to both ends and waits for their answers; a peer that never answers is cut
/// after `closeGrace`. Once a side has been sent a close frame, nothing more goes to it.
struct WebSocketSessionStateMachine {
    enum Side: Equatable, CaseIterable {
        case client
        case upstream

        var other: Side { self == .client ? .upstream : .client }
    }

    /// Why the gateway closes a socket; its close code tells the client.
    enum CloseReason: String, Equatable {
        case idle
        case maxLifetime = "max-lifetime"
        case draining
        case placementChanged = "placement-changed"
        case tenantSuspended = "tenant-suspended"
        case tokenRevoked = "token-revoked"
        case frameTooLarge = "frame-too-large"
        case protocolError = "protocol-error"

        var code: WebSocketErrorCode {
            switch self {
            // 1001: the server goes away; the client may open a new socket (which then passes
            // every phase again, lands on the new cell, or is refused).
            case .idle, .maxLifetime, .draining, .placementChanged: .goingAway
            // 1008: a policy the socket no longer satisfies.
            case .tenantSuspended, .tokenRevoked: .policyViolation
            case .frameTooLarge: .messageTooLarge
            case .protocolError: .protocolError
            }
        }
    }

    enum FrameAction: Equatable {
        /// Write the frame to the other side.
        case forward
        /// Forward the frame; with it a close frame has gone each way: flush, then close both
        /// connections.
        case forwardAndFinish
        /// Not passed on (the other side was already sent a close frame, or this side already
        /// sent one); with `finish`, the close handshake is complete.
        case drop(finish: Bool)
    }

    enum Expiry: Equatable {
        case none
        /// Send close frames to `sides` with `reason`'s code.
        case close(CloseReason, sides: [Side])
        /// The close handshake took longer than `closeGrace`: close both connections now.
        case cut
    }

    let openedAt: NIODeadline
    let idleTimeout: TimeAmount
    let maxLifetime: TimeAmount
    let closeGrace: TimeAmount
    private(set) var lastFrameAt: NIODeadline
    /// A close frame went to this side (from the other end or from the gateway).
    private var sentClose: Set<SideKey> = []
    /// This side sent a close frame.
    private var receivedClose: Set<SideKey> = []
    /// Why the gateway closed or will close the socket; nil while it has not decided to.
    private(set) var closeReason: CloseReason?
    /// Drain or a placement change: the socket runs until then, then the gateway closes it.
    private(set) var goingAwayAt: NIODeadline?
    /// Once a close frame went either way: both connections are cut by then at the latest.
    private(set) var cutAt: NIODeadline?
    /// Set once a connection closed or the handshake finished: the session is over.
    private(set) var ended = false

    /// Payload bytes relayed from each side, for the socket's record.
    private(set) var bytesFromClient = 0
    private(set) var bytesFromUpstream = 0

    /// `Set` needs `Hashable`; the side enum stays plain for `switch`.
    private typealias SideKey = Bool
    private static func key(_ side: Side) -> SideKey { side == .client }

    init(openedAt: NIODeadline, idleTimeout: TimeAmount, maxLifetime: TimeAmount, closeGrace: TimeAmount) {
        self.openedAt = openedAt
        self.lastFrameAt = openedAt
        self.idleTimeout = idleTimeout
        self.maxLifetime = maxLifetime
        self.closeGrace = closeGrace
    }

    /// The earliest moment the tunnel must look again. Once a close frame went either way only
    /// the cut is left: the deadlines that led to the close are past, and looking again at
    /// them would fire the timer at once, over and over.
    var nextDeadline: NIODeadline {
        if let at = self.cutAt { return at }
        var next = min(self.lastFrameAt + self.idleTimeout, self.openedAt + self.maxLifetime)
        if let at = self.goingAwayAt { next = min(next, at) }
        return next
    }

    /// Whether frames still go to `side`.
    func mayWrite(to side: Side) -> Bool {
        !self.ended && !self.sentClose.contains(Self.key(side))
    }

    // MARK: - Frames

    /// A frame arrived from `side`. Every frame, control frames included, counts as activity:
    /// a client that pings keeps its socket.
    mutating func frameArrived(from side: Side, opcode: WebSocketOpcode, payloadBytes: Int, now: NIODeadline) -> FrameAction {
        guard !self.ended else { return .drop(finish: false) }
        self.lastFrameAt = now
        switch side {
        case .client: self.bytesFromClient += payloadBytes
        case .upstream: self.bytesFromUpstream += payloadBytes
        }
        // A side that sent its close frame sends nothing more (RFC 6455 §5.5.1).
        guard !self.receivedClose.contains(Self.key(side)) else { return .drop(finish: false) }
        let passes = !self.sentClose.contains(Self.key(side.other))
        guard opcode == .connectionClose else { return passes ? .forward : .drop(finish: false) }
        self.receivedClose.insert(Self.key(side))
        if passes { self.sentClose.insert(Self.key(side.other)) }
        if self.cutAt == nil { self.cutAt = now + self.closeGrace }
        let finished = self.sentClose.count == 2 && self.receivedClose.count == 2
        if finished { self.ended = true }
        if passes { return finished ? .forwardAndFinish : .forward }
        return .drop(finish: finished)
    }

    // MARK: - The gateway's own close

    /// The gateway closes the socket now (suspension, revocation, a bad frame): the sides that
    /// have not been sent a close frame get one with `reason`'s code. Empty when the socket is
    /// closing already.
    mutating func close(_ reason: CloseReason, now: NIODeadline) -> [Side] {
        guard !self.ended else { return [] }
        let sides = Side.allCases.filter { !self.sentClose.contains(Self.key($0)) }
        guard !sides.isEmpty else { return [] }
        if self.closeReason == nil { self.closeReason = reason }
        for side in sides { self.sentClose.insert(Self.key(side)) }
        let cut = now + self.closeGrace
        self.cutAt = min(self.cutAt ?? cut, cut)
        return sides
    }

    /// Drain, or the customer's placement changed: the socket keeps running for `closeGrace`,
    /// then the gateway closes it (1001). Repeated calls keep the first moment.
    mutating func goAway(_ reason: CloseReason, now: NIODeadline) {
        guard !self.ended, self.goingAwayAt == nil else { return }
        self.goingAwayAt = now + self.closeGrace
        self.closeReason = self.closeReason ?? reason
    }

    /// The tunnel's timer fired at `now`.
    mutating func deadlinesReached(now: NIODeadline) -> Expiry {
        guard !self.ended else { return .none }
        if let at = self.cutAt, now >= at {
            self.ended = true
            return .cut
        }
        var due: CloseReason?
        if let at = self.goingAwayAt, now >= at {
            due = self.closeReason ?? .draining
        } else if now >= self.openedAt + self.maxLifetime {
            due = .maxLifetime
        } else if now >= self.lastFrameAt + self.idleTimeout {
            due = .idle
        }
        guard let reason = due else { return .none }
        let sides = self.close(reason, now: now)
        return sides.isEmpty ? .none : .close(reason, sides: sides)
    }

    // MARK: - Connections

    /// A connection closed (or failed). True the first time: the session ends now — the other
    /// connection is closed, and what the socket held is given back, once.
    mutating func connectionClosed() -> Bool {
        guard !self.ended else { return false }
        self.ended = true
        return true
    }
}
