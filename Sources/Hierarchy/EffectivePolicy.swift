import JSONText

/// Everything that applies to one node once inheritance has run: computed when a snapshot is
/// compiled, never per request. Customers' policies drive the data plane; OEMs' and partners'
/// serve their portals and the explain view.
public struct EffectivePolicy: Sendable, Equatable {
    public let id: NodeID
    public let path: NodePath
    public var kind: NodeKind { self.path.kind }

    /// Suspended when the node or any ancestor is; `suspendedBy` names the highest such node.
    public let status: TenantStatus
    public let suspendedBy: NodeID?

    /// What the node may offer (OEM, partner) or has (customer).
    public let features: FeatureSet
    /// Customers: the package and add-ons subscribed to.
    public let package: String?
    public let addOns: [String]

    /// The quota levels a customer's request is charged at, customer first, then partner, OEM.
    /// Levels without limits are absent. For an OEM or partner: the levels from itself up.
    public let limits: [LevelLimits]

    /// Customers: the cell serving them. OEMs and partners: nil.
    public let cell: String?
    /// Allowed regions; nil means unrestricted.
    public let residency: Set<String>?

    public let branding: EffectiveBranding
    public let portalDomains: [String]
    /// Allowed CORS origins; empty means none.
    public let origins: [String]
    /// Whether the admins of the OEM's partners manage their own partner's token issuers: the
    /// OEM's `partnerIssuerSelfService`, the same on every node of its subtree.
    public let partnerIssuerSelfService: Bool
    /// Support grants on this node (a customer): the tree's cap on their duration and whose
    /// admins approve them, inherited from its partner and OEM.
    public var supportAccess: SupportAccessPolicy = .unrestricted
    /// The masks of every route's responses that reach the node (its own rules and every
    /// ancestor's, the catalog's first).
    public var masking: ResponseMasks = .none
}

/// One level of a request's quota path: whose budget, and how large.
public struct LevelLimits: Sendable, Hashable {
    public let node: NodeID
    public let kind: NodeKind
    public let limits: Limits
}

/// Branding after inheritance and locks, with a validator for HTTP caching.
public struct EffectiveBranding: Sendable, Hashable {
    public let values: [BrandingField: String]
    /// A strong validator over the values: it changes exactly when a value changes.
    public let etag: String

    /// The public JSON form: fields in a fixed order, absent fields omitted.
    public let json: String

    init(values: [BrandingField: String]) {
        self.values = values
        let members = BrandingField.allCases.compactMap { field -> String? in
            guard let value = values[field] else { return nil }
            return "\(JSONText.quote(field.rawValue)):\(JSONText.quote(value))"
        }
        self.json = "{" + members.joined(separator: ",") + "}"
        self.etag = "\"" + Self.hash(self.json) + "\""
    }

    /// FNV-1a, 64 bits, as hex: stable across processes and nodes (unlike `Hasher`), which is
    /// what lets every gateway node hand out the same ETag.
    static func hash(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
