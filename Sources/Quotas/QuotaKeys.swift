import Hierarchy
import RedisClient

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
///
/// Only the part the four share is kept as a string: a script call writes each key from its
/// parts (`write(into:)`), so a plan sent to Redis makes one string per level, not five.
public struct QuotaKeys: Sendable, Hashable {
    /// `<prefix>:q:{<oem>}:<node>`.
    public let base: String
    /// `yyyymmdd` and `yyyymm` of the period (short enough to need no allocation).
    private let dayStamp: String
    private let monthStamp: String

    /// - Parameters:
    ///   - prefix: separates deployments sharing one Redis (`erp`).
    ///   - period: the UTC day and month of the request's `now`.
    public init(prefix: String, oem: NodeID, node: NodeID, period: UTCCalendarPeriod) {
        var base = String()
        base.reserveCapacity(prefix.utf8.count + oem.rawValue.utf8.count + node.rawValue.utf8.count + 6)
        base += prefix
        base += ":q:{"
        base += oem.rawValue
        base += "}:"
        base += node.rawValue
        self.base = base
        self.dayStamp = period.dayStamp
        self.monthStamp = period.monthStamp
    }

    public var rate: String { self.base + Self.rateSuffix.description }
    public var day: String { self.base + Self.daySuffix.description + self.dayStamp }
    public var month: String { self.base + Self.monthSuffix.description + self.monthStamp }
    public var inflight: String { self.base + Self.inflightSuffix.description }

    /// In the order the admission script expects them for one level.
    public var all: [String] {
        var list = RedisArgumentList()
        self.write(into: &list)
        return list.arguments
    }

    /// Appends the four keys, in the order of `all`.
    public func write(into writer: inout some RedisArgumentWriter) {
        writer.append(self.base, Self.rateSuffix)
        writer.append(self.base, Self.daySuffix, self.dayStamp)
        writer.append(self.base, Self.monthSuffix, self.monthStamp)
        writer.append(self.base, Self.inflightSuffix)
    }

    private static let rateSuffix: StaticString = ":rate"
    private static let daySuffix: StaticString = ":day:"
    private static let monthSuffix: StaticString = ":month:"
    private static let inflightSuffix: StaticString = ":inflight"
}
