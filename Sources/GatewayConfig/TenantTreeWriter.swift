import Foundation
import Hierarchy
import Yams

/// Writes a tenant tree back in the tree file's own format: what the admin store keeps, what
/// export hands out. Whatever it writes, `TenantTreeLoader` reads back to the same tree, so a
/// stored tree is read and validated by exactly the code that reads the file. Key material is
/// written inline (`pem`, `secret`): a stored tree must not depend on files of one machine.
public enum TenantTreeWriter {
    /// The whole document, or only the nodes `include` accepts (an export of one subtree; the
    /// catalog is always written whole, since packages and routes name its features).
    public static func yaml(_ document: TenantTreeDocument, including include: (NodeSource) -> Bool = { _ in true }) -> String {
        let issuersByNode = Dictionary(grouping: document.issuers, by: { $0.node ?? "" })
        var tenants: [Node] = []
        for node in document.tree.nodes where include(node) {
            tenants.append(self.node(node, issuers: issuersByNode[node.id] ?? []))
        }
        let root = Self.mapping([
            ("catalog", self.catalog(document.tree.catalog)),
            ("tenants", Node(tenants)),
        ])
        // Serializing nodes built from strings and integers cannot fail.
        return (try? Yams.serialize(node: root, width: -1)) ?? ""
    }

    static func catalog(_ catalog: CatalogSource) -> Node {
        var routes: [Node] = []
        for route in catalog.routes {
            var pairs: [(String, Node?)] = [("path", Self.string(route.pathPrefix))]
            pairs.append(("method", route.method.map(Self.string)))
            pairs.append(("feature", route.feature.map(Self.string)))
            if route.cost != 1 { pairs.append(("cost", Self.integer(route.cost))) }
            if !route.exposeHeaders.isEmpty { pairs.append(("exposeHeaders", Self.strings(route.exposeHeaders))) }
            if route.websocket { pairs.append(("websocket", Node("true", Tag(.bool)))) }
            if !route.masking.isEmpty { pairs.append(("masking", Self.maskingRules(route.masking))) }
            routes.append(Self.mapping(pairs))
        }
        // A feature that requires others is written as a mapping; one that does not, by name.
        var written: Set<String> = []
        let features = catalog.features.map { feature -> Node in
            guard let required = catalog.requires[feature], written.insert(feature).inserted else { return Self.string(feature) }
            return Node([(Node("name"), Self.string(feature)), (Node("requires"), Self.strings(required))], Tag(.map), .flow)
        }
        return Self.mapping([
            ("features", features.contains { $0.mapping != nil } ? Node(features) : Self.strings(catalog.features)),
            ("packages", Self.packages(catalog.packages)),
            ("routes", Node(routes)),
        ])
    }

    static func node(_ node: NodeSource, issuers: [IssuerDefinition]) -> Node {
        var pairs: [(String, Node?)] = [
            ("id", Self.string(node.id)),
            ("kind", Self.string(node.kind.rawValue)),
            ("parent", node.parent.map(Self.string)),
            ("status", node.status.map { Self.string($0.rawValue) }),
            ("features", node.features.map(Self.strings)),
            ("packages", node.packages.isEmpty ? nil : Self.packages(node.packages)),
            ("package", node.package.map(Self.string)),
            ("addOns", node.addOns.isEmpty ? nil : Self.strings(node.addOns)),
            ("limits", node.limits.map(Self.limits)),
            ("customerDefaults", node.customerDefaults.map(Self.limits)),
        ]
        if let placement = node.placement {
            pairs.append(("placement", Self.mapping([
                ("cell", placement.cell.map(Self.string)),
                ("tier", placement.tier.map { Self.string($0.rawValue) }),
                ("region", placement.region.map(Self.string)),
            ])))
        }
        pairs.append(("residency", node.residency.map(Self.strings)))
        if let branding = node.branding {
            var fields: [(String, Node?)] = BrandingField.allCases.map { field in (field.rawValue, branding.values[field].map(Self.string)) }
            if !branding.locked.isEmpty { fields.append(("locked", Self.strings(branding.locked.map(\.rawValue)))) }
            pairs.append(("branding", Self.mapping(fields)))
        }
        pairs.append(("portalDomains", node.portalDomains.isEmpty ? nil : Self.strings(node.portalDomains)))
        pairs.append(("origins", node.origins.map(Self.strings)))
        pairs.append(("partnerIssuerSelfService", node.partnerIssuerSelfService.map { Node($0 ? "true" : "false", Tag(.bool)) }))
        if let support = node.supportAccess {
            pairs.append(("supportAccess", Self.mapping([
                ("maxDuration", support.maxDuration.map { Self.string(SupportAccessPolicy.text(seconds: $0)) }),
                ("approvers", support.approvers.map { Self.strings($0.map(\.rawValue)) }),
            ])))
        }
        if !node.masking.isEmpty { pairs.append(("masking", Self.maskingRules(node.masking))) }
        if !issuers.isEmpty { pairs.append(("issuers", Node(issuers.map(Self.issuer)))) }
        return Self.mapping(pairs)
    }

