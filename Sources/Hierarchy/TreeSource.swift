/// The tenant tree as declared — by a YAML file today, by the admin store later — before any
/// validation. Every value is kept as written (ids as raw strings, lists as lists), so that the
/// compiler can report each mistake against the node and field that contains it.
public struct TreeSource: Sendable {
    public var catalog: CatalogSource
    public var nodes: [NodeSource]
    /// The backend cells the static settings define; placement must name one of them.
    public var cells: [CellDescriptor]

    public init(catalog: CatalogSource, nodes: [NodeSource], cells: [CellDescriptor]) {
        self.catalog = catalog
        self.nodes = nodes
        self.cells = cells
    }
}

/// Where a value was written, when it came from a document.
public struct SourceLocation: Sendable, Hashable {
    public var line: Int?
    public var column: Int?

    public init(line: Int? = nil, column: Int? = nil) {
        self.line = line
        self.column = column
    }

    public static let unknown = SourceLocation()
}

public struct CellDescriptor: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case pooled, dedicated }
    public var id: String
    public var kind: Kind
    public var region: String
    /// Cells tried in order when none of this one's endpoints can serve (the settings' `fallback`).
    public var fallback: [String]

    public init(id: String, kind: Kind, region: String, fallback: [String] = []) {
        self.id = id
        self.kind = kind
        self.region = region
        self.fallback = fallback
    }
}

/// The platform catalog: every feature that exists, the platform's packages, and the routes the
/// ERP exposes with the feature each needs.
public struct CatalogSource: Sendable {
    public var features: [String]
    public var packages: [PackageSource]
    public var routes: [RouteSource]
    /// The module dependencies: for a feature, the features a node must also have to have it
    /// (`requires` of a catalog feature), in the order written. Features that require nothing
    /// are absent.
    public var requires: [String: [String]]
    /// Positions of catalog entries, keyed like `features[2]`, `features[2].requires`,
    /// `packages.starter`, `routes[0]`.
    public var locations: [String: SourceLocation]

    public init(features: [String], packages: [PackageSource], routes: [RouteSource], requires: [String: [String]] = [:], locations: [String: SourceLocation] = [:]) {
        self.features = features
        self.packages = packages
        self.routes = routes
        self.requires = requires
        self.locations = locations
    }

    /// The same features, requirements, packages and routes, wherever they were written.
    public func declares(sameAs other: CatalogSource) -> Bool {
        self.features == other.features && self.requires == other.requires && self.packages == other.packages && self.routes == other.routes
    }
}

/// A named bundle of features.
public struct PackageSource: Sendable, Hashable {
    public var name: String
    public var features: [String]

    public init(name: String, features: [String]) {
        self.name = name
        self.features = features
    }
}

/// One entry of the route catalog: requests whose method matches (any, when `method` is nil)
/// and whose path starts with `pathPrefix` need `feature` (none, when nil) and cost `cost`
/// quota units.
public struct RouteSource: Sendable, Hashable {
    public var method: String?
    public var pathPrefix: String
    public var feature: String?
    public var cost: Int
    /// Response fields of this route's backend a browser app on an allowed origin may read,
    /// beyond those every answer exposes.
    public var exposeHeaders: [String] = []
    /// The route accepts WebSocket handshakes (`websocket: true`); a handshake on any other
    /// route is refused.
    public var websocket: Bool
    /// Masking rules of the route's responses for every tenant (`route` is nil in each).
    public var masking: [MaskingRuleSource]

    public init(
        method: String?, pathPrefix: String, feature: String?, cost: Int, exposeHeaders: [String] = [], websocket: Bool = false,
        masking: [MaskingRuleSource] = []
    ) {
        self.method = method
        self.pathPrefix = pathPrefix
        self.feature = feature
        self.cost = cost
        self.exposeHeaders = exposeHeaders
        self.websocket = websocket
        self.masking = masking
    }
}

public enum TenantStatus: String, Sendable, Hashable, CaseIterable {
    case active
    case suspended
}

/// A node's budget for its whole subtree together. Absent fields are not limited at this level.
public struct Limits: Sendable, Hashable {
    /// Sustained requests (cost units) per second.
    public var ratePerSecond: Int?
    /// Requests that may arrive back to back above the sustained rate; defaults to the rate.
    public var burst: Int?
    /// Cost units per UTC calendar day.
    public var perDay: Int?
    /// Cost units per UTC calendar month.
    public var perMonth: Int?
    /// Requests in flight at once.
    public var concurrency: Int?

    public init(ratePerSecond: Int? = nil, burst: Int? = nil, perDay: Int? = nil, perMonth: Int? = nil, concurrency: Int? = nil) {
        self.ratePerSecond = ratePerSecond
        self.burst = burst
        self.perDay = perDay
        self.perMonth = perMonth
        self.concurrency = concurrency
    }

    public var isEmpty: Bool { self == Limits() }

    /// The position of `burst` in `fields`.
    static let burstIndex = 1
    /// The highest rate quotas can enforce: one request per microsecond.
    public static let maxRatePerSecond = 1_000_000

