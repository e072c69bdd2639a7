/// One tenant's figures for one minute on one event loop, node, or all nodes together: what
/// was answered and how long it took. Adding two is exact (counts add, histograms add), so
/// figures merge across loops, nodes and minutes in any order.
///
/// Cost: four integers and two `LatencyHistogram`s, about 1 KB once both have samples.
public struct HealthFigures: Sendable, Hashable {
    /// Requests that ended (answered, refused, failed, or left by their client).
    public var requests = 0
    /// Answers with a 4xx status, 429 included.
    public var clientErrors = 0
    /// Answers with a 5xx status (an upstream's, relayed, or the gateway's own).
    public var serverErrors = 0
    /// Answers with 429: refused by a quota.
    public var tooManyRequests = 0
    /// What the gateway added: the request's whole time less the upstream's.
    public var gatewayTime = LatencyHistogram()
    /// From the upstream request sent to its response complete; requests never forwarded have none.
    public var upstreamTime = LatencyHistogram()

    public init() {}

    /// - Parameter status: the status the client received; nil when it left before one.
    public mutating func record(status: UInt?, gatewayMicroseconds: Int64, upstreamMicroseconds: Int64?) {
        self.requests += 1
        if let status {
            if (400..<500).contains(status) { self.clientErrors += 1 }
            if (500..<600).contains(status) { self.serverErrors += 1 }
            if status == 429 { self.tooManyRequests += 1 }
        }
        self.gatewayTime.record(microseconds: gatewayMicroseconds)
        if let upstreamMicroseconds { self.upstreamTime.record(microseconds: upstreamMicroseconds) }
    }

    public mutating func merge(_ other: HealthFigures) {
        self.requests += other.requests
        self.clientErrors += other.clientErrors
        self.serverErrors += other.serverErrors
        self.tooManyRequests += other.tooManyRequests
        self.gatewayTime.merge(other.gatewayTime)
        self.upstreamTime.merge(other.upstreamTime)
    }
}
