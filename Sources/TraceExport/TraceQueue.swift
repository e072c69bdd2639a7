import NIOConcurrencyHelpers
import ProxyEngine

/// Sampled requests waiting for export, shared by every event loop and the exporter: their
/// records, not their spans, so that building and encoding the spans happens on the exporter's
/// thread and an event loop only copies a record in. Bounded: when full, new requests are
/// dropped and counted, so a slow or absent collector costs memory up to the bound and never
/// back-pressure on a request. The lock is held only to append or take.
public final class TraceQueue: Sendable {
    public struct Counts: Sendable, Equatable {
        /// Requests whose spans were dropped because the queue was full.
        public var dropped = 0
    }

    private struct State {
        var records: [RequestRecord] = []
        var counts = Counts()
    }

    public let capacity: Int
    private let state = NIOLockedValueBox(State())

    public init(capacity: Int) {
        self.capacity = capacity
    }

    public func offer(_ record: RequestRecord) {
        self.state.withLockedValue { state in
            if state.records.count >= self.capacity {
                state.counts.dropped += 1
            } else {
                state.records.append(record)
            }
        }
    }

    /// Up to `limit` requests, oldest first.
    public func take(_ limit: Int) -> [RequestRecord] {
        self.state.withLockedValue { state in
            let batch = Array(state.records.prefix(limit))
            state.records.removeFirst(batch.count)
            return batch
        }
    }

    public var count: Int { self.state.withLockedValue { $0.records.count } }
    public var counts: Counts { self.state.withLockedValue { $0.counts } }
}
