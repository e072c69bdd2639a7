/// A cap on concurrent retries, as a share of live requests.
///
/// Why: when a cell degrades, every failing request retrying turns into a retry storm that
/// multiplies its load just when it can least take it. The budget lets retries smooth over the
/// odd failure but stops them once they would be a large share of the traffic.
///
/// Contract: a retry may start only while, after starting it, retries in flight stay within
/// `max(minRetriesInFlight, floor(ratio × active requests))`. Active requests are original
/// requests (started and not finished); retries are counted apart. `minRetriesInFlight` lets a
/// quiet cell still retry. Counters never go negative: an unmatched finish is ignored rather than
/// trapping, since a driver bug must not take the gateway down (it only loosens the budget).
///
/// No clock: the budget depends on concurrency only.
public struct RetryBudget: Sendable, Hashable {
    public struct Configuration: Sendable, Hashable {
        /// Retries allowed in flight however few requests are active. At least 0.
        public var minRetriesInFlight: Int
        /// Share of active requests that may be in retry at once, e.g. 0.2. At least 0.
        public var ratio: Double

        public init(minRetriesInFlight: Int, ratio: Double) {
            precondition(minRetriesInFlight >= 0, "minRetriesInFlight must not be negative")
            precondition(ratio >= 0 && ratio.isFinite, "ratio must be a finite non-negative number")
            self.minRetriesInFlight = minRetriesInFlight
            self.ratio = ratio
        }
    }

    public let configuration: Configuration
    public private(set) var activeRequests: Int = 0
    public private(set) var retriesInFlight: Int = 0

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// The same counts under a new configuration (a reload).
    public func reconfigured(_ configuration: Configuration) -> RetryBudget {
        var copy = RetryBudget(configuration: configuration)
        copy.activeRequests = self.activeRequests
        copy.retriesInFlight = self.retriesInFlight
        return copy
    }

    /// The most retries that may be in flight with the current active requests.
    public var limit: Int {
        let share = (configuration.ratio * Double(activeRequests)).rounded(.down)
        let proportional = share >= Double(Int.max) ? Int.max : Int(share)
        return max(configuration.minRetriesInFlight, proportional)
    }

    public mutating func requestStarted() {
        activeRequests += 1
    }

    public mutating func requestFinished() {
        activeRequests = max(0, activeRequests - 1)
    }

    /// Checks the budget and, if it allows, counts the retry as started — one step, so that a
    /// check and its start can never disagree. Returns false when the retry must not be made
    /// (the caller answers with the failure it has). Pair a `true` with `retryFinished()`.
    public mutating func retryStarted() -> Bool {
        guard retriesInFlight < limit else { return false }
        retriesInFlight += 1
        return true
    }

    public mutating func retryFinished() {
        retriesInFlight = max(0, retriesInFlight - 1)
    }
}

/// Whether a failed upstream attempt may be tried again, as far as safety goes. The budget
/// (`RetryBudget`) and residency of the next cell are separate checks.
public enum RetryPolicy {
    public enum Failure: Sendable, Hashable {
        /// No connection was established: the upstream never saw the request, so a retry
        /// cannot apply it twice, whatever the method.
        case connectFailed
        /// The request may have reached the upstream (reset, timeout, 5xx after sending).
        case afterConnect
    }

    /// Methods RFC 9110 §9.2.2 defines as idempotent. Method names are case-sensitive
    /// (RFC 9110 §9.1): "get" is not GET and is not retried.
    public static let idempotentMethods: Set<String> = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"]

    /// - Parameters:
    ///   - bodyStreamed: part of the request body was already sent upstream and cannot be
    ///     replayed. Irrelevant for `connectFailed` (nothing reached the upstream); the caller must
    ///     still hold the body it would resend.
    ///   - attempt: 1-based number of the attempt that just failed.
    ///   - maxAttempts: attempts allowed in all, the first included (1 = never retry).
    public static func mayRetry(
        method: String,
        failure: Failure,
        bodyStreamed: Bool,
        attempt: Int,
        maxAttempts: Int
    ) -> Bool {
        guard attempt < maxAttempts else { return false }
        switch failure {
        case .connectFailed:
            return true
        case .afterConnect:
            return !bodyStreamed && idempotentMethods.contains(method)
        }
    }
}
