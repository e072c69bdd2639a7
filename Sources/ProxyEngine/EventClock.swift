import NIOCore

/// The loop's clock, read at most once while one event is handled (a client read, an upstream
/// response part): every decision of that event — deadlines, the exchange's instants, cell
/// routing — takes the same reading. Outside an event it reads the clock every time.
///
/// Each reading is a `clock_gettime`; a proxied request read it at seven places on its way
/// through one connection handler, 1.4 % of a proxy-only profile's samples (`PERF_FREQ=2000
/// PERF_CALLGRAPH="--call-graph dwarf,8192" bench/profile.sh proxy 10`). One event's work
/// takes microseconds, so a reading shared by it is as good as a fresh one for timeouts of
/// milliseconds and for the access log's microseconds.
struct EventClock {
    /// Events being handled, nested (an event can start another synchronously).
    private var depth = 0
    private var reading: NIODeadline?

    /// The instant of the event being handled: `read` once per event; outside one, every call.
    mutating func now(_ read: () -> NIODeadline) -> NIODeadline {
        guard self.depth > 0 else { return read() }
        if let reading = self.reading { return reading }
        let now = read()
        self.reading = now
        return now
    }

    /// An event starts being handled.
    mutating func enter() {
        self.depth += 1
    }

    /// The event is handled: the next one reads the clock anew.
    mutating func leave() {
        self.depth -= 1
        if self.depth == 0 { self.reading = nil }
    }
}
