/// The compiled platform catalog: features by index, packages as feature sets, and the route
/// table. Immutable; part of a `TenantSnapshot`.
public struct Catalog: Sendable {
    /// Feature names in declaration order; a feature's index is its bit in a `FeatureSet`.
    public let features: [String]
    let featureIndex: [String: Int]
    /// Platform packages by name.
    public let packages: [String: FeatureSet]
    public let routes: RouteTable
    /// What each feature requires (`requires`), closed transitively.
    public let requirements: FeatureRequirements
    /// The catalog routes' own masking rules: where every OEM's masks start.
    let masks: ResponseMasks

    init(
        features: [String], packages: [String: FeatureSet], routes: RouteTable, requirements: FeatureRequirements = .none, masks: ResponseMasks = .none
    ) {
        self.features = features
        self.requirements = requirements
        var index: [String: Int] = [:]
        for (position, name) in features.enumerated() { index[name] = position }
        self.featureIndex = index
        self.packages = packages
        self.routes = routes
        self.masks = masks
    }

    public func index(of feature: String) -> Int? {
        self.featureIndex[feature]
    }

    public var all: FeatureSet { FeatureSet(indices: self.features.indices) }

    public func set(_ names: some Sequence<String>) -> FeatureSet {
        FeatureSet(indices: names.compactMap { self.featureIndex[$0] })
    }

    /// Feature names of a set, in catalog order.
    public func names(_ set: FeatureSet) -> [String] {
        set.indices.map { self.features[$0] }
    }

    /// The names of a set in catalog order, comma-separated, in one string: the form the tenant
    /// context carries on every forwarded request.
    public func joinedNames(_ set: FeatureSet) -> String {
        var text = ""
        for index in set.indices {
            if !text.isEmpty { text += "," }
            text += self.features[index]
        }
        return text
    }
}

/// A route of the catalog after validation.
public struct Route: Sendable, Hashable {
    /// Upper-case method, or nil for any method.
    public let method: String?
    public let pathPrefix: String
    /// The feature a tenant needs for this route (its name and catalog index), if any.
    public let feature: String?
    public let featureIndex: Int?
    /// Quota units a request on this route costs.
    public let cost: Int
    /// The route's own `Access-Control-Expose-Headers` value (its `exposeHeaders`, joined when
    /// the catalog is compiled); nil when it lists none.
    public var exposedHeaders: String? = nil
    /// WebSocket handshakes are accepted here (and relayed once the backend switches
    /// protocols); on every other route a handshake is refused, never downgraded.
    public var websocket: Bool = false
    /// The route's position among the catalog's routes: what compiled per-route values (field
    /// masks) are keyed by.
    public var index: Int = 0
}

/// Longest-prefix route matching. A prefix matches a path when the path equals it or continues
/// it at a segment boundary (`/v1/ledger` matches `/v1/ledger/7` but not `/v1/ledgers`); a route
/// with a method beats one without for the same prefix.
public struct RouteTable: Sendable {
    /// Sorted by prefix length, longest first, so the first match is the most specific.
    private let routes: [Route]
    /// The methods routes name explicitly (a route without a method names none).
    public let namedMethods: Set<String>

    init(_ routes: [Route]) {
        self.namedMethods = Set(routes.compactMap(\.method))
        self.routes = routes.sorted { left, right in
            if left.pathPrefix.utf8.count != right.pathPrefix.utf8.count {
                return left.pathPrefix.utf8.count > right.pathPrefix.utf8.count
            }
            return left.method != nil && right.method == nil
        }
    }

    public var isEmpty: Bool { self.routes.isEmpty }
    public var all: [Route] { self.routes }

    /// The route for a request, or nil when no route matches (404).
    public func match(method: String, path: Substring) -> Route? {
        for route in self.routes {
            if let routeMethod = route.method, routeMethod != method { continue }
            if Self.path(path, hasPrefix: route.pathPrefix) { return route }
        }
        return nil
    }

    /// The methods routes serve for `path`, when some route matches it with another method
    /// (for `405` and its `Allow` header); nil when no route matches the path at all.
    public func methods(forPath path: Substring) -> Set<String>? {
        var methods: Set<String> = []
        var matched = false
        for route in self.routes where Self.path(path, hasPrefix: route.pathPrefix) {
            matched = true
            if let method = route.method { methods.insert(method) }
        }
        return matched ? methods : nil
    }

    static func path(_ path: Substring, hasPrefix prefix: String) -> Bool {
        guard path.utf8.starts(with: prefix.utf8) else { return false }
        if prefix.utf8.last == UInt8(ascii: "/") { return true }
        let rest = path.utf8.dropFirst(prefix.utf8.count)
        return rest.isEmpty || rest.first == UInt8(ascii: "/")
    }
}
