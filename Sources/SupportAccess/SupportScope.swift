/// What a support grant lets its engineer do for the customer: read only (`GET`, `HEAD`,
/// `OPTIONS` on any route the customer has), or a named set of catalog routes (any method those
/// routes accept). Carried in the support token's `scope` claim as `read-only` or
/// `routes:/v1/a,/v1/b`, and forwarded upstream in the same form.
public enum SupportScope: Sendable, Hashable {
    case readOnly
    /// Catalog route path prefixes, sorted, without duplicates.
    case routes([String])

    public static let readOnlyClaim = "read-only"
    static let routesPrefix = "routes:"

    /// The methods a read-only grant allows: those that change nothing.
    public static let readMethods: Set<String> = ["GET", "HEAD", "OPTIONS"]

    /// From the `scope` claim; nil for anything else (a token the gateway did not mint).
    public init?(claim: String) {
        if claim == Self.readOnlyClaim {
            self = .readOnly
            return
        }
        guard claim.hasPrefix(Self.routesPrefix) else { return nil }
        let routes = claim.dropFirst(Self.routesPrefix.count).split(separator: ",").map(String.init)
        guard !routes.isEmpty else { return nil }
        self = .routes(Array(Set(routes)).sorted())
    }

    public var claim: String {
        switch self {
        case .readOnly: Self.readOnlyClaim
        case .routes(let routes): Self.routesPrefix + routes.joined(separator: ",")
        }
    }

    /// Whether a request with `method` on the catalog route `routePrefix` is inside the scope.
    public func allows(method: String, routePrefix: String) -> Bool {
        switch self {
        case .readOnly: Self.readMethods.contains(method)
        case .routes(let routes): routes.contains(routePrefix)
        }
    }
}
