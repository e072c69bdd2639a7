import NIOConcurrencyHelpers

/// Spans waiting for export, shared by every event loop and the exporter. Bounded: when full,
/// new spans are dropped and counted, so a slow or absent collector costs memory up to the
/// bound and never back-pressure on a request. The lock is held only to append or take.
public final class SpanQueue: Sendable {
    public struct Counts: Sendable, Equatable {
        /// Spans refused because the queue was full.
        public var dropped = 0
    }

    private struct State {
        var spans: [ExportedSpan] = []
        var counts = Counts()
    }

    public let capacity: Int
    private let state = NIOLockedValueBox(State())

    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// Queues one request's spans whole, or none of them.
    public func offer(_ spans: [ExportedSpan]) {
        self.state.withLockedValue { state in
            if state.spans.count + spans.count > self.capacity {
                state.counts.dropped += spans.count
            } else {
                state.spans.append(contentsOf: spans)
            }
        }
    }

    /// Up to `limit` spans, oldest first.
    public func take(_ limit: Int) -> [ExportedSpan] {
        self.state.withLockedValue { state in
            let batch = Array(state.spans.prefix(limit))
            state.spans.removeFirst(batch.count)
            return batch
        }
    }

    public var count: Int { self.state.withLockedValue { $0.spans.count } }
    public var counts: Counts { self.state.withLockedValue { $0.counts } }
}
