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
    /// Redis Cluster only (`redis-cluster://`): `kind` `moved` or `ask`.
    public static let redisClusterRedirects = "erp_gateway_redis_cluster_redirects_total"
    /// Redis Cluster only: `result` `ok` or `failed`.
    public static let redisClusterSlotMapRefreshes = "erp_gateway_redis_cluster_slot_map_refreshes_total"
    public static let redisPrimarySwitches = "erp_gateway_redis_primary_switches_total"
    public static let redisSentinelFailures = "erp_gateway_redis_sentinel_failures_total"
    public static let configurationGeneration = "erp_gateway_configuration_generation"
    public static let configurationReloads = "erp_gateway_configuration_reloads_total"
    public static let adminWrites = "erp_gateway_admin_writes_total"
    public static let ready = "erp_gateway_ready"
    /// Emitted by `CertificateUploads.CertificateFeed`.
    public static let uploadedCertificates = "erp_gateway_uploaded_certificates"
    public static let uploadedCertificatesNextExpiry = "erp_gateway_uploaded_certificates_next_expiry_timestamp_seconds"
    /// One series per certificate the listener presents (`name`: its first DNS name, `source`:
    /// `file` or `uploaded`): bounded by the certificates configured and uploaded.
    public static let tlsCertificateExpiry = "erp_gateway_tls_certificate_expiry_timestamp_seconds"
    /// Emitted by `IssuerKeyFetch.IssuerKeyFetcher`, one series per issuer with fetched keys
    /// (`issuer`: configuration, so bounded; `result`: `success` or a `FetchFailure` slug).
    public static let issuerKeyFetches = "erp_gateway_issuer_key_fetches_total"
    public static let issuerKeySetAge = "erp_gateway_issuer_key_set_age_seconds"
    public static let issuerKeys = "erp_gateway_issuer_keys"
    /// Support engineers' requests recorded in their customers' audit streams, or dropped.
    public static let supportSessions = "erp_gateway_support_sessions_total"

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

    /// The `# HELP` text of each family, one line each (docs/operations.md, "Metrics", has the
    /// long form and the labels).
    public static let help: [String: String] = [
        requests: "Requests ended, by OEM, cell, tier, catalog route, outcome, status class, problem type and the phase that raised it.",
        addedLatency: "Time the gateway added to a request that reached an upstream: its whole time less the upstream's.",
        upstreamLatency: "From the first attempt's head sent upstream to the upstream's response complete.",
        upstreamRetries: "Upstream attempts beyond a request's first (retries on another endpoint, fallback cells).",
        retryBudgetRefusals: "Safe retries refused by the cell's retry budget.",
        quotaDecisions: "Quota admissions by tier, decision and what decided (lease, store, memory, fail mode).",
        tokenVerifications: "Bearer tokens checked: found in the cache, verified, or rejected with the rejection's reason.",
        poolConnections: "Upstream connections over all event loops and endpoints, open and idle; sampled every second.",
        poolWaiting: "Requests waiting for a pooled upstream connection; sampled every second.",
        endpoints: "Endpoints of health-checked cells by health-check verdict.",
        endpointHealthChanges: "Health-check verdict changes of endpoints.",
        endpointEjections: "Passive outlier ejections of endpoints.",
        redisCommandDuration: "Redis round trip of every command, written to reply read.",
        redisConnections: "Command connections to Redis that are up.",
        redisConnectFailures: "Failed connection attempts to Redis.",
        redisClusterRedirects: "MOVED and ASK replies of a Redis Cluster followed, by kind.",
        redisClusterSlotMapRefreshes: "Redis Cluster slot map reads, by result.",
        redisPrimarySwitches: "Changes of Redis primary learnt through Sentinel, once per process.",
        redisSentinelFailures: "Sentinels asked for the Redis primary that did not name it.",
        configurationGeneration: "The configuration generation installed.",
        configurationReloads: "Reloads and tenant-tree revisions, applied or rejected.",
        adminWrites: "Admin API writes by kind and result.",
        ready: "1 when /readyz would answer 200, else 0.",
        uploadedCertificates: "Uploaded portal certificates this node serves, and those it leaves out by reason.",
        uploadedCertificatesNextExpiry: "When the first uploaded portal certificate this node serves expires, Unix seconds (0: none served).",
        issuerKeyFetches: "Fetches of issuers' keys from their identity providers, by issuer and result.",
        issuerKeySetAge: "Seconds since each fetched issuer's keys were last fetched successfully (-1: never).",
        issuerKeys: "Usable keys in each fetched issuer's key set.",
        supportSessions: "Requests made under support grants, written to the customers' audit streams or dropped (buffer full, store failed).",
        tlsCertificateExpiry: "When each TLS certificate the listener presents expires, in seconds since 1970, by its first name and source.",
    ]

    /// The exposition with a `# HELP` line before each family's `# TYPE` line. The swift-metrics
    /// factory of swift-prometheus registers every family with an empty help text, and its
    /// registry stops the process when one family is registered with two different texts, so
    /// help cannot be given where metrics are made; it is added here, once per scrape.
    public static func addingHelp(to exposition: [UInt8]) -> [UInt8] {
        let typePrefix = Array("# TYPE ".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(exposition.count + Self.help.count * 120)
        var lineStart = exposition.startIndex
        while lineStart < exposition.endIndex {
            let lineEnd = exposition[lineStart...].firstIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? exposition.endIndex
            let line = exposition[lineStart..<lineEnd]
            if line.starts(with: typePrefix) {
                let nameStart = lineStart + typePrefix.count
                let nameEnd = exposition[nameStart..<lineEnd].firstIndex(of: UInt8(ascii: " ")) ?? lineEnd
                if let text = Self.help[String(decoding: exposition[nameStart..<nameEnd], as: UTF8.self)] {
                    output.append(contentsOf: "# HELP ".utf8)
                    output.append(contentsOf: exposition[nameStart..<nameEnd])
                    output.append(UInt8(ascii: " "))
                    output.append(contentsOf: text.utf8)
                    output.append(UInt8(ascii: "\n"))
                }
            }
            output.append(contentsOf: line)
            lineStart = lineEnd
        }
        return output
    }

    /// Histogram buckets by metric name, for the backend's factory.
    public static let durationBuckets: [String: [Duration]] = [
        addedLatency: addedLatencyBuckets, upstreamLatency: upstreamLatencyBuckets, redisCommandDuration: redisBuckets,
    ]
}
