import Logging

/// Coalesces a warning that would otherwise be written once per request — while the quota store
/// is down every admitted or refused request would log the same line — into its first occurrence
/// and then, once per interval, one line with the number of repeats. A pure value with the time
/// passed in; one per event loop, like the rest of the loop's state.
struct RepeatedWarnings {
    /// What to do with one occurrence.
    enum Verdict: Equatable {
        /// Write it; `repeatsBefore` occurrences since the last written line were held back.
        case log(repeatsBefore: Int)
        /// Held back and counted.
        case hold
    }

    /// A line's repeats, due to be written.
    struct Summary: Equatable {
        var message: String
        var repeats: Int
    }

    private struct Window {
        var start: UInt64
        var held: Int
    }

    /// Nanoseconds between two lines of the same message.
    let interval: UInt64
    private var windows: [String: Window] = [:]

    init(intervalNanoseconds: UInt64 = 10_000_000_000) {
        self.interval = intervalNanoseconds
    }

    /// One occurrence of `message` at `now` (monotonic nanoseconds).
    mutating func occurrence(_ message: String, now: UInt64) -> Verdict {
        guard var window = self.windows[message], now &- window.start < self.interval else {
            let held = self.windows[message]?.held ?? 0
            self.windows[message] = Window(start: now, held: 0)
            return .log(repeatsBefore: held)
        }
        window.held += 1
        self.windows[message] = window
        return .hold
    }

    /// The messages whose interval is over with occurrences held back, each reset to a new
    /// interval; messages whose interval passed quietly are forgotten, so their next occurrence
    /// is written at once.
    mutating func due(now: UInt64) -> [Summary] {
        var summaries: [Summary] = []
        for (message, window) in self.windows where now &- window.start >= self.interval {
            if window.held > 0 {
                summaries.append(Summary(message: message, repeats: window.held))
                self.windows[message] = Window(start: now, held: 0)
            } else {
                self.windows[message] = nil
            }
        }
        return summaries.sorted { $0.message < $1.message }
    }

    /// Writes `message` at warning level unless it is held back; a written line carries how many
    /// were held back before it.
    mutating func warn(_ message: String, metadata: Logger.Metadata, logger: Logger, now: UInt64) {
        guard case .log(let repeatsBefore) = self.occurrence(message, now: now) else { return }
        var metadata = metadata
        if repeatsBefore > 0 { metadata["repeats-before"] = "\(repeatsBefore)" }
        logger.warning("\(message)", metadata: metadata)
    }

    /// Writes one line per message with held-back repeats: "<message> (repeated N times)".
    mutating func flush(logger: Logger, now: UInt64) {
        let seconds = self.interval / 1_000_000_000
        for summary in self.due(now: now) {
            logger.warning("\(summary.message) (repeated \(summary.repeats) times in \(seconds) s)", metadata: ["repeats": "\(summary.repeats)"])
        }
    }
}
