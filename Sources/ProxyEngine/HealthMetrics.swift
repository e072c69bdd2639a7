import CoreMetrics
import GatewayConfig

/// The health checker's metrics: endpoints per cell by verdict (a gauge) and verdict changes (a
/// counter). Lives on the checker's loop; cells are few, so a dictionary of handles per cell.
final class HealthMetrics {
    private let factory: any MetricsFactory
    private var gauges: [String: (healthy: CoreMetrics.Gauge, unhealthy: CoreMetrics.Gauge)] = [:]
    private var changes: [String: (healthy: CoreMetrics.Counter, unhealthy: CoreMetrics.Counter)] = [:]

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// The counts now, for every checked cell; cells no longer checked drop to zero.
    func verdicts(_ counts: [String: (healthy: Int, unhealthy: Int)]) {
        for (cell, gauges) in self.gauges where counts[cell] == nil {
            gauges.healthy.record(0)
            gauges.unhealthy.record(0)
        }
        for (cell, count) in counts {
            let gauges = self.gauges[cell] ?? (
                CoreMetrics.Gauge(label: MetricCatalog.endpoints, dimensions: [("cell", cell), ("state", "healthy")], factory: self.factory),
                CoreMetrics.Gauge(label: MetricCatalog.endpoints, dimensions: [("cell", cell), ("state", "unhealthy")], factory: self.factory)
            )
            self.gauges[cell] = gauges
            gauges.healthy.record(count.healthy)
            gauges.unhealthy.record(count.unhealthy)
        }
    }

    func changed(cell: String, healthy: Bool) {
        let counters = self.changes[cell] ?? (
            CoreMetrics.Counter(label: MetricCatalog.endpointHealthChanges, dimensions: [("cell", cell), ("to", "healthy")], factory: self.factory),
            CoreMetrics.Counter(label: MetricCatalog.endpointHealthChanges, dimensions: [("cell", cell), ("to", "unhealthy")], factory: self.factory)
        )
        self.changes[cell] = counters
        (healthy ? counters.healthy : counters.unhealthy).increment()
    }
}
