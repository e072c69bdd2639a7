/// Passive outlier ejection for one endpoint: real traffic, not health checks, decides.
///
/// Time: every method that needs time takes `now`, a monotonic instant in **nanoseconds**
/// (e.g. `NIODeadline.now().uptimeNanoseconds`). Durations in `Configuration` use the same unit.
/// The type never reads a clock, so tests drive it with plain numbers.
///
/// Lifecycle:
/// - `active`: counts consecutive failures (connect errors and 5xx; the driver decides what is a
///   failure). At `consecutiveFailures` in a row the endpoint is ejected — unless the cell's cap
///   on ejected endpoints is reached (see `record`).
/// - `ejected(until:)`: not eligible. The n-th ejection in a row lasts
///   `baseEjection × 2^(n-1)`, capped at `maxEjection`, so a flapping endpoint is retried ever
///   more rarely instead of taking a share of traffic every few seconds.
/// - `probing`: once the ejection expired, exactly one request is let through (`admit`).
///   Success → `active` again and the ejection count decays by one (not reset: an endpoint that
///   fails more often than it recovers keeps growing its backoff). Failure → ejected again with
///   the next, longer backoff.
public struct OutlierDetector: Sendable, Hashable {
    public struct Configuration: Sendable, Hashable {
        /// Failures in a row that eject an endpoint. At least 1.
        public var consecutiveFailures: Int
        /// First ejection's duration, nanoseconds. More than 0.
        public var baseEjectionNanoseconds: UInt64
        /// Upper bound on any ejection, nanoseconds. At least `baseEjectionNanoseconds`.
        public var maxEjectionNanoseconds: UInt64
        /// Most endpoints of a cell that may be ejected at once, in percent of its endpoints,
        /// rounded down (10 % of 5 endpoints is 0: such a cell never ejects). 0...100.
        /// Why: if half a cell "fails" it is more likely overload or a bad deploy than bad
        /// endpoints, and ejecting them would push all traffic onto the rest.
        public var maxEjectedPercent: Int

        public init(
            consecutiveFailures: Int,
            baseEjectionNanoseconds: UInt64,
            maxEjectionNanoseconds: UInt64,
            maxEjectedPercent: Int
        ) {
            precondition(consecutiveFailures >= 1, "consecutiveFailures must be at least 1")
            precondition(baseEjectionNanoseconds > 0, "baseEjection must be positive")
            precondition(maxEjectionNanoseconds >= baseEjectionNanoseconds, "maxEjection below baseEjection")
            precondition((0...100).contains(maxEjectedPercent), "maxEjectedPercent must be 0...100")
            self.consecutiveFailures = consecutiveFailures
            self.baseEjectionNanoseconds = baseEjectionNanoseconds
            self.maxEjectionNanoseconds = maxEjectionNanoseconds
            self.maxEjectedPercent = maxEjectedPercent
        }
    }

    public enum State: Sendable, Hashable {
        case active(consecutiveFailures: Int)
        case ejected(until: UInt64)
        /// The ejection expired; `probeInFlight` tells whether the single probe is out.
        case probing(probeInFlight: Bool)
    }

    /// What a recorded outcome changed; the driver logs transitions and arms no timer
    /// (eligibility is re-evaluated from `now` on each pick).
    public enum Action: Sendable, Hashable {
        case none
        case ejected(until: UInt64)
        /// The failure threshold was reached but the cell's ejection cap was full; the endpoint
        /// stays in and the next failure tries again.
        case ejectionSuppressed
        case restored
    }

    public let configuration: Configuration
    public private(set) var state: State = .active(consecutiveFailures: 0)
    /// Ejections not yet decayed by successful probes; the exponent of the next backoff.
    public private(set) var ejectionCount: Int = 0

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Whether the caller must count this endpoint as ejected for the cell's cap: ejected or
    /// probing (a probing endpoint is not back in until its probe succeeded).
    public var isEjected: Bool {
        if case .active = state { return false }
        return true
    }

    /// Whether a request could be sent here at `now`, without taking the probe slot.
    /// For candidate filtering (`PowerOfTwoChoices`); confirm with `admit(now:)`.
    public func isEligible(now: UInt64) -> Bool {
        switch state {
        case .active: return true
        case .ejected(let until): return now >= until
        case .probing(let probeInFlight): return !probeInFlight
        }
    }

    /// Call when a request is about to be sent to this endpoint. Returns false if it must not:
    /// still ejected, or the one probe is already out. An expired ejection turns into probing and
    /// this request becomes the probe.
    public mutating func admit(now: UInt64) -> Bool {
        switch state {
        case .active:
            return true
        case .ejected(let until):
            guard now >= until else { return false }
            state = .probing(probeInFlight: true)
            return true
        case .probing(let probeInFlight):
            guard !probeInFlight else { return false }
            state = .probing(probeInFlight: true)
            return true
        }
    }

    /// Records the outcome of a request admitted by `admit(now:)`.
    /// - Parameters:
    ///   - failed: a connect error or a 5xx. 4xx are the client's doing and count as success.
    ///   - ejectedInCell: endpoints of this cell currently ejected or probing (`isEjected`),
    ///     this one included if it is.
    ///   - endpointsInCell: all endpoints of this cell.
    /// A probe's failure re-ejects without consulting the cap: the endpoint was never back in,
    /// so the ejected count does not grow.
    public mutating func record(failed: Bool, now: UInt64, ejectedInCell: Int, endpointsInCell: Int) -> Action {
        switch state {
        case .active(let failures):
            guard failed else {
                state = .active(consecutiveFailures: 0)
                return .none
            }
            let run = failures + 1
            guard run >= configuration.consecutiveFailures else {
                state = .active(consecutiveFailures: run)
                return .none
            }
            let cap = endpointsInCell * configuration.maxEjectedPercent / 100
            guard ejectedInCell < cap else {
                // Keep the run at the threshold so the next failure reconsiders the cap.
                state = .active(consecutiveFailures: configuration.consecutiveFailures)
                return .ejectionSuppressed
            }
            return eject(now: now)
        case .probing:
            if failed { return eject(now: now) }
            state = .active(consecutiveFailures: 0)
            ejectionCount = max(0, ejectionCount - 1)
            return .restored
        case .ejected:
            // A request admitted before the ejection finished late; its outcome is stale.
            return .none
        }
    }

    /// A request admitted by `admit(now:)` ended without telling anything about the endpoint
    /// (the client left, the gateway's own limits refused it). A probe gives its slot back so
    /// the next request probes instead; otherwise nothing changes.
    public mutating func abandon() {
        if case .probing(true) = state { state = .probing(probeInFlight: false) }
    }

    /// Duration of the `n`-th ejection (1-based): base × 2^(n-1), capped, without overflow.
    public static func backoff(ejection n: Int, configuration: Configuration) -> UInt64 {
        let base = configuration.baseEjectionNanoseconds
        let cap = configuration.maxEjectionNanoseconds
        let shift = max(0, n - 1)
        guard shift < 63, base <= cap >> UInt64(shift) else { return cap }
        return min(base << UInt64(shift), cap)
    }

    private mutating func eject(now: UInt64) -> Action {
        ejectionCount += 1
        let duration = Self.backoff(ejection: ejectionCount, configuration: configuration)
        let (until, overflow) = now.addingReportingOverflow(duration)
        let deadline = overflow ? UInt64.max : until
        state = .ejected(until: deadline)
        return .ejected(until: deadline)
    }
}
