import Hierarchy
import TokenAuth

/// What an admin token may administer. Each role but the platform's is bound to one node of
/// its own level: an OEM admin to an OEM, a partner admin to a partner, a customer admin to a
/// customer.
public enum AdminRole: String, Sendable, Hashable, CaseIterable {
    case platformAdmin = "platform-admin"
    case oemAdmin = "oem-admin"
    case partnerAdmin = "partner-admin"
    case customerAdmin = "customer-admin"
    /// A support engineer: administers nothing; asks for just-in-time access to one customer
    /// at a time (support grants). Bound to the platform (no node) or to one OEM.
    case support

    /// The level of the node the role is bound to; nil for the platform, which is no node.
    public var level: NodeKind? {
        switch self {
        case .platformAdmin: nil
        case .oemAdmin: .oem
        case .partnerAdmin: .partner
        case .customerAdmin: .customer
        case .support: nil
        }
    }
}

/// An authenticated administrator: who (the token's `sub`), in which role, over which subtree.
/// Only `init(token:roleClaimValue:tree:)` makes one from a token, after checking the role
/// against the level of the node it names in the current tree.
public struct AdminPrincipal: Sendable, Hashable {
    public let actor: String
    public let role: AdminRole
    /// The root of the administered subtree; nil for platform admins (the whole tree).
    public let scope: NodePath?
    /// A partner admin whose OEM lets its partners manage their own token issuers
    /// (`partnerIssuerSelfService`), as the tree the request is judged in says.
    public let managesOwnIssuers: Bool

    public init(actor: String, role: AdminRole, scope: NodePath?, managesOwnIssuers: Bool = false) {
        precondition((scope == nil) == (role == .platformAdmin), "only platform admins administer without a node")
        precondition(scope.map { $0.kind == role.level } ?? true, "a role is bound to a node of its own level")
        precondition(!managesOwnIssuers || role == .partnerAdmin, "only a partner's issuers are delegated to its own admin")
        self.actor = actor
        self.role = role
        self.scope = scope
        self.managesOwnIssuers = managesOwnIssuers
    }

    /// Nil when the token names no known role, names a node it may not (platform admins name
    /// none; every other role names an existing node of its own level), or the node is not in
    /// `tree`. The verifier put the role claim's value in `token.tenant` (see
    /// `GatewayConfiguration.adminVerifier`).
    public init?(token: VerifiedToken, tree: TenantSnapshot) {
        guard let role = AdminRole(rawValue: token.tenant), role != .support else { return nil }
        guard let level = role.level else {
            guard token.node == nil else { return nil }
            self.init(actor: token.subject, role: role, scope: nil)
            return
        }
        guard let text = token.node, let id = try? NodeID(text), let policy = tree.policy(id), policy.kind == level else { return nil }
        self.init(actor: token.subject, role: role, scope: policy.path, managesOwnIssuers: role == .partnerAdmin && policy.partnerIssuerSelfService)
    }

    /// Whether `path` is the principal's node or lies below it.
    public func sees(_ path: NodePath) -> Bool {
        self.scope?.contains(path) ?? true
    }
}
