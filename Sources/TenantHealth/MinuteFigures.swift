import Hierarchy

/// Every tenant's figures for one UTC minute, kept per partner and per OEM (never per customer:
/// a minute holds at most as many entries as partners and OEMs had requests in it).
public struct MinuteFigures: Sendable, Hashable {
    /// Minutes since the Unix epoch, UTC.
    public let minute: Int64
    /// By the partner's path (`oem/partner`) and the OEM's (`oem`).
    public var tenants: [NodePath: HealthFigures]

    public init(minute: Int64, tenants: [NodePath: HealthFigures] = [:]) {
        self.minute = minute
        self.tenants = tenants
    }

    public static func minute(ofMicroseconds microseconds: Int64) -> Int64 {
        microseconds >= 0 ? microseconds / 60_000_000 : (microseconds + 1) / 60_000_000 - 1
    }

    /// Counts one request of `customer` (any path: its partner and OEM are what is kept).
    public mutating func record(_ customer: NodePath, status: UInt?, gatewayMicroseconds: Int64, upstreamMicroseconds: Int64?) {
        self.count(NodePath(oem: customer.oem), status: status, gatewayMicroseconds: gatewayMicroseconds, upstreamMicroseconds: upstreamMicroseconds)
        if let partner = customer.partner {
            self.count(
                NodePath(oem: customer.oem, partner: partner), status: status, gatewayMicroseconds: gatewayMicroseconds,
                upstreamMicroseconds: upstreamMicroseconds
            )
        }
    }

    /// In place: a tenant seen before costs a hash lookup and no allocation.
    private mutating func count(_ tenant: NodePath, status: UInt?, gatewayMicroseconds: Int64, upstreamMicroseconds: Int64?) {
        if let index = self.tenants.index(forKey: tenant) {
            self.tenants.values[index].record(status: status, gatewayMicroseconds: gatewayMicroseconds, upstreamMicroseconds: upstreamMicroseconds)
        } else {
            var figures = HealthFigures()
            figures.record(status: status, gatewayMicroseconds: gatewayMicroseconds, upstreamMicroseconds: upstreamMicroseconds)
            self.tenants[tenant] = figures
        }
    }

    public mutating func merge(_ other: MinuteFigures) {
        for (tenant, figures) in other.tenants { self.tenants[tenant, default: HealthFigures()].merge(figures) }
    }

    /// The tables of several loops (or ticks) as one table per minute, oldest first.
    public static func merged(_ tables: [MinuteFigures]) -> [MinuteFigures] {
        var byMinute: [Int64: MinuteFigures] = [:]
        for table in tables { byMinute[table.minute, default: MinuteFigures(minute: table.minute)].merge(table) }
        return byMinute.values.sorted { $0.minute < $1.minute }
    }
}
