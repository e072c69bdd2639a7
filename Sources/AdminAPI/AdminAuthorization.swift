import Hierarchy

/// What an administrator wants to do to one node.
public enum AdminAction: String, Sendable, Hashable, CaseIterable {
    /// The node, its children, effective policy, explain, audit.
    case read
    /// Branding and portal domains: a node's own presentation, which its own admin manages.
    case editPresentation
    /// Package, add-ons, features, packages, limits, customer defaults, residency, origins:
    /// what a node may use, which only an administrator above it may grant.
    case editEntitlements
    /// Placement on backend cells: an operator decision.
    case editPlacement
    case suspend
    case reactivate
    case createChild
    case delete
    /// Revoke every token of a customer: a security measure any admin who sees it may take.
    case revokeTenantTokens
    /// Revoke one token by `jti`: a `jti` names no tenant, so only the platform may.
    case revokeTokenByID
    /// Register token issuers and their keys: an OEM's own, those of nodes below the caller, or
    /// a partner's own where its OEM lets its partners manage their issuers.
    case manageIssuers
    /// Let an OEM's partners manage their own token issuers (`partnerIssuerSelfService`): the
    /// OEM's own policy about those below it, which hands down a right its admin already has
    /// and grants the OEM nothing; set by the OEM's admin or the platform.
    case delegateIssuers
    /// Upload, replace and delete the TLS certificates of a node's portal domains: part of the
    /// node's portal, like its portal domains, so its own admin and every admin above it.
    case manageCertificates
    /// A node's support-access policy (`supportAccess`: the cap on grants' duration, who
    /// approves them): it only ever narrows what is inherited, so the node's own admin may set
    /// it, like every admin above it.
    case editSupportAccess
}

/// The outcome of an authorization check.
public enum AdminDecision: Sendable, Hashable {
    case allowed
    /// The node is outside the caller's subtree, or does not exist: the two are answered
    /// identically, so nothing outside a subtree can be probed.
    case notFound
    /// The node is visible to the caller, but this action on it is not theirs.
    case forbidden
}

/// Delegated administration as one pure function. Every caller administers a subtree: it sees
/// every node in it; it edits its own node's presentation (and an OEM its own token issuers, a
/// partner its own where its OEM allows); it does everything else only to nodes strictly below
/// its own (an admin never grants itself entitlements, suspends, or deletes itself). Placement
/// and revoking a token by `jti` are the platform's. A platform admin may do everything.
public enum AdminAuthorization {
    /// - Parameter target: the target's path when the node exists, nil when it does not. The
    ///   caller looks the node up exactly once, whatever the outcome, and this function makes no
    ///   lookup of its own: an unknown node and a hidden one cost the same and answer the same.
    public static func decide(_ principal: AdminPrincipal, _ action: AdminAction, target: NodePath?) -> AdminDecision {
        guard let target, principal.sees(target) else { return .notFound }
        guard let scope = principal.scope else { return .allowed }
        let below = scope.isAncestor(of: target)
        switch action {
        case .read, .editPresentation, .manageCertificates, .revokeTenantTokens, .editSupportAccess:
            return .allowed
        case .createChild:
            // A customer has no children; the tree's shape is checked when the child is built.
            return target.kind == .customer ? .forbidden : .allowed
        case .editEntitlements, .suspend, .reactivate, .delete:
            return below ? .allowed : .forbidden
        case .editPlacement, .revokeTokenByID:
            return .forbidden
        case .manageIssuers:
            // OEMs onboard their own signing keys; a partner's are registered by its OEM, or by
            // the partner itself where the OEM allows. Not below: `target` is the caller's node.
            if below || target.kind == .oem { return .allowed }
            return principal.managesOwnIssuers ? .allowed : .forbidden
        case .delegateIssuers:
            // Only an OEM admin sees an OEM: its own.
            return target.kind == .oem ? .allowed : .forbidden
        }
    }
}
