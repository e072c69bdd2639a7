import JSONText

/// Everything that applies to one node once inheritance has run: computed when a snapshot is
/// compiled, never per request. Customers' policies drive the data plane; OEMs' and partners'
/// serve their portals and the explain view.
///
/// Its values live in one immutable object that every copy shares, so a copy retains one
/// reference. The data plane copies a customer's policy out of the snapshot for each request
/// and holds it until the response ends. As inline fields each copy was hundreds of bytes and
/// about twenty references retained and released again: copying, destroying and allocating
/// what held it were about 2 % of a full pipeline's profile (`bench/profile.sh full`), and a
/// full-pipeline request took 48.8 µs of CPU against 47.3 µs this way (`bench/ab.sh BEFORE
/// AFTER 6 6`, medians of 6 rounds).
public struct EffectivePolicy: Sendable, Equatable {
    /// The fields, as compiled.
    struct Values: Sendable, Equatable {
        let id: NodeID
        let path: NodePath
        let status: TenantStatus
        let suspendedBy: NodeID?
        let features: FeatureSet
        let package: String?
        let addOns: [String]
        let limits: [LevelLimits]
        let cell: String?
        let residency: Set<String>?
        let branding: EffectiveBranding
        let portalDomains: [String]
        let origins: [String]
        let partnerIssuerSelfService: Bool
        let supportAccess: SupportAccessPolicy
        let masking: ResponseMasks
    }

    private final class Storage: Sendable {
        let values: Values

        init(_ values: Values) {
            self.values = values
        }
    }

    private let storage: Storage

    init(
        id: NodeID, path: NodePath, status: TenantStatus, suspendedBy: NodeID?, features: FeatureSet, package: String?, addOns: [String],
        limits: [LevelLimits], cell: String?, residency: Set<String>?, branding: EffectiveBranding, portalDomains: [String], origins: [String],
        partnerIssuerSelfService: Bool, supportAccess: SupportAccessPolicy = .unrestricted, masking: ResponseMasks = .none
    ) {
        self.storage = Storage(Values(
            id: id, path: path, status: status, suspendedBy: suspendedBy, features: features, package: package, addOns: addOns, limits: limits,
            cell: cell, residency: residency, branding: branding, portalDomains: portalDomains, origins: origins,
            partnerIssuerSelfService: partnerIssuerSelfService, supportAccess: supportAccess, masking: masking
        ))
    }

    public static func == (lhs: EffectivePolicy, rhs: EffectivePolicy) -> Bool {
        lhs.storage === rhs.storage || lhs.storage.values == rhs.storage.values
    }

    public var id: NodeID { self.storage.values.id }
    public var path: NodePath { self.storage.values.path }
    public var kind: NodeKind { self.path.kind }

    /// Suspended when the node or any ancestor is; `suspendedBy` names the highest such node.
    public var status: TenantStatus { self.storage.values.status }
    public var suspendedBy: NodeID? { self.storage.values.suspendedBy }

    /// What the node may offer (OEM, partner) or has (customer).
    public var features: FeatureSet { self.storage.values.features }
    /// Customers: the package and add-ons subscribed to.
    public var package: String? { self.storage.values.package }
    public var addOns: [String] { self.storage.values.addOns }

    /// The quota levels a customer's request is charged at, customer first, then partner, OEM.
    /// Levels without limits are absent. For an OEM or partner: the levels from itself up.
    public var limits: [LevelLimits] { self.storage.values.limits }

    /// Customers: the cell serving them. OEMs and partners: nil.
    public var cell: String? { self.storage.values.cell }
    /// Allowed regions; nil means unrestricted.
    public var residency: Set<String>? { self.storage.values.residency }

    public var branding: EffectiveBranding { self.storage.values.branding }
    public var portalDomains: [String] { self.storage.values.portalDomains }
    /// Allowed CORS origins; empty means none.
    public var origins: [String] { self.storage.values.origins }
    /// Whether the admins of the OEM's partners manage their own partner's token issuers: the
    /// OEM's `partnerIssuerSelfService`, the same on every node of its subtree.
    public var partnerIssuerSelfService: Bool { self.storage.values.partnerIssuerSelfService }
    /// Support grants on this node (a customer): the tree's cap on their duration and whose
    /// admins approve them, inherited from its partner and OEM.
    public var supportAccess: SupportAccessPolicy { self.storage.values.supportAccess }
    /// The masks of every route's responses that reach the node (its own rules and every
    /// ancestor's, the catalog's first).
    public var masking: ResponseMasks { self.storage.values.masking }
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
