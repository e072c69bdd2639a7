import CoreMetrics
import NIOCore

/// Counts every request that ends on one event loop into swift-metrics: the requests counter by
/// outcome, status class, problem and phase; the gateway-added and upstream latency histograms
/// and the retries, per OEM, cell and tier. Loop-confined like the loop's other state.
///
/// Cheap per request: the handles of a series are made once (labels formatted then) and kept
/// by `RequestSeries`, so a request costs building that key, one hash lookup, an atomic add and
/// at most two histogram observations.
final class RequestMetrics: RequestObserver {
    /// The handles of one series.
    private struct Handles {
        let requests: CoreMetrics.Counter
        let added: CoreMetrics.Timer
        let upstream: CoreMetrics.Timer
        let retries: CoreMetrics.Counter
    }

    /// Series one loop keeps apart before folding new ones into `RequestSeries.other`; far
    /// above what OEMs × routes × cells × outcomes reach in a sane configuration.
    static let defaultMaxSeries = 4096

    private let factory: any MetricsFactory
    private let maxSeries: Int
    private var handles: [RequestSeries: Handles] = [:]

    init(factory: any MetricsFactory = MetricsSystem.factory, maxSeries: Int = RequestMetrics.defaultMaxSeries) {
        self.factory = factory
        self.maxSeries = maxSeries
    }

    /// Series this loop has made handles for.
    var seriesCount: Int { self.handles.count }

    func requestEnded(_ record: RequestRecord) {
        let handles = self.handles(for: RequestSeries(record))
        handles.requests.increment()
        if let upstream = record.upstreamTime {
            // Only what reached an upstream has a gateway-added time worth watching: a refusal's
            // whole time is the gateway's, and would drown the relayed requests' figure.
            handles.added.recordNanoseconds(record.gatewayTime.nanoseconds)
            handles.upstream.recordNanoseconds(upstream.nanoseconds)
        }
        if record.attempts > 1 { handles.retries.increment(by: Int64(record.attempts - 1)) }
    }

    private func handles(for series: RequestSeries) -> Handles {
        if let found = self.handles[series] { return found }
        let key = self.handles.count < self.maxSeries ? series : series.folded
        if let found = self.handles[key] { return found }
        let placement = key.placementLabels
        let made = Handles(
            requests: CoreMetrics.Counter(label: MetricCatalog.requests, dimensions: key.requestLabels, factory: self.factory),
            added: CoreMetrics.Timer(label: MetricCatalog.addedLatency, dimensions: placement, factory: self.factory),
            upstream: CoreMetrics.Timer(label: MetricCatalog.upstreamLatency, dimensions: placement, factory: self.factory),
            retries: CoreMetrics.Counter(label: MetricCatalog.upstreamRetries, dimensions: placement, factory: self.factory)
        )
        self.handles[key] = made
        return made
    }
}
