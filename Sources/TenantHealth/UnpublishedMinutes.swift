/// Finished minutes a publication could not write (the shared store was unreachable), kept for
/// the next one. Loops hand over a finished minute only once, so without this a failed write
/// would lose it; the current minute needs no keeping, since the loops still hold it and hand
/// it over again.
///
/// Bounded: at most `capacity` minutes, the newest; older ones are dropped and counted.
public struct UnpublishedMinutes: Sendable {
    public let capacity: Int
    public private(set) var minutes: [MinuteFigures] = []
    public private(set) var droppedMinutes = 0

    public init(capacity: Int = 5) {
        self.capacity = capacity
    }

    /// What to write now: the kept minutes merged with the loops' tables, and nothing kept.
    public mutating func takeMerged(with tables: [MinuteFigures]) -> [MinuteFigures] {
        defer { self.minutes = [] }
        return MinuteFigures.merged(self.minutes + tables)
    }

    /// Keeps the minutes before `nowMinute` of a write that failed.
    public mutating func keep(failed tables: [MinuteFigures], nowMinute: Int64) {
        let finished = MinuteFigures.merged(self.minutes + tables.filter { $0.minute < nowMinute })
        self.droppedMinutes += max(0, finished.count - self.capacity)
        self.minutes = Array(finished.suffix(self.capacity))
    }
}
