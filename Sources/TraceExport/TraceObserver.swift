import ProxyEngine

/// Queues each sampled request that ends on its event loop for the exporter, which builds and
/// sends its spans on its own thread. A request not sampled costs one check.
public final class TraceObserver: RequestObserver {
    private let queue: TraceQueue

    public init(queue: TraceQueue) {
        self.queue = queue
    }

    public func requestEnded(_ record: RequestRecord) {
        guard record.traceSampled, record.traceID != nil else { return }
        self.queue.offer(record)
    }
}