    /// The fields by name, in a fixed order, for validation and explain output.
    public var fields: [(name: String, value: Int?)] {
        [("rate", self.ratePerSecond), ("burst", self.burst), ("perDay", self.perDay), ("perMonth", self.perMonth), ("concurrency", self.concurrency)]
    }
}

/// Where a node's customers are served: a pinned cell, or a tier and region from which the
/// compiler picks the cell.
public struct PlacementSource: Sendable, Hashable {
    public enum Tier: String, Sendable, Hashable, CaseIterable { case pooled, dedicated }
    public var cell: String?
    public var tier: Tier?
    public var region: String?

    public init(cell: String? = nil, tier: Tier? = nil, region: String? = nil) {
        self.cell = cell
        self.tier = tier
        self.region = region
    }
}

/// The brand fields a portal shows. Inherited field by field; an ancestor may lock a field.
public enum BrandingField: String, Sendable, Hashable, CaseIterable, Comparable {
    case displayName
    case logoUrl
    case faviconUrl
    case primaryColor
    case accentColor
    case supportEmail
    case supportUrl
    case termsUrl
    case privacyUrl

    public static func < (lhs: BrandingField, rhs: BrandingField) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

public struct BrandingSource: Sendable, Hashable {
    public var values: [BrandingField: String]
    /// Fields that nodes below this one may not set.
    public var locked: [BrandingField]

    public init(values: [BrandingField: String] = [:], locked: [BrandingField] = []) {
        self.values = values
        self.locked = locked
    }
}

/// One node as declared. Optional fields that are nil inherit from the parent.
///
/// A value type whose fields live in one shared, copy-on-write box: a tree holds 100,000 of
/// them, and an admin change copies the tree's node list (and iterates it) several times. With
/// the fields inline every copy retained and released each of them (17 per node); boxed, a copy
/// is one reference. Measured with `bench/tree-compile.sh` on a one-customer change: copying the
/// document's node list took 41 ms inline, applying a delta to it 111 ms.
public struct NodeSource: Sendable {
    private final class Storage: @unchecked Sendable {
        // Mutated only while uniquely referenced (see `mutable`), so sharing one is safe.
        var id: String
        var kind: NodeKind
        var parent: String?
        var status: TenantStatus?
        var features: [String]?
        var packages: [PackageSource]
        var package: String?
        var addOns: [String]
        var limits: Limits?
        var customerDefaults: Limits?
        var placement: PlacementSource?
        var residency: [String]?
        var branding: BrandingSource?
        var portalDomains: [String]
        var origins: [String]?
        var issuers: [String]
        var partnerIssuerSelfService: Bool?
        var masking: [MaskingRuleSource]
        /// Not in `init`: set by the readers that know it (tree file, admin API).
        var supportAccess: SupportAccessSource?
        var location: SourceLocation
        var fieldLocations: [String: SourceLocation]

        init(id: String, kind: NodeKind, parent: String?, status: TenantStatus?, features: [String]?, packages: [PackageSource], package: String?, addOns: [String], limits: Limits?, customerDefaults: Limits?, placement: PlacementSource?, residency: [String]?, branding: BrandingSource?, portalDomains: [String], origins: [String]?, issuers: [String], partnerIssuerSelfService: Bool?, masking: [MaskingRuleSource], location: SourceLocation, fieldLocations: [String: SourceLocation]) {
            self.id = id
            self.kind = kind
            self.parent = parent
            self.status = status
            self.features = features
            self.packages = packages
            self.package = package
            self.addOns = addOns
            self.limits = limits
            self.customerDefaults = customerDefaults
            self.placement = placement
            self.residency = residency
            self.branding = branding
            self.portalDomains = portalDomains
            self.origins = origins
            self.issuers = issuers
            self.partnerIssuerSelfService = partnerIssuerSelfService
            self.masking = masking
            self.location = location
            self.fieldLocations = fieldLocations
        }

        func copy() -> Storage {
            let copy = Storage(id: self.id, kind: self.kind, parent: self.parent, status: self.status, features: self.features, packages: self.packages, package: self.package, addOns: self.addOns, limits: self.limits, customerDefaults: self.customerDefaults, placement: self.placement, residency: self.residency, branding: self.branding, portalDomains: self.portalDomains, origins: self.origins, issuers: self.issuers, partnerIssuerSelfService: self.partnerIssuerSelfService, masking: self.masking, location: self.location, fieldLocations: self.fieldLocations)
            copy.supportAccess = self.supportAccess
            return copy
        }
    }

    private var storage: Storage

    private var mutable: Storage {
        mutating get {
            if !isKnownUniquelyReferenced(&self.storage) { self.storage = self.storage.copy() }
            return self.storage
        }
    }

