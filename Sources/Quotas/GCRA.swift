/// The Generic Cell Rate Algorithm (ITU-T I.371), as one pure decision per request.
///
/// State is a single number per key, the theoretical arrival time (TAT): the instant at which
/// the limit would be fully idle again if no further request came. With emission interval
/// T = period / requests and the ITU's delay variation tolerance τ = T × (burst − 1), a
/// request of cost `c` arriving at `now` conforms when
///
///     max(TAT, now) + c × T − now ≤ τ + T = burst × T   (`RateLimit.window`)
///
/// τ = T × (burst − 1) rather than T × burst so that `burst` means what it says: from idle
/// exactly `burst` unit requests pass back to back (the k-th leaves the TAT k × T ahead),
/// then one more every T. (redis-cell's `max_burst` is this `burst − 1`.)
///
/// All times are integer microseconds (see `RateLimit`). The arithmetic is kept to what the
/// Redis Lua script mirrors line for line: compare, add, subtract, multiply, one floor
/// division. How the caller applies a decision:
/// - `admitted`: store `newTAT`, with a TTL of `resetAfter` (after that the key would mean
///   "idle", which a missing key means too).
/// - `refused` / `costExceedsBurst`: store nothing. A refused request consumes nothing, so a
///   client hammering a full limit does not push its own recovery further away.
public struct GCRA: Sendable, Hashable {
    /// The latest `now` accepted, 2^52 µs after the epoch (the year 2112). With
    /// `RateLimit.maxWindow` = 2^50 every value computed stays below 2^53, exact in a Lua
    /// double and far from Int64 overflow, whatever the stored TAT.
    public static let maxInstant: Int64 = 1 << 52

    public enum Decision: Sendable, Hashable {
        /// Charge the request: store `newTAT`. `remaining` unit-cost requests would still be
        /// admitted at this instant; the limit is fully idle again `resetAfter` µs from now.
        case admitted(newTAT: Int64, remaining: Int, resetAfter: Int64)
        /// Refuse without charging. The same request is admitted exactly `retryAfter` µs from
        /// now if nothing else is admitted meanwhile, and not a microsecond sooner; the limit
        /// is fully idle `resetAfter` µs from now.
        case refused(retryAfter: Int64, resetAfter: Int64)
        /// The cost is larger than the burst: no state will ever admit this request, so there
        /// is no retry time to tell the client. A configuration problem, not a client one.
        case costExceedsBurst
    }

    public let limit: RateLimit

    public init(_ limit: RateLimit) {
        self.limit = limit
    }

    /// - Parameters:
    ///   - storedTAT: the key's value, `nil` when the key is absent.
    ///   - now: in `0...GCRA.maxInstant`, from the one clock every writer of this key uses
    ///     (Redis `TIME` for the shared limits).
    ///   - cost: at least 1.
    public func decide(storedTAT: Int64?, now: Int64, cost: Int = 1) -> Decision {
        precondition(cost >= 1, "a request costs at least 1")
        precondition(now >= 0 && now <= Self.maxInstant, "now is outside 0...GCRA.maxInstant")
        guard cost <= limit.burst else { return .costExceedsBurst }

        let window = limit.window
        let ahead = self.bookedAhead(storedTAT: storedTAT, now: now)
        let charge = Int64(cost) * limit.emissionInterval
        let newAhead = ahead + charge
        guard newAhead <= window else {
            // Waiting r µs lowers `ahead` by r (r ≤ ahead, as charge ≤ window), so the first
            // instant at which the request conforms is exactly newAhead − window from now.
            return .refused(retryAfter: newAhead - window, resetAfter: ahead)
        }
        return .admitted(newTAT: now + newAhead, remaining: self.remaining(bookedAhead: newAhead), resetAfter: newAhead)
    }

    /// How far the limit is booked ahead of `now`, in 0...window: µs until it is idle.
    ///
    /// A TAT in the past (or no key) means idle. A TAT more than one window ahead cannot have
    /// been written at or before `now` (an admission leaves it at most `window` ahead), so the
    /// clock stepped back — a Redis failover onto a host whose clock is behind — or the value
    /// is corrupt. It is treated as idle: trusting it would refuse every active tenant for as
    /// long as the clock step, while dropping it lets at most one extra burst through. No
    /// overflow: `tat - now` is only taken when tat > now ≥ 0.
    public func bookedAhead(storedTAT: Int64?, now: Int64) -> Int64 {
        guard let tat = storedTAT, tat > now, tat - now <= limit.window else { return 0 }
        return tat - now
    }

    /// Unit-cost requests that would pass back to back with the limit booked `ahead` µs
    /// (in 0...window) ahead of now.
    public func remaining(bookedAhead ahead: Int64) -> Int {
        Int((limit.window - ahead) / limit.emissionInterval)
    }
}
