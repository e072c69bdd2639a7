/// A rate with a burst: on average `requests` per `period`, and up to `burst` back to back
/// from idle.
///
/// Times are integer microseconds throughout the quota code. Microseconds, not nanoseconds,
/// because the same arithmetic runs in a Redis Lua script, where every number is a double
/// and integers are exact only up to 2^53: microseconds since 1970 are about 1.8 × 10^15
/// (exact until the year 2255), nanoseconds already exceed 2^53. Redis `TIME` also answers
/// in seconds and microseconds.
public struct RateLimit: Sendable, Hashable {
    /// The longest `window` accepted, about 35.7 years. Together with `GCRA.maxInstant` it
    /// keeps every intermediate value of `GCRA.decide` below 2^53 (see there).
    public static let maxWindow: Int64 = 1 << 50

    public let requests: Int
    /// In microseconds.
    public let period: Int64
    public let burst: Int

    /// T, in microseconds: the spacing of requests at the steady rate, `period / requests`
    /// rounded up. Rounded up so that the limiter never admits faster than configured; when
    /// `requests` does not divide `period` the steady rate is lower than asked by less than
    /// one microsecond per request (3 per second: T = 333 334 µs, 2.999 994 per second).
    public let emissionInterval: Int64

    /// `burst × T`, in microseconds: how far the theoretical arrival time may run ahead of now
    /// after an admission. Also the time an exhausted limit takes to refill completely.
    public let window: Int64

    /// - Parameter period: must be a whole, positive number of microseconds, and at least
    ///   `requests` of them (T ≥ 1 µs).
    public init(requests: Int, per period: Duration, burst: Int) throws(RateLimitError) {
        let (seconds, attoseconds) = period.components
        let attosecondsPerMicrosecond: Int64 = 1_000_000_000_000
        guard attoseconds % attosecondsPerMicrosecond == 0 else { throw .periodNotWholeMicroseconds }
        let (wholeSeconds, secondsOverflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
        let (microseconds, sumOverflow) = wholeSeconds.addingReportingOverflow(attoseconds / attosecondsPerMicrosecond)
        // A period beyond Int64 microseconds (292 000 years) can only be a mistake.
        guard !secondsOverflow, !sumOverflow else { throw .windowTooLong }
        try self.init(requests: requests, periodMicroseconds: microseconds, burst: burst)
    }

    public init(requests: Int, periodMicroseconds period: Int64, burst: Int) throws(RateLimitError) {
        guard requests > 0 else { throw .requestsNotPositive }
        guard burst > 0 else { throw .burstNotPositive }
        guard period > 0 else { throw .periodNotWholeMicroseconds }
        guard Int64(requests) <= period else { throw .rateTooHigh }
        let emissionInterval = (period + Int64(requests) - 1) / Int64(requests)
        let (window, overflow) = emissionInterval.multipliedReportingOverflow(by: Int64(burst))
        guard !overflow, window <= Self.maxWindow else { throw .windowTooLong }
        self.requests = requests
        self.period = period
        self.burst = burst
        self.emissionInterval = emissionInterval
        self.window = window
    }
}

/// Why a rate limit cannot be used. Fixed descriptions: configuration validation adds the
/// node path and field.
public struct RateLimitError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case requestsNotPositive
        case burstNotPositive
        case periodNotWholeMicroseconds
        case rateTooHigh
        case windowTooLong
    }

    private let code: Code

    private init(_ code: Code) { self.code = code }

    public static let requestsNotPositive = RateLimitError(.requestsNotPositive)
    public static let burstNotPositive = RateLimitError(.burstNotPositive)
    /// Zero, negative, or with a fraction of a microsecond.
    public static let periodNotWholeMicroseconds = RateLimitError(.periodNotWholeMicroseconds)
    /// More than one request per microsecond, which integer microseconds cannot space.
    public static let rateTooHigh = RateLimitError(.rateTooHigh)
    /// `burst × T` exceeds `RateLimit.maxWindow`.
    public static let windowTooLong = RateLimitError(.windowTooLong)

    public var description: String {
        switch code {
        case .requestsNotPositive: return "rate limit: requests must be at least 1"
        case .burstNotPositive: return "rate limit: burst must be at least 1"
        case .periodNotWholeMicroseconds: return "rate limit: period must be a positive whole number of microseconds"
        case .rateTooHigh: return "rate limit: more than one request per microsecond"
        case .windowTooLong: return "rate limit: burst × (period / requests) is longer than about 35 years"
        }
    }
}
