import CoreMetrics
import NIOCore

/// The client's metrics through swift-metrics (whatever backend the process bootstrapped; none
/// in tests): the round trip of every command, connections up, and failed connection attempts.
/// One per `RedisClient`, shared by its loops: the handles are thread-safe.
public final class RedisMetrics: Sendable {
    public static let commandDuration = "erp_gateway_redis_command_duration_seconds"
    public static let connections = "erp_gateway_redis_connections"
    public static let connectFailures = "erp_gateway_redis_connect_failures_total"
    /// Redis Cluster only: `MOVED` and `ASK` replies followed (label `kind`).
    public static let clusterRedirects = "erp_gateway_redis_cluster_redirects_total"
    /// Redis Cluster only: slot map reads (label `result`: `ok`, or `failed` when no node answered).
    public static let clusterSlotMapRefreshes = "erp_gateway_redis_cluster_slot_map_refreshes_total"
    public static let primarySwitches = "erp_gateway_redis_primary_switches_total"
    public static let sentinelFailures = "erp_gateway_redis_sentinel_failures_total"

    /// From a command written to its reply read (pipelined commands included).
    let commandDuration: CoreMetrics.Timer
    /// Connections established and not yet lost, over every event loop.
    let connections: CoreMetrics.Meter
    let connectFailures: CoreMetrics.Counter
    let movedRedirects: CoreMetrics.Counter
    let askRedirects: CoreMetrics.Counter
    let slotMapRefreshed: CoreMetrics.Counter
    let slotMapRefreshFailed: CoreMetrics.Counter
    /// `redis-sentinel://`: changes of primary learnt (announced or found), once per process.
    let primarySwitches: CoreMetrics.Counter
    /// `redis-sentinel://`: Sentinels that were asked for the primary and did not name it.
    let sentinelFailures: CoreMetrics.Counter

    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.commandDuration = CoreMetrics.Timer(label: Self.commandDuration, dimensions: [], factory: factory)
        self.connections = CoreMetrics.Meter(label: Self.connections, dimensions: [], factory: factory)
        self.connectFailures = CoreMetrics.Counter(label: Self.connectFailures, dimensions: [], factory: factory)
        self.movedRedirects = CoreMetrics.Counter(label: Self.clusterRedirects, dimensions: [("kind", "moved")], factory: factory)
        self.askRedirects = CoreMetrics.Counter(label: Self.clusterRedirects, dimensions: [("kind", "ask")], factory: factory)
        self.slotMapRefreshed = CoreMetrics.Counter(label: Self.clusterSlotMapRefreshes, dimensions: [("result", "ok")], factory: factory)
        self.slotMapRefreshFailed = CoreMetrics.Counter(label: Self.clusterSlotMapRefreshes, dimensions: [("result", "failed")], factory: factory)
        self.primarySwitches = CoreMetrics.Counter(label: Self.primarySwitches, dimensions: [], factory: factory)
        self.sentinelFailures = CoreMetrics.Counter(label: Self.sentinelFailures, dimensions: [], factory: factory)
    }
}
