/// What the admin API shows of merged figures: the counts, and the percentiles computed from
/// the merged buckets (`LatencyHistogram`'s resolution: within 9.1 %).
public struct HealthSummary: Sendable, Hashable {
    public let requests: Int
    public let clientErrors: Int
    public let serverErrors: Int
    public let tooManyRequests: Int
    /// In µs; nil without samples.
    public let gatewayP50: Int64?
    public let gatewayP99: Int64?
    public let upstreamP50: Int64?
    public let upstreamP99: Int64?

    public init(_ figures: HealthFigures) {
        self.requests = figures.requests
        self.clientErrors = figures.clientErrors
        self.serverErrors = figures.serverErrors
        self.tooManyRequests = figures.tooManyRequests
        self.gatewayP50 = figures.gatewayTime.percentile(0.5)
        self.gatewayP99 = figures.gatewayTime.percentile(0.99)
        self.upstreamP50 = figures.upstreamTime.percentile(0.5)
        self.upstreamP99 = figures.upstreamTime.percentile(0.99)
    }
}

/// One tenant's figures over a window of minutes, merged over every node that published.
public struct HealthWindow: Sendable {
    public struct Minute: Sendable {
        /// Minutes since the Unix epoch, UTC.
        public let minute: Int64
        /// Nodes that published figures for the minute.
        public let nodes: Int
        public let summary: HealthSummary
    }

    /// Every minute of the window, oldest first, those without figures included.
    public let minutes: [Minute]
    public let total: HealthSummary

    /// - Parameter published: per minute of the window, the texts the nodes published (those
    ///   that do not read are skipped).
    public init(minutes window: [Int64], published: [Int64: [String]]) {
        var total = HealthFigures()
        self.minutes = window.map { minute in
            var figures = HealthFigures()
            var nodes = 0
            for text in published[minute] ?? [] {
                guard let one = HealthFigures(text: text) else { continue }
                figures.merge(one)
                nodes += 1
            }
            total.merge(figures)
            return Minute(minute: minute, nodes: nodes, summary: HealthSummary(figures))
        }
        self.total = HealthSummary(total)
    }
}
