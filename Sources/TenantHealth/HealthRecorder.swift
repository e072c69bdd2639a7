import Hierarchy

/// One event loop's figures until they are published: the current minute and, until it is
/// taken, the one before. Loop-confined and lock-free; the publisher takes the tables on each
/// loop, merges them and writes them to the shared store.
///
/// Memory: at most two minutes, each at most one `HealthFigures` (about 1 KB) per partner and
/// per OEM with requests in it. Should a minute end while the one before it was never taken
/// (the publisher stalled for a whole minute), that older minute is dropped and counted in
/// `droppedMinutes`, rather than held without bound.
public struct HealthRecorder: Sendable {
    public private(set) var current: MinuteFigures?
    public private(set) var previous: MinuteFigures?
    /// Minutes up to this one were taken for good: a request that ends (by its clock) in one of
    /// them after that counts in the next minute, so a published minute is never written again
    /// with part of its figures missing.
    public private(set) var finishedThrough: Int64 = .min
    public private(set) var droppedMinutes = 0

    public init() {}

    /// - Parameter minute: the UTC minute the request ended in.
    public mutating func record(_ customer: NodePath, minute: Int64, status: UInt?, gatewayMicroseconds: Int64, upstreamMicroseconds: Int64?) {
        let minute = max(minute, self.finishedThrough &+ 1)
        // Compared through optional chaining, never bound to a local: a local copy would make
        // the mutation below copy the whole table.
        if self.previous?.minute == minute {
            self.previous!.record(customer, status: status, gatewayMicroseconds: gatewayMicroseconds, upstreamMicroseconds: upstreamMicroseconds)
            return
        }
        if let currentMinute = self.current?.minute, minute > currentMinute {
            if self.previous != nil { self.droppedMinutes += 1 }
            self.previous = self.current.take()
        }
        // A request ending a little late for the current minute (clocks of loops differ by a
        // hair) counts in it.
        if self.current == nil { self.current = MinuteFigures(minute: minute) }
        self.current!.record(customer, status: status, gatewayMicroseconds: gatewayMicroseconds, upstreamMicroseconds: upstreamMicroseconds)
    }

    /// What to publish at `nowMinute`: every minute before it, taken for good, and a copy of
    /// `nowMinute`'s figures so far (the store keeps one value per node and minute, which each
    /// publication replaces, so publishing a minute's figures so far is safe).
    public mutating func take(nowMinute: Int64) -> [MinuteFigures] {
        var tables: [MinuteFigures] = []
        for table in [self.previous, self.current].compactMap({ $0 }) where !table.tenants.isEmpty { tables.append(table) }
        self.previous = nil
        if let current = self.current, current.minute < nowMinute { self.current = nil }
        self.finishedThrough = max(self.finishedThrough, nowMinute &- 1)
        return tables
    }
}
