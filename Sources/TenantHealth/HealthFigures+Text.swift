/// The text form one node publishes per tenant and minute, and the admin API reads back:
/// `h1;<requests>;<4xx>;<5xx>;<429>;<gateway buckets>;<upstream buckets>`, each bucket list
/// `index:count` pairs joined by `,` (only the buckets with counts). The leading `h1` names the
/// format and the bucket layout, so a node running a later layout is skipped, never misread.
extension HealthFigures {
    public static let textVersion = "h1"

    public var text: String {
        [
            Self.textVersion, String(self.requests), String(self.clientErrors), String(self.serverErrors), String(self.tooManyRequests),
            Self.text(self.gatewayTime), Self.text(self.upstreamTime),
        ].joined(separator: ";")
    }

    /// nil for anything but the text `text` writes.
    public init?(text: String) {
        let fields = text.split(separator: ";", omittingEmptySubsequences: false)
        guard fields.count == 7, fields[0] == Self.textVersion,
            let requests = Int(fields[1]), let clientErrors = Int(fields[2]), let serverErrors = Int(fields[3]), let tooMany = Int(fields[4]),
            [requests, clientErrors, serverErrors, tooMany].allSatisfy({ $0 >= 0 }),
            let gateway = Self.histogram(fields[5]), let upstream = Self.histogram(fields[6])
        else { return nil }
        self.init()
        self.requests = requests
        self.clientErrors = clientErrors
        self.serverErrors = serverErrors
        self.tooManyRequests = tooMany
        self.gatewayTime = gateway
        self.upstreamTime = upstream
    }

    private static func text(_ histogram: LatencyHistogram) -> String {
        histogram.counts.enumerated().filter { $0.element > 0 }.map { "\($0.offset):\($0.element)" }.joined(separator: ",")
    }

    private static func histogram(_ text: Substring) -> LatencyHistogram? {
        var histogram = LatencyHistogram()
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let bucket = Int(parts[0]), (0..<LatencyHistogram.bucketCount).contains(bucket), let count = UInt32(parts[1]) else {
                return nil
            }
            histogram.add(count, to: bucket)
        }
        return histogram
    }
}
