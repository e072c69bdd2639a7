/// When to try Redis again after a connection failed, and whether Redis counts as reachable
/// meanwhile — as a pure value: events in, actions out, no I/O, time and randomness injected.
///
/// Two jobs, one state:
/// - **Backoff.** Each consecutive failure doubles (by `multiplier`) the delay before the next
///   attempt, from `initialDelay` up to `maximumDelay`; a random share (`jitter`) is taken off
///   each delay so that many gateway nodes losing Redis together do not reconnect in lockstep.
///   `connected()` starts over from `initialDelay`.
/// - **Breaker view.** `isAvailable` is false from the first failure until the next successful
///   connection, so callers (the quota fail modes) decide at once instead of each request
///   waiting on a connect or response timeout while Redis is down.
///
/// Times are integer nanoseconds: `now` on a monotonic clock (the driver passes
/// `NIODeadline.now().uptimeNanoseconds`), delays relative to it.
public struct ReconnectBackoff: Sendable, Hashable {
    public struct Configuration: Sendable, Hashable {
        /// Delay after the first failure, before jitter. > 0.
        public var initialDelayNanoseconds: Int64
        /// No delay is ever longer. ≥ `initialDelayNanoseconds`.
        public var maximumDelayNanoseconds: Int64
        /// Growth per consecutive failure. ≥ 1.
        public var multiplier: Int64
        /// Share of each delay removed at random, in 0...1: the delay lies in
        /// (d × (1 − jitter), d]. 0 makes the schedule deterministic.
        public var jitter: Double

        /// Defaults: 50 ms, doubling, capped at 2 s, up to half of each delay removed at random.
        public init(
            initialDelayNanoseconds: Int64 = 50_000_000,
            maximumDelayNanoseconds: Int64 = 2_000_000_000,
            multiplier: Int64 = 2,
            jitter: Double = 0.5
        ) {
            precondition(initialDelayNanoseconds > 0, "initial delay must be positive")
            precondition(maximumDelayNanoseconds >= initialDelayNanoseconds, "maximum delay below the initial delay")
            precondition(multiplier >= 1, "multiplier below 1")
            precondition((0...1).contains(jitter), "jitter outside 0...1")
            self.initialDelayNanoseconds = initialDelayNanoseconds
            self.maximumDelayNanoseconds = maximumDelayNanoseconds
            self.multiplier = multiplier
            self.jitter = jitter
        }
    }

    public enum State: Sendable, Hashable {
        /// No attempt has finished yet. Counted as available: the first attempt is bounded by
        /// the connect timeout, and refusing before trying would make startup fail.
        case initial
        case connected
        /// Since the first of the consecutive failures (nanoseconds, the caller's clock).
        case disconnected(sinceNanoseconds: Int64)
    }

    public enum Action: Sendable, Hashable {
        /// Try again this many nanoseconds from now (> 0, ≤ the maximum delay).
        case retry(afterNanoseconds: Int64)
    }

    public let configuration: Configuration
    public private(set) var state: State = .initial
    /// Failures since the last successful connection.
    public private(set) var consecutiveFailures = 0
    /// The un-jittered delay the next failure will be given.
    private var nextDelayNanoseconds: Int64

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.nextDelayNanoseconds = configuration.initialDelayNanoseconds
    }

    /// True unless the last attempt (or the connection) failed and no connection has been
    /// established since.
    public var isAvailable: Bool {
        if case .disconnected = self.state { return false }
        return true
    }

    /// When the current outage began; `nil` while available.
    public var disconnectedSinceNanoseconds: Int64? {
        if case .disconnected(let since) = self.state { return since }
        return nil
    }

    /// A connection attempt failed, or an established connection was lost.
    /// - Parameters:
    ///   - now: nanoseconds on the caller's monotonic clock.
    ///   - random: the jitter's source; a seeded generator makes the schedule reproducible.
    public mutating func connectionFailed(now: Int64, using random: inout some RandomNumberGenerator) -> Action {
        if case .disconnected = self.state {} else {
            self.state = .disconnected(sinceNanoseconds: now)
        }
        self.consecutiveFailures += 1
        let delay = self.nextDelayNanoseconds
        let (grown, overflow) = delay.multipliedReportingOverflow(by: self.configuration.multiplier)
        self.nextDelayNanoseconds = overflow ? self.configuration.maximumDelayNanoseconds : min(grown, self.configuration.maximumDelayNanoseconds)

        let removable = Double(delay) * self.configuration.jitter
        let removed = Int64(removable * Double.random(in: 0..<1, using: &random))
        // At least 1 ns: a zero delay would turn a flapping server into a busy loop.
        return .retry(afterNanoseconds: max(1, delay - removed))
    }

    /// A connection is established (and set up). The next failure starts from the initial delay.
    public mutating func connected() {
        self.state = .connected
        self.consecutiveFailures = 0
        self.nextDelayNanoseconds = self.configuration.initialDelayNanoseconds
    }
}
