import Foundation
import Hierarchy
import Yams

/// Reads the tenant-tree file (`tenantTree` in the settings) into an unvalidated
/// `Hierarchy.TreeSource`, or a `ConfigurationError` listing every shape problem with its key path
/// and line.
///
/// Only the shape is checked here: types, unknown keys, the names of kinds, statuses, tiers and
/// branding fields, and number ranges. Everything that needs the tree as a whole (parents, ids,
/// features, cells, narrowing, limits against the parent, URLs, colours, domain uniqueness) is the
/// Hierarchy compiler's job, so values are passed on exactly as written, with the position of each
/// node and field for its reports. `docs/configuration.md` documents the file field by field.
public enum TenantTreeLoader {
    public static func load(path: String, cells: [GatewaySettings.Cell]) throws(ConfigurationError) -> TreeSource {
        try self.loadDocument(path: path, cells: cells).tree
    }

    public static func parse(_ text: String, source: String = "<tenant-tree>", cells: [GatewaySettings.Cell]) throws(ConfigurationError) -> TreeSource {
        try self.parseDocument(text, source: source, cells: cells).tree
    }

    /// The tree and the token issuers its nodes register (with their keys read, key files
    /// resolved against the tree file's directory).
    public static func loadDocument(path: String, cells: [GatewaySettings.Cell]) throws(ConfigurationError) -> TenantTreeDocument {
        let text = try YAMLReader.readFile(path: path)
        let directory = (path as NSString).deletingLastPathComponent
        return try self.parseDocument(text, source: path, cells: cells, baseDirectory: directory.isEmpty ? "." : directory)
    }

    public static func parseDocument(
        _ text: String, source: String = "<tenant-tree>", cells: [GatewaySettings.Cell], baseDirectory: String? = nil
    ) throws(ConfigurationError) -> TenantTreeDocument {
        try YAMLReader.readDocument(text, source: source) { root, reader in
            Self.read(root: root, cells: cells, baseDirectory: baseDirectory, with: &reader)
        }
    }

    /// Limits count requests, cost units or connections: at least 1, and 10^12 leaves room for
    /// any real budget while keeping sums of many levels far from overflow.
    static let limitRange = 1...1_000_000_000_000
    /// Quota units one request to a route costs.
    static let routeCostRange = 1...1000

    // MARK: - Sections

    private static func read(
        root: YAMLReader.Cursor, cells: [GatewaySettings.Cell], baseDirectory: String?, with reader: inout YAMLReader
    ) -> TenantTreeDocument? {
        guard let top = reader.mapping(root, allowedKeys: ["catalog", "tenants"]) else { return nil }
        var catalog: CatalogSource?
        if let cursor = top["catalog"] {
            catalog = Self.catalog(cursor, &reader)
        } else {
            reader.report(root, "missing required section 'catalog'")
        }
        var nodes: [NodeSource] = []
        var issuers: [IssuerDefinition] = []
        if let cursor = top["tenants"] {
            if let items = reader.sequence(cursor) {
                if items.isEmpty { reader.report(cursor, "at least one tenant is required") }
                for item in items {
                    guard let (node, registered) = Self.node(item, baseDirectory: baseDirectory, &reader) else { continue }
                    nodes.append(node)
                    issuers += registered
                }
            }
        } else {
            reader.report(root, "missing required section 'tenants'")
        }
        guard let catalog else { return nil }
        return TenantTreeDocument(tree: TreeSource(catalog: catalog, nodes: nodes, cells: cells.map(Self.descriptor)), issuers: issuers)
    }

    /// The cells as the tree compiler sees them (a tree read under other settings takes these).
    public static func cellDescriptors(_ cells: [GatewaySettings.Cell]) -> [CellDescriptor] {
        cells.map(Self.descriptor)
    }

    private static func descriptor(_ cell: GatewaySettings.Cell) -> CellDescriptor {
        switch cell.kind {
        case .pooled: return CellDescriptor(id: cell.id, kind: .pooled, region: cell.region, fallback: cell.fallback)
        case .dedicated: return CellDescriptor(id: cell.id, kind: .dedicated, region: cell.region, fallback: cell.fallback)
        }
    }

