/// Per-cell admission: bounded pending and in-flight requests.
///
/// Why: one slow cell must not slow the others. Without a bound its requests pile up waiting for
/// connections, holding memory and client sockets, until the whole node is slow. Past the bound
/// a request is refused at once (503 `cell-overloaded` with `Retry-After`), which costs nothing
/// and tells clients when to come back.
///
/// Lifecycle of one request: `admit()` → pending (waiting for a connection) →
/// `connectionAcquired()` → in flight → `finished(.inFlight)`; or `finished(.pending)` if it gave
/// up while waiting (client gone, connect timeout). Counters never go negative: an unmatched
/// finish is ignored rather than trapping.
///
/// No clock: the bounds are on concurrency; `retryAfterSeconds` is a configured hint.
public struct CellLoad: Sendable, Hashable {
    public struct Configuration: Sendable, Hashable {
        /// Requests that may wait for a connection at once. At least 1: every request passes
        /// through pending, so 0 would refuse everything.
        public var maxPending: Int
        /// Requests that may be sent and unanswered at once. At least 1.
        public var maxInFlight: Int
        /// Sent as `Retry-After` on refusal. At least 1 (0 would invite an immediate retry).
        public var retryAfterSeconds: Int

        public init(maxPending: Int, maxInFlight: Int, retryAfterSeconds: Int) {
            precondition(maxPending >= 1, "maxPending must be at least 1")
            precondition(maxInFlight >= 1, "maxInFlight must be at least 1")
            precondition(retryAfterSeconds >= 1, "retryAfterSeconds must be at least 1")
            self.maxPending = maxPending
            self.maxInFlight = maxInFlight
            self.retryAfterSeconds = retryAfterSeconds
        }
    }

    public enum Admission: Sendable, Hashable {
        /// Counted as pending; the caller now waits for a connection.
        case admitted
        /// Refused; nothing was counted.
        case overloaded(retryAfterSeconds: Int)
    }

    /// Where a request was when it finished.
    public enum Phase: Sendable, Hashable {
        case pending
        case inFlight
    }

    public let configuration: Configuration
    public private(set) var pending: Int = 0
    public private(set) var inFlight: Int = 0

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Admits a request as pending, unless the pending queue is full. A request arriving while
    /// in-flight has room still goes through pending: the bound on pending is the bound on
    /// requests not yet holding a connection, whatever the reason.
    /// The same counts under new bounds (a configuration reload): requests already counted stay
    /// counted, so a reload never lets a cell exceed its bounds by forgetting its load.
    public func reconfigured(_ configuration: Configuration) -> CellLoad {
        var copy = CellLoad(configuration: configuration)
        copy.pending = self.pending
        copy.inFlight = self.inFlight
        return copy
    }

    /// Whether a request is pending and in-flight has room for it.
    public var canAcquire: Bool { pending > 0 && inFlight < configuration.maxInFlight }

    public mutating func admit() -> Admission {
        guard pending < configuration.maxPending else {
            return .overloaded(retryAfterSeconds: configuration.retryAfterSeconds)
        }
        pending += 1
        return .admitted
    }

    /// Moves one pending request in flight. Returns false if in-flight is full: the request stays
    /// pending and the driver tries again after the next `finished(.inFlight)`.
    public mutating func connectionAcquired() -> Bool {
        guard pending > 0, inFlight < configuration.maxInFlight else { return false }
        pending -= 1
        inFlight += 1
        return true
    }

    public mutating func finished(_ phase: Phase) {
        switch phase {
        case .pending: pending = max(0, pending - 1)
        case .inFlight: inFlight = max(0, inFlight - 1)
        }
    }
}
