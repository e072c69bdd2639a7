import Hierarchy
import Quotas

/// What the health endpoint reads, decided by the engine before any I/O: the window of minutes,
/// whose per-minute figures, and which page of customers.
///
/// Per-minute figures are kept per partner and per OEM only (bounded by their number, never by
/// the number of customers); a customer node's answer has none — its partner's would tell it
/// about its sibling customers — and only its own usage row.
public struct HealthRead: Sendable, Hashable {
    /// The node asked about.
    public let node: NodePath
    /// The window's UTC minutes (minutes since the Unix epoch), oldest first, the current
    /// (unfinished) minute last.
    public let minutes: [Int64]
    /// The tenant whose per-minute figures answer; nil for a customer node.
    public let figures: NodePath?
    /// One page of the customers in the node's subtree, by id.
    public let customers: [NodePath]
    /// The id to pass as `after` for the next page; nil on the last page.
    public let next: String?
    public let limit: Int
    /// The UTC day (`yyyymmdd`) the customers' usage is read for: today's.
    public let day: String

    public static let defaultMinutes = 15
    public static let maxMinutes = 60
    public static let defaultLimit = 100
    public static let maxLimit = 1000
}

extension AdminEngine.Context {
    /// `?minutes=N` (1…60, default 15; anything else is refused), `?limit=` (1…1000, default
    /// 100, clamped like the audit log's) and `?after=<customer id>` (the page after that id).
    func health(of node: NodePath) -> AdminOutcome {
        var count = HealthRead.defaultMinutes
        if let text = self.request.query("minutes") {
            guard let minutes = Int(text), (1...HealthRead.maxMinutes).contains(minutes) else { return self.refuse(.badMinutes) }
            count = minutes
        }
        let limit = self.request.query("limit").flatMap(Int.init).map { min(max($0, 1), HealthRead.maxLimit) } ?? HealthRead.defaultLimit
        let after = self.request.query("after")
        let current = self.now / 60
        let minutes = Array((current - Int64(count) + 1)...current)

        var customers: [NodePath]
        if node.customer != nil {
            customers = [node]
        } else {
            customers = self.tree.document.tree.nodes.compactMap { source -> NodePath? in
                guard source.kind == .customer, let path = self.tree.node(source.id)?.path, node.contains(path) else { return nil }
                return path
            }
            customers.sort { $0.leaf.rawValue < $1.leaf.rawValue }
        }
        if let after { customers.removeAll { $0.leaf.rawValue <= after } }
        let page = Array(customers.prefix(limit))
        return .readHealth(HealthRead(
            node: node, minutes: minutes, figures: node.customer == nil ? node : nil, customers: page,
            next: customers.count > limit ? page.last?.leaf.rawValue : nil, limit: limit,
            day: UTCCalendarPeriod(now: self.now * 1_000_000).dayStamp
        ))
    }
}
