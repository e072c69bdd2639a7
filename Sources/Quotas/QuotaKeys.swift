import Hierarchy

/// The Redis keys of one quota level at one instant.
///
/// Every key carries the OEM as a Redis Cluster hash tag (`{acme}`), so all the levels of one
/// request — and the whole subtree of that OEM — live in one slot, which a multi-key Lua
/// script requires. The node id follows the tag; ids are unique across the whole tree, so a
/// partner's and a customer's keys never collide. Calendar keys name their UTC period, so a
/// new day or month starts from a fresh key instead of a reset; the old one expires.
///
///     <prefix>:q:{<oem>}:<node>:rate             GCRA theoretical arrival time, µs
///     <prefix>:q:{<oem>}:<node>:day:<yyyymmdd>   cost units charged that UTC day
///     <prefix>:q:{<oem>}:<node>:month:<yyyymm>   cost units charged that UTC month
///     <prefix>:q:{<oem>}:<node>:inflight         requests admitted and not yet released
public struct QuotaKeys: Sendable, Hashable {
    public let rate: String
    public let day: String
    public let month: String
    public let inflight: String

    /// - Parameters:
    ///   - prefix: separates deployments sharing one Redis (`erp`).
    ///   - period: the UTC day and month of the request's `now`.
    public init(prefix: String, oem: NodeID, node: NodeID, period: UTCCalendarPeriod) {
        let base = "\(prefix):q:{\(oem.rawValue)}:\(node.rawValue)"
        self.rate = base + ":rate"
        self.day = base + ":day:" + period.dayStamp
        self.month = base + ":month:" + period.monthStamp
        self.inflight = base + ":inflight"
    }

    /// In the order the admission script expects them for one level.
    public var all: [String] { [self.rate, self.day, self.month, self.inflight] }
}
