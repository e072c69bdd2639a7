/// Every metric the gateway emits, by name, with the histogram buckets the executable hands to
/// its Prometheus backend. The libraries emit through swift-metrics and never name a backend;
/// docs/operations.md ("Metrics") lists each series with its labels.
///
/// Label values are bounded by construction: OEM ids (few, configured by the operator), cell
/// ids and tiers (the settings), catalog routes (path prefixes of the catalog), outcomes,
/// status classes, problem slugs and phases (fixed sets). Never a customer or partner id, a
/// token, a path, an address or a request id.
public enum MetricCatalog {
    public static let requests = "erp_gateway_requests_total"
    public static let addedLatency = "erp_gateway_added_latency_seconds"
    public static let upstreamLatency = "erp_gateway_upstream_latency_seconds"
    public static let upstreamRetries = "erp_gateway_upstream_retries_total"
    public static let retryBudgetRefusals = "erp_gateway_retry_budget_refusals_total"
    public static let quotaDecisions = "erp_gateway_quota_decisions_total"
    public static let tokenVerifications = "erp_gateway_token_verifications_total"
    public static let poolConnections = "erp_gateway_upstream_pool_connections"
    public static let poolWaiting = "erp_gateway_upstream_pool_waiting"
    public static let endpoints = "erp_gateway_endpoints"
    public static let endpointHealthChanges = "erp_gateway_endpoint_health_changes_total"
    public static let endpointEjections = "erp_gateway_endpoint_ejections_total"
    public static let redisCommandDuration = "erp_gateway_redis_command_duration_seconds"
    public static let redisConnections = "erp_gateway_redis_connections"
    public static let redisConnectFailures = "erp_gateway_redis_connect_failures_total"
    public static let configurationGeneration = "erp_gateway_configuration_generation"
    public static let configurationReloads = "erp_gateway_configuration_reloads_total"
    public static let adminWrites = "erp_gateway_admin_writes_total"
    public static let ready = "erp_gateway_ready"

    /// What the gateway adds is sub-millisecond when healthy: fine buckets below 1 ms.
    public static let addedLatencyBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]
    /// Backends answer in milliseconds to seconds; the response timeout tops out at tens of seconds.
    public static let upstreamLatencyBuckets: [Duration] = [
        .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
    ]
    /// A Redis round trip on loopback or in one zone is well under a millisecond.
    public static let redisBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]

    /// Histogram buckets by metric name, for the backend's factory.
    public static let durationBuckets: [String: [Duration]] = [
        addedLatency: addedLatencyBuckets, upstreamLatency: upstreamLatencyBuckets, redisCommandDuration: redisBuckets,
    ]
}