    private static func catalog(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> CatalogSource? {
        guard let map = reader.mapping(cursor, allowedKeys: ["features", "packages", "routes"]) else { return nil }
        var locations: [String: SourceLocation] = [:]
        var features: [String] = []
        var requires: [String: [String]] = [:]
        if let c = map["features"], let items = reader.sequence(c) {
            locations["features"] = Self.location(c)
            for (index, item) in items.enumerated() {
                guard let (feature, required) = Self.feature(item, &locations, index: index, &reader) else { continue }
                features.append(feature)
                // A name listed twice is the compiler's to report; the first one's requirements count.
                if let required, requires[feature] == nil { requires[feature] = required }
                locations["features[\(index)]"] = Self.location(item)
            }
        }
        let packages = map["packages"].map { Self.packages($0, field: "packages", &locations, &reader) } ?? []
        var routes: [RouteSource] = []
        if let c = map["routes"], let items = reader.sequence(c) {
            locations["routes"] = Self.location(c)
            for (index, item) in items.enumerated() {
                guard let route = Self.route(item, &reader) else { continue }
                routes.append(route)
                locations["routes[\(index)]"] = Self.location(item)
            }
        }
        return CatalogSource(features: features, packages: packages, routes: routes, requires: requires, locations: locations)
    }

    /// A catalog feature: its name alone (`payroll`), or a mapping with its name and the
    /// features it requires (`{ name: payroll, requires: [hr] }`). A `requires` list, even an
    /// empty one, is passed on as written; nil when the feature declares none.
    private static func feature(
        _ cursor: YAMLReader.Cursor, _ locations: inout [String: SourceLocation], index: Int, _ reader: inout YAMLReader
    ) -> (String, [String]?)? {
        guard case .mapping = cursor.node else {
            return reader.presentString(cursor).map { ($0, nil) }
        }
        guard let map = reader.mapping(cursor, allowedKeys: ["name", "requires"]) else { return nil }
        var required: [String]?
        if let c = map["requires"] {
            required = reader.stringList(c)
            locations["features[\(index)].requires"] = Self.location(c)
        }
        guard let nameCursor = map["name"] else {
            reader.report(cursor, "missing required key 'name'")
            return nil
        }
        guard let name = reader.presentString(nameCursor) else { return nil }
        return (name, required)
    }

    private static func route(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> RouteSource? {
        guard let map = reader.mapping(cursor, allowedKeys: ["path", "method", "feature", "cost", "exposeHeaders", "websocket", "masking"]) else { return nil }
        let method = map["method"].flatMap { reader.presentString($0) }
        let feature = map["feature"].flatMap { reader.presentString($0) }
        var cost: Int? = 1
        if let c = map["cost"] { cost = reader.integer(c, in: Self.routeCostRange) }
        guard let pathCursor = map["path"] else {
            reader.report(cursor, "missing required key 'path'")
            return nil
        }
        let exposeHeaders = map["exposeHeaders"].flatMap { reader.sequence($0) }?.compactMap { reader.presentString($0) } ?? []
        var websocket: Bool? = false
        if let c = map["websocket"] { websocket = reader.bool(c) }
        let masking = map["masking"].map { Self.maskingRules($0, onNode: false, &reader) } ?? []
        guard let path = reader.presentString(pathCursor), let cost, let websocket else { return nil }
        return RouteSource(method: method, pathPrefix: path, feature: feature, cost: cost, exposeHeaders: exposeHeaders, websocket: websocket, masking: masking)
    }

    /// Masking rules: a list of `{route, fields, roles, nonJSON}` (`route` only on a node,
    /// where it is required).
    private static func maskingRules(_ cursor: YAMLReader.Cursor, onNode: Bool, _ reader: inout YAMLReader) -> [MaskingRuleSource] {
        guard let items = reader.sequence(cursor) else { return [] }
        let keys: Set<String> = onNode ? ["route", "fields", "roles", "nonJSON"] : ["fields", "roles", "nonJSON"]
        return items.compactMap { item -> MaskingRuleSource? in
            guard let map = reader.mapping(item, allowedKeys: keys) else { return nil }
            var route: String?
            if onNode {
                if let c = map["route"] { route = reader.presentString(c) } else { reader.report(item, "missing required key 'route'") }
            }
            guard let c = map["fields"] else {
                reader.report(item, "missing required key 'fields'")
                return nil
            }
            let fields = reader.stringList(c)
            let roles = map["roles"].flatMap { reader.stringList($0) }
            let nonJSON = map["nonJSON"].flatMap { reader.choice($0, among: NonJSONResponses.allCases) }
            guard let fields, !onNode || route != nil else { return nil }
            return MaskingRuleSource(route: route, fields: fields, roles: roles, nonJSON: nonJSON)
        }
    }

    /// `name: [feature, …]` pairs in document order; each located at its name as `FIELD.NAME`.
    private static func packages(
        _ cursor: YAMLReader.Cursor, field: String, _ locations: inout [String: SourceLocation], _ reader: inout YAMLReader
    ) -> [PackageSource] {
        guard let entries = reader.entries(cursor) else { return [] }
        return entries.compactMap { name, value in
            guard let features = reader.stringList(value) else { return nil }
            locations["\(field).\(name)"] = Self.location(value)
            return PackageSource(name: name, features: features)
        }
    }

    // MARK: - Nodes

    private static let nodeKeys: Set<String> = [
        "id", "kind", "parent", "status", "features", "packages", "package", "addOns", "limits", "customerDefaults",
        "placement", "residency", "branding", "portalDomains", "origins", "issuers", "partnerIssuerSelfService",
        "supportAccess", "masking",
    ]

    private static func node(
        _ item: YAMLReader.Cursor, baseDirectory: String?, _ reader: inout YAMLReader
    ) -> (NodeSource, [IssuerDefinition])? {
        guard let map = reader.mapping(item, allowedKeys: Self.nodeKeys) else { return nil }
        // Every field is located at its key; nested fields (`limits.rate`) are added below.
        var locations = map.mapValues(Self.location)

        var id: String?
        if let c = map["id"] {
            id = reader.presentString(c)
        } else {
            reader.report(item, "missing required key 'id'")
        }
        var kind: NodeKind?
        if let c = map["kind"] {
            kind = reader.choice(c, among: NodeKind.allCases)
        } else {
            reader.report(item, "missing required key 'kind'")
        }
        // The other fields are read even when the node is incomplete, so one run reports them too.
        let parent = map["parent"].flatMap { reader.presentString($0) }
        let status = map["status"].flatMap { reader.choice($0, among: [TenantStatus.active, .suspended]) }
        let features = map["features"].flatMap { reader.stringList($0) }
        let packages = map["packages"].map { Self.packages($0, field: "packages", &locations, &reader) } ?? []
        let package = map["package"].flatMap { reader.presentString($0) }
        let addOns = map["addOns"].flatMap { reader.stringList($0) } ?? []
        let limits = map["limits"].flatMap { Self.limits($0, field: "limits", &locations, &reader) }
        let customerDefaults = map["customerDefaults"].flatMap { Self.limits($0, field: "customerDefaults", &locations, &reader) }
        let placement = map["placement"].flatMap { Self.placement($0, &locations, &reader) }
        let residency = map["residency"].flatMap { reader.stringList($0) }
        let branding = map["branding"].flatMap { Self.branding($0, &locations, &reader) }
        let portalDomains = map["portalDomains"].flatMap { reader.stringList($0) } ?? []
        let origins = map["origins"].flatMap { reader.stringList($0) }
        let issuers = map["issuers"].map { reader.issuers($0, node: id, baseDirectory: baseDirectory) } ?? []
        let partnerIssuerSelfService = map["partnerIssuerSelfService"].flatMap { reader.bool($0) }
        let supportAccess = map["supportAccess"].flatMap { Self.supportAccess($0, &reader) }
        let masking = map["masking"].map { Self.maskingRules($0, onNode: true, &reader) } ?? []

        guard let id, let kind else { return nil }
        var node = NodeSource(
            id: id, kind: kind, parent: parent, status: status, features: features, packages: packages, package: package,
            addOns: addOns, limits: limits, customerDefaults: customerDefaults, placement: placement, residency: residency,
            branding: branding, portalDomains: portalDomains, origins: origins, issuers: issuers.map(\.issuer),
            partnerIssuerSelfService: partnerIssuerSelfService, masking: masking, location: Self.location(item), fieldLocations: locations
        )
        node.supportAccess = supportAccess
        return (node, issuers)
    }

    /// `supportAccess: { maxDuration: 4h, approvers: [customer, partner, oem] }`.
    private static func supportAccess(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> SupportAccessSource? {
        guard let map = reader.mapping(cursor, allowedKeys: ["maxDuration", "approvers"]) else { return nil }
        var source = SupportAccessSource()
        if let c = map["maxDuration"], let duration = reader.duration(c, in: .seconds(1) ... .seconds(7 * 24 * 3600)) {
            source.maxDuration = duration.components.seconds
        }
        if let c = map["approvers"], let names = reader.stringList(c) {
            var approvers: [SupportApprover] = []
            for name in names {
                guard let approver = SupportApprover(rawValue: name) else {
                    reader.report(c, "'\(name)' is not one of customer, partner, oem")
                    continue
                }
                approvers.append(approver)
            }
            source.approvers = approvers
        }
        return source
    }

    private static func limits(
        _ cursor: YAMLReader.Cursor, field: String, _ locations: inout [String: SourceLocation], _ reader: inout YAMLReader
    ) -> Limits? {
        // The names are `Limits.fields`' names, so explain output and the file agree.
        let names = Limits().fields.map(\.name)
        guard let map = reader.mapping(cursor, allowedKeys: Set(names)) else { return nil }
        var values: [String: Int] = [:]
        for name in names {
            guard let c = map[name] else { continue }
            locations["\(field).\(name)"] = Self.location(c)
            values[name] = reader.integer(c, in: Self.limitRange)
        }
        return Limits(
            ratePerSecond: values["rate"], burst: values["burst"], perDay: values["perDay"], perMonth: values["perMonth"],
            concurrency: values["concurrency"]
        )
    }

    private static func placement(
        _ cursor: YAMLReader.Cursor, _ locations: inout [String: SourceLocation], _ reader: inout YAMLReader
    ) -> PlacementSource? {
        guard let map = reader.mapping(cursor, allowedKeys: ["cell", "tier", "region"]) else { return nil }
        for (name, c) in map { locations["placement.\(name)"] = Self.location(c) }
        return PlacementSource(
            cell: map["cell"].flatMap { reader.presentString($0) },
            tier: map["tier"].flatMap { reader.choice($0, among: [PlacementSource.Tier.pooled, .dedicated]) },
            region: map["region"].flatMap { reader.presentString($0) }
        )
    }

    private static func branding(
        _ cursor: YAMLReader.Cursor, _ locations: inout [String: SourceLocation], _ reader: inout YAMLReader
    ) -> BrandingSource? {
        let keys = Set(BrandingField.allCases.map(\.rawValue) + ["locked"])
        guard let map = reader.mapping(cursor, allowedKeys: keys) else { return nil }
        for (name, c) in map { locations["branding.\(name)"] = Self.location(c) }
        var branding = BrandingSource()
        for field in BrandingField.allCases {
            if let c = map[field.rawValue], let value = reader.presentString(c) { branding.values[field] = value }
        }
        if let c = map["locked"], let items = reader.sequence(c) {
            branding.locked = items.compactMap { reader.choice($0, among: BrandingField.allCases) }
        }
        return branding
    }

    private static func location(_ cursor: YAMLReader.Cursor) -> SourceLocation {
        SourceLocation(line: cursor.mark?.line, column: cursor.mark?.column)
    }
}

/// A tenant-tree file as read: the tree for the Hierarchy compiler, and the issuers (with their
/// keys) its nodes register, for the token verifier.
public struct TenantTreeDocument: Sendable {
    public var tree: TreeSource
    public var issuers: [IssuerDefinition]

    public init(tree: TreeSource, issuers: [IssuerDefinition]) {
        self.tree = tree
        self.issuers = issuers
    }
}
