extension GatewaySettings {
    /// `accessLog`: one JSON line per request (docs/operations.md, "Access log"). Off by default;
    /// off, the data plane builds no request record for it.
    public struct AccessLog: Sendable, Hashable {
        public var enabled: Bool
        /// Share of relayed and locally answered requests that are logged (0...1).
        public var sampling: Double
        /// Share of refused, failed and client-closed requests that are logged (0...1). Kept
        /// apart from `sampling` because these are the lines an operator looks for, yet a
        /// tenant flooding past its quota turns every request into a refusal.
        public var problemSampling: Double

        public static let off = AccessLog(enabled: false, sampling: 1, problemSampling: 1)

        public init(enabled: Bool, sampling: Double, problemSampling: Double) {
            self.enabled = enabled
            self.sampling = sampling
            self.problemSampling = problemSampling
        }
    }

    /// `tracing`: spans of each sampled request exported over OTLP/HTTP (JSON encoding) to a
    /// collector (docs/operations.md, "Traces"). Nil: no spans are built or exported.
    public struct Tracing: Sendable, Hashable {
        /// The collector's OTLP/HTTP traces URL, `http://host:port/path` (no TLS: a collector
        /// on the node or its pod, as collectors are usually deployed).
        public var endpoint: Endpoint
        public var path: String
        /// Share of the traces the gateway starts that are sampled (0...1). A trace the client
        /// started follows its `traceparent`'s sampled flag, except that 0 exports nothing.
        public var sampling: Double
        /// `service.name` of the exported resource.
        public var serviceName: String
        /// Sampled requests waiting for export; past it a request's spans are dropped and counted.
        public var queueSize: Int
        /// The most requests in one export request (each is about six spans).
        public var batchSize: Int
        /// How often waiting spans are sent.
        public var exportInterval: Duration
        /// One export request's deadline; a batch that misses it is dropped.
        public var exportTimeout: Duration

        public init(
            endpoint: Endpoint, path: String, sampling: Double, serviceName: String = "erp-gateway", queueSize: Int = 4096,
            batchSize: Int = 100, exportInterval: Duration = .seconds(1), exportTimeout: Duration = .seconds(5)
        ) {
            self.endpoint = endpoint
            self.path = path
            self.sampling = sampling
            self.serviceName = serviceName
            self.queueSize = queueSize
            self.batchSize = batchSize
            self.exportInterval = exportInterval
            self.exportTimeout = exportTimeout
        }
    }
}
