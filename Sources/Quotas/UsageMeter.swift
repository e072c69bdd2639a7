import Hierarchy
import NIOCore
import RedisClient

/// Usage per customer per UTC day — requests admitted, cost units charged, requests refused,
/// requests answered with a 5xx — kept in Redis for billing and support, `retentionDays` long.
/// One hash per customer and day, hash-tagged by OEM like the quota keys:
/// `<prefix>:usage:{<oem>}:<customer>:<yyyymmdd>` with fields `requests`, `cost`, `refused`,
/// `errors`.
///
/// Requests that go through quota admission are metered by the admission script itself
/// (`QuotaScript`, `QuotaPlan.usageKey`): no round trip of their own. This type writes what
/// the script cannot see — refusals decided locally (a remembered over-limit), added up per
/// event loop and flushed once a second, so a flood costs Redis one command per second, not
/// one per request — and 5xx answers, which only the end of a request knows, added up and
/// flushed the same way by the tenant-health observer; and it reads the records back.
public struct UsageMeter: Sendable {
    public let redis: RedisClient
    public let prefix: String
    public let retentionDays: Int

    public init(redis: RedisClient, prefix: String = "erp", retentionDays: Int = 400) {
        self.redis = redis
        self.prefix = prefix
        self.retentionDays = retentionDays
    }

    /// `<prefix>:usage:{<oem>}:<customer>:<yyyymmdd>`. Made by every plan that meters, so made
    /// in one allocation (an interpolation took three).
    public static func key(prefix: String, oem: NodeID, customer: NodeID, day: String) -> String {
        var key = String()
        key.reserveCapacity(prefix.utf8.count + oem.rawValue.utf8.count + customer.rawValue.utf8.count + day.utf8.count + 11)
        key += prefix
        key += ":usage:{"
        key += oem.rawValue
        key += "}:"
        key += customer.rawValue
        key += ":"
        key += day
        return key
    }

    /// HINCRBY each field, then EXPIRE: one script, one round trip.
    static let script = """
        for i = 1, #ARGV - 1, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
        redis.call('EXPIRE', KEYS[1], ARGV[#ARGV])
        return 1
        """
    static let scriptSHA = SHA1.hex(Self.script)

    /// Adds counts for one customer and day. Fire and forget: a failure is only logged by the
    /// caller's Redis client, never surfaced to the request.
    public func add(
        oem: NodeID, customer: NodeID, now: Int64, requests: Int = 0, cost: Int = 0, refused: Int = 0, errors: Int = 0, on loop: any EventLoop
    ) {
        let period = UTCCalendarPeriod(now: now)
        let day = period.dayStamp
        var arguments: [String] = []
        if requests != 0 { arguments += ["requests", String(requests)] }
        if cost != 0 { arguments += ["cost", String(cost)] }
        if refused != 0 { arguments += ["refused", String(refused)] }
        if errors != 0 { arguments += ["errors", String(errors)] }
        guard !arguments.isEmpty, self.redis.isAvailable(on: loop) else { return }
        // Kept `retentionDays` after the record's UTC day ends, as the admission scripts set it.
        arguments.append(String(Int64(self.retentionDays) * 86_400 + (period.untilDayEnd + 999_999) / 1_000_000))
        _ = self.redis.evalSHA(
            on: loop, sha: Self.scriptSHA, script: Self.script,
            keys: [Self.key(prefix: self.prefix, oem: oem, customer: customer, day: day)], args: arguments
        )
    }

    /// One day's counts as stored.
    public struct Day: Sendable, Hashable {
        public let day: String
        public let requests: Int
        public let cost: Int
        public let refused: Int
        /// Requests answered with a 5xx (an upstream's, or the gateway's own).
        public let errors: Int

        public init(day: String, requests: Int, cost: Int, refused: Int, errors: Int = 0) {
            self.day = day
            self.requests = requests
            self.cost = cost
            self.refused = refused
            self.errors = errors
        }
    }

    /// The stored days in `days` (yyyymmdd stamps), in order; missing days count zero.
    public func read(oem: NodeID, customer: NodeID, days: [String], on loop: any EventLoop) -> EventLoopFuture<[Day]> {
        let reads = days.map { day in
            self.redis.send(on: loop, ["HGETALL", Self.key(prefix: self.prefix, oem: oem, customer: customer, day: day)]).map { reply -> Day in
                var fields: [String: Int] = [:]
                let elements = reply.elements ?? []
                var index = 0
                while index + 1 < elements.count {
                    if let name = elements[index].string, let value = elements[index + 1].string.flatMap({ Int($0) }) { fields[name] = value }
                    index += 2
                }
                return Day(
                    day: day, requests: fields["requests"] ?? 0, cost: fields["cost"] ?? 0, refused: fields["refused"] ?? 0, errors: fields["errors"] ?? 0
                )
            }
        }
        return EventLoopFuture.whenAllSucceed(reads, on: loop)
    }
}

/// One usage counter (locally decided refusals, 5xx answers) counted per customer and day on
/// one event loop until flushed: one write per customer and flush, whatever the requests.
public struct PendingUsage: Sendable {
    /// The usage fields counted this way.
    public enum Counter: Sendable {
        case refused
        case errors
    }

    public let counter: Counter
    private var counts: [Key: Int] = [:]

    private struct Key: Hashable, Sendable {
        var oem: NodeID
        var customer: NodeID
        var now: Int64
        // Only the day matters for the key; `now` is kept to compute it at flush.
        static func == (lhs: Key, rhs: Key) -> Bool { lhs.oem == rhs.oem && lhs.customer == rhs.customer && lhs.day == rhs.day }
        func hash(into hasher: inout Hasher) {
            hasher.combine(self.oem)
            hasher.combine(self.customer)
            hasher.combine(self.day)
        }
        var day: Int64 { self.now / 86_400_000_000 }
    }

    public init(counting counter: Counter) {
        self.counter = counter
    }

    public var isEmpty: Bool { self.counts.isEmpty }

    public mutating func add(oem: NodeID, customer: NodeID, now: Int64) {
        self.counts[Key(oem: oem, customer: customer, now: now), default: 0] += 1
    }

    /// Sends the counts and starts over.
    public mutating func flush(to meter: UsageMeter, on loop: any EventLoop) {
        for (key, count) in self.counts {
            switch self.counter {
            case .refused: meter.add(oem: key.oem, customer: key.customer, now: key.now, refused: count, on: loop)
            case .errors: meter.add(oem: key.oem, customer: key.customer, now: key.now, errors: count, on: loop)
            }
        }
        self.counts.removeAll(keepingCapacity: true)
    }
}
