import ProxyEngine

/// Turns each sampled request that ends on its event loop into spans and queues them for the
/// exporter. One per loop (its span-id source is loop-local). A request not sampled costs one
/// check.
public final class TraceObserver: RequestObserver {
    private let queue: SpanQueue
    private var ids: SpanIDSource

    public init(queue: SpanQueue, seed: UInt64 = .random(in: .min ... .max)) {
        self.queue = queue
        self.ids = SpanIDSource(seed: seed)
    }

    public func requestEnded(_ record: RequestRecord) {
        guard record.traceSampled else { return }
        let spans = RequestSpans.build(record, ids: &self.ids)
        if !spans.isEmpty { self.queue.offer(spans) }
    }
}
