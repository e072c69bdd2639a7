/// Whose admins approve a support grant on a customer (besides platform admins, who always may).
public enum SupportApprover: String, Sendable, Hashable, CaseIterable {
    case customer, partner, oem
}

/// `supportAccess` as written on an OEM or a partner: a cap on support grants' duration and who
/// approves them below the node. Either may be left out (inherited).
public struct SupportAccessSource: Sendable, Hashable {
    /// Seconds.
    public var maxDuration: Int64?
    public var approvers: [SupportApprover]?

    public init(maxDuration: Int64? = nil, approvers: [SupportApprover]? = nil) {
        self.maxDuration = maxDuration
        self.approvers = approvers
    }
}

/// The support-access policy in force on a node: inherited and only ever narrowed down the tree
/// (a shorter cap, fewer approvers), like features and origins.
public struct SupportAccessPolicy: Sendable, Hashable {
    /// `4h`, `90m`, `45s`: a duration in seconds as the tree and the admin API write it (whole
    /// hours, minutes or seconds), read back by both.
    public static func text(seconds: Int64) -> String {
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    /// Seconds; nil when no node on the path caps it (the settings' `supportAccess.maxDuration`
    /// still does).
    public var maxDuration: Int64?
    /// The node whose `maxDuration` is in force.
    public var maxDurationSetBy: NodeID?
    public var approvers: Set<SupportApprover>

    public static let unrestricted = SupportAccessPolicy(maxDuration: nil, maxDurationSetBy: nil, approvers: Set(SupportApprover.allCases))

    public init(maxDuration: Int64?, maxDurationSetBy: NodeID?, approvers: Set<SupportApprover>) {
        self.maxDuration = maxDuration
        self.maxDurationSetBy = maxDurationSetBy
        self.approvers = approvers
    }

    /// This policy with a node's own declaration applied; widening is reported by the compiler
    /// and never takes effect.
    func narrowed(by own: SupportAccessSource?, node: NodeID) -> SupportAccessPolicy {
        guard let own else { return self }
        var next = self
        if let duration = own.maxDuration, duration < (self.maxDuration ?? .max) {
            next.maxDuration = duration
            next.maxDurationSetBy = node
        }
        if let approvers = own.approvers { next.approvers = self.approvers.intersection(approvers) }
        return next
    }
}
