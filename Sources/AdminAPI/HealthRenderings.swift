import Hierarchy
import Quotas
import TenantHealth

/// The health endpoint's JSON (docs/admin-api.md, "Health").
extension AdminEngine {
    /// - Parameters:
    ///   - published: per minute of the window, every node's published figures (empty for a
    ///     customer node, which has none).
    ///   - usage: the usage of each customer of the page, in its order.
    public static func healthResponse(_ read: HealthRead, published: [Int64: [String]], usage: [UsageMeter.Day]) -> AdminResponse {
        var members: [String: JSONValue] = [
            "node": .string(read.node.description),
            "kind": .string(read.node.customer != nil ? NodeKind.customer.rawValue : read.node.partner != nil ? NodeKind.partner.rawValue : NodeKind.oem.rawValue),
            "window": .object([
                "from": .string(Self.isoMinute(read.minutes.first ?? 0)),
                "to": .string(Self.isoMinute((read.minutes.last ?? 0) + 1)),
                "minutes": .integer(Int64(read.minutes.count)),
            ]),
            "perMinute": .null,
            "total": .null,
        ]
        if read.figures != nil {
            let window = HealthWindow(minutes: read.minutes, published: published)
            members["perMinute"] = .array(window.minutes.map { minute in
                var figures = Self.figures(minute.summary)
                figures["minute"] = .string(Self.isoMinute(minute.minute))
                figures["nodes"] = .integer(Int64(minute.nodes))
                return .object(figures)
            })
            members["total"] = .object(Self.figures(window.total))
        }
        let items = zip(read.customers, usage).map { path, day in
            JSONValue.object([
                "customer": .string(path.description), "requests": .integer(Int64(day.requests)),
                "refused": .integer(Int64(day.refused)), "errors": .integer(Int64(day.errors)),
            ])
        }
        members["customers"] = .object([
            "day": .string("\(read.day.prefix(4))-\(read.day.dropFirst(4).prefix(2))-\(read.day.suffix(2))"),
            "items": .array(items),
            "limit": .integer(Int64(read.limit)),
            "next": read.next.map(JSONValue.string) ?? .null,
        ])
        return .json(200, .object(members))
    }

    static func figures(_ summary: HealthSummary) -> [String: JSONValue] {
        func micros(_ value: Int64?) -> JSONValue { value.map(JSONValue.integer) ?? .null }
        return [
            "requests": .integer(Int64(summary.requests)),
            "status4xx": .integer(Int64(summary.clientErrors)),
            "status5xx": .integer(Int64(summary.serverErrors)),
            "status429": .integer(Int64(summary.tooManyRequests)),
            "gatewayTimeUs": .object(["p50": micros(summary.gatewayP50), "p99": micros(summary.gatewayP99)]),
            "upstreamTimeUs": .object(["p50": micros(summary.upstreamP50), "p99": micros(summary.upstreamP99)]),
        ]
    }

    /// `YYYY-MM-DDTHH:MM:00Z` for a minute since the Unix epoch.
    static func isoMinute(_ minute: Int64) -> String {
        self.isoSecond(max(0, minute) * 60)
    }
}
