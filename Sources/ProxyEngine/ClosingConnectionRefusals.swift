import Hierarchy
import NIOCore

/// Quota refusals of requests whose client closes the connection after the answer, counted per
/// customer on one event loop. A connection's own pacing (`RefusalPacing`) slows a client that
/// keeps one connection and goes on sending what is refused; a client that opens a new
/// connection for every request escapes it, so for those requests the same pacing is kept per
/// customer: from the third quota refusal in a row of one customer's closing requests (no
/// admitted closing request of that customer in between), each refusal is answered after the
/// pause a keep-alive connection would take before its next request — that refusal's exact wait,
/// doubling, at most `RefusalPacing.longestPause`. A client that waits for its answers before
/// reconnecting (every HTTP client library does) is slowed to a few attempts a second per
/// connection it holds. Only refusals wait, only the refused customer's, and never a request that
/// is admitted. Bounded: `capacity` customers remembered, `maxHeld` answers held; past either a
/// refusal is answered at once, as before.
struct ClosingConnectionRefusals {
    /// Customers remembered per loop.
    static let capacity = 10_000
    /// Answers held at once per loop: each holds a connection (a file descriptor) open.
    static let maxHeld = 1_024
    /// A customer with no refusal for this long starts again from zero.
    static let forgetAfter = TimeAmount.seconds(2)

    private struct Streak {
        var pacing = RefusalPacing()
        var lastRefusal: NIODeadline
    }

    private var streaks: [NodeID: Streak] = [:]
    /// When stale customers were last swept out: at most once per `forgetAfter`, so a loop at
    /// capacity does not scan every customer on each refusal.
    private var lastSweep: NIODeadline?
    /// Answers held now (`refused` returned a pause, `released` not yet called).
    private(set) var held = 0

    var isEmpty: Bool { self.streaks.isEmpty }

    /// `customer` was refused for a quota on a connection that closes after the answer, which
    /// could pass after `retryAfter`. Returns how long to hold the answer, or nil to answer now;
    /// every pause returned must be followed by one `released()`.
    mutating func refused(_ customer: NodeID, retryAfter: TimeAmount, now: NIODeadline) -> TimeAmount? {
        var streak: Streak
        if let known = self.streaks[customer] {
            streak = now - known.lastRefusal < Self.forgetAfter ? known : Streak(lastRefusal: now)
        } else {
            if self.streaks.count >= Self.capacity {
                self.forgetStale(now: now)
                guard self.streaks.count < Self.capacity else { return nil }
            }
            streak = Streak(lastRefusal: now)
        }
        let pause = streak.pacing.exchangeEnded(quotaRetryAfter: retryAfter)
        streak.lastRefusal = now
        self.streaks[customer] = streak
        guard let pause, self.held < Self.maxHeld else { return nil }
        self.held += 1
        return pause
    }

    /// A held answer went out, or its client left.
    mutating func released() {
        precondition(self.held > 0, "released more answers than were held")
        self.held -= 1
    }

    /// A closing request of `customer` was admitted: its refusals are no longer in a row.
    mutating func admitted(_ customer: NodeID) {
        self.streaks.removeValue(forKey: customer)
    }

    private mutating func forgetStale(now: NIODeadline) {
        if let last = self.lastSweep, now - last < Self.forgetAfter { return }
        self.lastSweep = now
        self.streaks = self.streaks.filter { now - $0.value.lastRefusal < Self.forgetAfter }
    }
}
