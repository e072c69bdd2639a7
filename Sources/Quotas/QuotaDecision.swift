import Hierarchy
import RedisClient

/// What a quota limits.
public enum QuotaKind: String, Sendable, Hashable, CaseIterable {
    /// Rate with burst (GCRA).
    case rate
    /// Cost units per UTC day.
    case day
    /// Cost units per UTC month.
    case month
    /// Requests in flight.
    case concurrency
}

/// The budget one level has left after an admission; nil where the level has no such limit.
public struct LevelRemaining: Sendable, Hashable {
    public let node: NodeID
    public let kind: NodeKind
    /// Unit-cost requests that could still pass back to back right now.
    public let rate: Int?
    /// Milliseconds until the rate limit is fully idle (the whole burst available again).
    public let rateResetMilliseconds: Int64?
    public let day: Int?
    public let month: Int?
    public let concurrency: Int?

    public init(node: NodeID, kind: NodeKind, rate: Int?, rateResetMilliseconds: Int64?, day: Int?, month: Int?, concurrency: Int?) {
        self.node = node
        self.kind = kind
        self.rate = rate
        self.rateResetMilliseconds = rateResetMilliseconds
        self.day = day
        self.month = month
        self.concurrency = concurrency
    }
}

/// The answer of `QuotaScript.admit` for one `QuotaPlan`.
public enum QuotaDecision: Sendable, Hashable {
    /// Every level was charged. One entry per level of the plan, in its order.
    case admitted([LevelRemaining])
    /// Nothing was charged. `retryAfterMilliseconds` nil: never under the current limits.
    /// A concurrency refusal reports 0 (no way to know when a request ends).
    ///
    /// `remaining`: what the refusing limit had left (unit-cost requests for `rate`, cost units
    /// for `day` and `month`, free slots for `concurrency`), fewer than the request needed.
    /// `resetAfterMicroseconds`: how long until that limit is fully reset — `rate`: idle again
    /// (its theoretical arrival time minus now), `day`/`month`: the UTC period ends; nil for
    /// `concurrency`. Together they tell when a request of any cost could fit.
    case refused(level: NodeID, kind: QuotaKind, retryAfterMilliseconds: Int64?, limit: Int, remaining: Int, resetAfterMicroseconds: Int64?)
    /// A lease was granted and charged at every level (`QuotaScript.lease`).
    case leased(QuotaLeaseGrant)

    /// Reads the script's reply (layout in `QuotaScript`).
    public init(reply: RESPValue, plan: QuotaPlan) throws(QuotaReplyError) {
        guard let elements = reply.elements, let status = elements.first?.int64 else {
            throw reply.errorMessage != nil ? .scriptError : .malformed
        }
        switch status {
        case 0:
            guard elements.count == 7,
                  let index = elements[1].int64, index >= 1, index <= plan.levels.count,
                  let kindName = elements[2].string, let kind = QuotaKind(rawValue: kindName),
                  let retry = elements[3].int64, retry >= -1,
                  let limit = elements[4].int64,
                  let remaining = elements[5].int64, remaining >= 0,
                  let reset = elements[6].int64, reset >= -1
            else { throw .malformed }
            self = .refused(
                level: plan.levels[Int(index) - 1].node, kind: kind, retryAfterMilliseconds: retry == -1 ? nil : retry, limit: Int(limit),
                remaining: Int(remaining), resetAfterMicroseconds: reset == -1 ? nil : reset
            )
        case 1, 2:
            let levelCount = plan.levels.count
            guard elements.count == (status == 1 ? 1 + 5 * levelCount : 2 + 6 * levelCount) else { throw .malformed }
            // Each value read in place, into arrays made at their final size: a store round trip
            // is every request's path for customers whose leases hold one unit.
            func value(_ index: Int) throws(QuotaReplyError) -> Int64? {
                guard let value = elements[index].int64, value >= -1 else { throw .malformed }
                return value == -1 ? nil : value
            }
            var remaining: [LevelRemaining] = []
            remaining.reserveCapacity(levelCount)
            for (offset, level) in plan.levels.enumerated() {
                let first = 1 + 5 * offset
                remaining.append(LevelRemaining(
                    node: level.node, kind: level.kind,
                    rate: try value(first).map { Int($0) }, rateResetMilliseconds: try value(first + 1),
                    day: try value(first + 2).map { Int($0) }, month: try value(first + 3).map { Int($0) },
                    concurrency: try value(first + 4).map { Int($0) }
                ))
            }
            guard status == 2 else {
                self = .admitted(remaining)
                return
            }
            guard let units = elements[1 + 5 * levelCount].int64, units >= 0 else { throw .malformed }
            var bases: [Int64?] = []
            bases.reserveCapacity(levelCount)
            for index in (2 + 5 * levelCount)..<elements.count { bases.append(try value(index)) }
            self = .leased(QuotaLeaseGrant(units: Int(units), remaining: remaining, rateBases: bases))
        default:
            throw .malformed
        }
    }
}

/// A lease as `QuotaScript.lease` granted it.
public struct QuotaLeaseGrant: Sendable, Hashable {
    /// g: units charged at every level, at least the plan's `need`.
    public let units: Int
    /// What every level had left after the whole grant was charged, as for `admitted`.
    public let remaining: [LevelRemaining]
    /// Per level: the instant (µs) unit 0 was charged from at its rate limit; nil without one.
    public let rateBases: [Int64?]

    public init(units: Int, remaining: [LevelRemaining], rateBases: [Int64?]) {
        self.units = units
        self.remaining = remaining
        self.rateBases = rateBases
    }
}

/// Why a reply from Redis could not be read as a decision. Fixed descriptions (metrics label).
public struct QuotaReplyError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable { case scriptError, malformed }
    private let code: Code
    private init(_ code: Code) { self.code = code }

    /// Redis answered with an error (a corrupt key, a script bug, out of memory).
    public static let scriptError = QuotaReplyError(.scriptError)
    /// The reply does not have the script's layout for this plan.
    public static let malformed = QuotaReplyError(.malformed)

    public var description: String {
        switch self.code {
        case .scriptError: return "quota script: Redis answered with an error"
        case .malformed: return "quota script: unexpected reply"
        }
    }
}