    static func maskingRules(_ rules: [MaskingRuleSource]) -> Node {
        Node(rules.map { rule in
            Self.mapping([
                ("route", rule.route.map(Self.string)),
                ("fields", Self.strings(rule.fields)),
                ("roles", rule.roles.map(Self.strings)),
                ("nonJSON", rule.nonJSON.map { Self.string($0.rawValue) }),
            ])
        })
    }

    static func issuer(_ issuer: IssuerDefinition) -> Node {
        let keys = issuer.keys.map { key -> Node in
            var pairs: [(String, Node?)] = [("kid", Self.string(key.kid)), ("alg", Self.string(key.algorithm))]
            switch key.material {
            case .publicKeyPEM(let pem): pairs.append(("pem", Node(pem, Tag(.str), .literal)))
            case .secret(let bytes): pairs.append(("secret", Self.string(Data(bytes).base64EncodedString())))
            }
            return Self.mapping(pairs)
        }
        return Self.mapping([
            ("iss", Self.string(issuer.issuer)),
            ("audience", Self.string(issuer.audience)),
            ("maxLifetime", Self.string("\(issuer.maxLifetime.components.seconds)s")),
            ("clockSkew", Self.string("\(issuer.clockSkew.components.seconds)s")),
            ("tenantClaim", Self.string(issuer.tenantClaim)),
            ("allowHMAC", issuer.allowHMAC ? Node("true", Tag(.bool)) : nil),
        ] + Self.keySource(issuer, keys: keys))
    }

    /// `keys`, or the provider's URL and the pinned algorithms.
    private static func keySource(_ issuer: IssuerDefinition, keys: [Node]) -> [(String, Node?)] {
        switch issuer.keySource {
        case .configured: [("keys", Node(keys))]
        case .jwks(let url): [("jwksUri", Self.string(url)), ("algorithms", Self.strings(issuer.algorithms))]
        case .discovery(let url): [("discovery", Self.string(url)), ("algorithms", Self.strings(issuer.algorithms))]
        }
    }

    static func limits(_ limits: Limits) -> Node {
        Self.mapping(limits.fields.map { ($0.name, $0.value.map(Self.integer)) })
    }

    static func packages(_ packages: [PackageSource]) -> Node {
        Self.mapping(packages.map { ($0.name, Self.strings($0.features)) })
    }

    // MARK: - Scalars

    /// Quoted whenever the plain form would read as something else (`null`, `true`, `42`, a
    /// leading `#`), so a value always comes back as the same string.
    static func string(_ text: String) -> Node {
        .scalar(text.represented())
    }

    static func integer(_ value: Int) -> Node {
        Node(String(value), Tag(.int))
    }

    static func strings(_ values: [String]) -> Node {
        Node(values.map(Self.string), Tag(.seq), .flow)
    }

    /// A mapping in the given order; absent (nil) members are left out.
    static func mapping(_ pairs: [(String, Node?)]) -> Node {
        Node(pairs.compactMap { key, value in value.map { (Node(key), $0) } })
    }
}