    public var id: String {
        get { self.storage.id }
        set { self.mutable.id = newValue }
    }
    public var kind: NodeKind {
        get { self.storage.kind }
        set { self.mutable.kind = newValue }
    }
    public var parent: String? {
        get { self.storage.parent }
        set { self.mutable.parent = newValue }
    }
    public var status: TenantStatus? {
        get { self.storage.status }
        set { self.mutable.status = newValue }
    }
    /// OEM or partner: the features it may offer. A child may only narrow its parent's.
    public var features: [String]? {
        get { self.storage.features }
        set { self.mutable.features = newValue }
    }
    /// OEM only: packages of its own, each a subset of what the OEM may offer.
    public var packages: [PackageSource] {
        get { self.storage.packages }
        set { self.mutable.packages = newValue }
    }
    /// Customer only: the package subscribed to, and add-on features.
    public var package: String? {
        get { self.storage.package }
        set { self.mutable.package = newValue }
    }
    public var addOns: [String] {
        get { self.storage.addOns }
        set { self.mutable.addOns = newValue }
    }
    public var limits: Limits? {
        get { self.storage.limits }
        set { self.mutable.limits = newValue }
    }
    /// OEM or partner: the limits of each customer below that sets none itself.
    public var customerDefaults: Limits? {
        get { self.storage.customerDefaults }
        set { self.mutable.customerDefaults = newValue }
    }
    public var placement: PlacementSource? {
        get { self.storage.placement }
        set { self.mutable.placement = newValue }
    }
    public var residency: [String]? {
        get { self.storage.residency }
        set { self.mutable.residency = newValue }
    }
    public var branding: BrandingSource? {
        get { self.storage.branding }
        set { self.mutable.branding = newValue }
    }
    public var portalDomains: [String] {
        get { self.storage.portalDomains }
        set { self.mutable.portalDomains = newValue }
    }
    /// Origins (CORS) allowed to call the ERP from a browser. A child may only narrow.
    public var origins: [String]? {
        get { self.storage.origins }
        set { self.mutable.origins = newValue }
    }
    /// Token issuers (`iss`) registered on this node; each may only speak for its subtree.
    public var issuers: [String] {
        get { self.storage.issuers }
        set { self.mutable.issuers = newValue }
    }
    /// OEM only: whether the admins of its partners manage their own partner's token issuers.
    /// Nil (not written) means they do not; the OEM's admin registers them.
    public var partnerIssuerSelfService: Bool? {
        get { self.storage.partnerIssuerSelfService }
        set { self.mutable.partnerIssuerSelfService = newValue }
    }
    /// OEM or partner: the cap on support grants' duration and who approves them below it.
    public var supportAccess: SupportAccessSource? {
        get { self.storage.supportAccess }
        set { self.mutable.supportAccess = newValue }
    }

    /// Masking rules for the node's whole subtree, each naming its catalog route; added to the
    /// parent's, never replacing them.
    public var masking: [MaskingRuleSource] {
        get { self.storage.masking }
        set { self.mutable.masking = newValue }
    }
    /// Where the node and each of its fields were written (`features`, `branding.logoUrl`, …).
    public var location: SourceLocation {
        get { self.storage.location }
        set { self.mutable.location = newValue }
    }
    public var fieldLocations: [String: SourceLocation] {
        get { self.storage.fieldLocations }
        set { self.mutable.fieldLocations = newValue }
    }

    public init(
        id: String, kind: NodeKind, parent: String? = nil, status: TenantStatus? = nil, features: [String]? = nil,
        packages: [PackageSource] = [], package: String? = nil, addOns: [String] = [], limits: Limits? = nil,
        customerDefaults: Limits? = nil, placement: PlacementSource? = nil, residency: [String]? = nil,
        branding: BrandingSource? = nil, portalDomains: [String] = [], origins: [String]? = nil, issuers: [String] = [],
        partnerIssuerSelfService: Bool? = nil, masking: [MaskingRuleSource] = [], location: SourceLocation = .unknown,
        fieldLocations: [String: SourceLocation] = [:]
    ) {
        self.storage = Storage(id: id, kind: kind, parent: parent, status: status, features: features, packages: packages, package: package, addOns: addOns, limits: limits, customerDefaults: customerDefaults, placement: placement, residency: residency, branding: branding, portalDomains: portalDomains, origins: origins, issuers: issuers, partnerIssuerSelfService: partnerIssuerSelfService, masking: masking, location: location, fieldLocations: fieldLocations)
    }

    func location(of field: String) -> SourceLocation {
        self.fieldLocations[field] ?? self.location
    }

    /// Drops where the node was written: a compiled snapshot keeps the declaration alone (the
    /// positions point into whichever text the node was last read from, and say nothing then).
    mutating func keepOnlyDeclaration() {
        self.fieldLocations = [:]
        self.location = .unknown
    }

    /// The same declaration, wherever each was written.
    public func declares(sameAs other: NodeSource) -> Bool {
        self.id == other.id && self.kind == other.kind && self.parent == other.parent && self.status == other.status
            && self.features == other.features && self.packages == other.packages && self.package == other.package
            && self.addOns == other.addOns && self.limits == other.limits && self.customerDefaults == other.customerDefaults
            && self.placement == other.placement && self.residency == other.residency && self.branding == other.branding
            && self.portalDomains == other.portalDomains && self.origins == other.origins && self.issuers == other.issuers
            && self.partnerIssuerSelfService == other.partnerIssuerSelfService && self.supportAccess == other.supportAccess && self.masking == other.masking
    }
}
