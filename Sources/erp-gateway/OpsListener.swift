import CoreMetrics
import GatewayConfig
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import ProxyEngine

/// The process's metrics backend and its ops listener. Only the executable names a backend:
/// every library emits through swift-metrics, and this bootstraps Prometheus under it, once,
/// before anything makes a metric.
final class OpsListener: Sendable {
    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// The data plane, once it listens; readiness says "no configuration" until then.
    private let server = NIOLockedValueBox<GatewayServer?>(nil)
    private let isDraining = NIOLockedValueBox(false)
    private let ready: CoreMetrics.Gauge
    let generation: CoreMetrics.Gauge
    private let reloadsApplied: CoreMetrics.Counter
    private let reloadsRejected: CoreMetrics.Counter
    private let listener = NIOLockedValueBox<OpsServer?>(nil)

    /// Bootstraps the backend. Call once per process, before the clients that emit are made.
    init() {
        self.registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: self.registry)
        factory.durationHistogramBuckets = MetricCatalog.durationBuckets
        self.factory = factory
        MetricsSystem.bootstrap(factory)
        self.ready = CoreMetrics.Gauge(label: MetricCatalog.ready, dimensions: [], factory: factory)
        self.generation = CoreMetrics.Gauge(label: MetricCatalog.configurationGeneration, dimensions: [], factory: factory)
        self.reloadsApplied = CoreMetrics.Counter(label: MetricCatalog.configurationReloads, dimensions: [("result", "applied")], factory: factory)
        self.reloadsRejected = CoreMetrics.Counter(label: MetricCatalog.configurationReloads, dimensions: [("result", "rejected")], factory: factory)
    }

    /// Binds `ops.address:ops.port` on `loop`.
    func start(_ settings: GatewaySettings.Ops, loop: any EventLoop) async throws {
        let opsServer = try await OpsServer.start(
            host: settings.address, port: settings.port, loop: loop,
            metrics: { [self] loop in
                // Readiness is judged at every scrape too, so `erp_gateway_ready` is current.
                loop.makeFutureWithTask {
                    let readiness = await self.readiness()
                    self.ready.record(readiness.isReady ? 1 : 0)
                    var bytes: [UInt8] = []
                    bytes.reserveCapacity(64 << 10)
                    self.registry.emit(into: &bytes)
                    return MetricCatalog.addingHelp(to: bytes)
                }
            },
            readiness: { [self] loop in loop.makeFutureWithTask { await self.readiness() } }
        )
        self.listener.withLockedValue { $0 = opsServer }
    }

    var localAddress: SocketAddress? { self.listener.withLockedValue { $0?.localAddress } }

    func serving(_ server: GatewayServer?) {
        self.server.withLockedValue { $0 = server }
    }

    func draining() {
        self.isDraining.withLockedValue { $0 = true }
    }

    func readiness() async -> Readiness {
        if self.isDraining.withLockedValue({ $0 }) { return Readiness(reasons: [.draining]) }
        guard let server = self.server.withLockedValue({ $0 }) else { return Readiness(reasons: [.noConfiguration]) }
        return await server.readiness()
    }

    /// A reload or a new tenant-tree revision was installed.
    func installed(generation: Int) {
        self.generation.record(generation)
        self.reloadsApplied.increment()
    }

    func rejected() {
        self.reloadsRejected.increment()
    }

    func close() async {
        let opsServer = self.listener.withLockedValue { $0 }
        await opsServer?.close()
    }
}
