/// When to fetch one issuer's keys: a pure state machine, fed the time (unix seconds, from the
/// caller's clock) and the fetch results, answering whether to fetch now.
///
/// - The first fetch is due at once; after a success the next is due after the answer's
///   `max-age` held within `[minimumRefresh, maximumRefresh]` (`defaultRefresh` without one).
/// - A failed fetch is retried after `minimumRefresh`; the last good keys stay in use until
///   their refresh was due plus `staleKeysFor`, never longer (`usableUntil`).
/// - An unknown `kid` refreshes early, but only when the last fetch of any kind started at least
///   `minimumRefresh` ago, so a flood of made-up `kid`s costs the provider at most one fetch per
///   `minimumRefresh`.
/// - One fetch at a time.
public struct KeyRefreshSchedule: Sendable, Equatable {
    public struct Bounds: Sendable, Equatable {
        public var minimumRefresh: Double
        public var defaultRefresh: Double
        public var maximumRefresh: Double
        public var staleKeysFor: Double

        public init(minimumRefresh: Double, defaultRefresh: Double, maximumRefresh: Double, staleKeysFor: Double) {
            self.minimumRefresh = minimumRefresh
            self.defaultRefresh = defaultRefresh
            self.maximumRefresh = maximumRefresh
            self.staleKeysFor = staleKeysFor
        }

        /// The refresh interval an answer with `maxAge` (seconds, nil without one) asks for,
        /// held within the bounds.
        public func refreshInterval(maxAge: Int64?) -> Double {
            guard let maxAge else { return defaultRefresh }
            return min(max(Double(maxAge), minimumRefresh), maximumRefresh)
        }
    }

    public enum Action: Sendable, Equatable {
        case fetch
        case wait
    }

    public private(set) var bounds: Bounds
    public private(set) var fetching = false
    /// When the next scheduled fetch is due.
    public private(set) var nextRefresh: Double
    /// When the last fetch started; nil before the first.
    public private(set) var lastFetchStarted: Double?
    /// When the last successful fetch ended; nil before the first.
    public private(set) var lastSuccess: Double?
    /// Until when the last good keys may be used; nil without any.
    public private(set) var usableUntil: Double?

    public init(bounds: Bounds, now: Double) {
        self.bounds = bounds
        self.nextRefresh = now
    }

    /// A timer tick: fetch when the scheduled refresh is due.
    public mutating func tick(now: Double) -> Action {
        guard !fetching, now >= nextRefresh else { return .wait }
        return self.start(now: now)
    }

    /// A token named a `kid` the issuer's key set does not hold.
    public mutating func unknownKey(now: Double) -> Action {
        guard !fetching else { return .wait }
        if let last = lastFetchStarted, now - last < bounds.minimumRefresh { return .wait }
        return self.start(now: now)
    }

    public mutating func succeeded(now: Double, maxAge: Int64?) {
        fetching = false
        lastSuccess = now
        nextRefresh = now + bounds.refreshInterval(maxAge: maxAge)
        usableUntil = nextRefresh + bounds.staleKeysFor
    }

    public mutating func failed(now: Double) {
        fetching = false
        nextRefresh = now + bounds.minimumRefresh
    }

    /// Whether the last good keys are past their bound at `now` (false without keys).
    public func keysExpired(now: Double) -> Bool {
        guard let usableUntil else { return false }
        return now >= usableUntil
    }

    /// The same schedule under other bounds (a reload changed them): the times already fixed
    /// stay, the new bounds apply from the next fetch.
    public func rebounded(_ bounds: Bounds) -> KeyRefreshSchedule {
        var copy = self
        copy.bounds = bounds
        return copy
    }

    private mutating func start(now: Double) -> Action {
        fetching = true
        lastFetchStarted = now
        return .fetch
    }
}
