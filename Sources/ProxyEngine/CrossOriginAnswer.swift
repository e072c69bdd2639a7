import GatewayConfig
import Hierarchy
import NIOHTTP1

/// What a browser page on another origin may read of one answer: the origin it is allowed for
/// and the fields exposed to it. Made only for a request whose `Origin` is allowed, so a
/// request without one (every non-browser client) pays nothing; the field values themselves
/// were joined when the configuration was compiled.
///
/// Which origin counts as allowed depends on how far the request got. Until the tenant is known
/// (no token, a token refused, no route) it is any origin some node registered — the preflight's
/// rule, since the browser asked the same question there. Once the tenant is known only its own
/// origins count: `TenantAccess` refuses any other with `origin-not-allowed` before anything
/// about the tenant is looked at, and that refusal, which tells nothing about the tenant, is
/// readable under the first rule. Every answer after it is to one of the tenant's own origins.
/// The answer's body is the same whoever reads it; CORS only decides whether the page may.
struct CrossOriginAnswer {
    /// The request's `Origin`, echoed (never `*`).
    let origin: String
    /// `cors.exposeHeadersValue`: the gateway's own fields and those the settings add.
    let exposedHeaders: String
    /// The catalog route's own fields, when the route is known and lists some.
    let routeExposedHeaders: String?

    /// For `origin` under the rule before the tenant is known: nil unless some node registered it.
    /// The route is not known yet either: only the fields every answer exposes.
    init?(registered origin: String?, configuration: GatewayConfiguration) {
        guard let origin, let tenants = configuration.tenants, tenants.registeredOrigins.contains(origin) else { return nil }
        self.init(origin: origin, settings: configuration.settings, route: nil)
    }

    /// For an origin already found allowed (the tenant's own, checked by `TenantAccess`).
    init(origin: String, settings: GatewaySettings, route: Route?) {
        self.origin = origin
        self.exposedHeaders = settings.cors.exposeHeadersValue
        self.routeExposedHeaders = route?.exposedHeaders
    }

    /// Adds the fields to an answer's head. The route's list goes into a second
    /// `Access-Control-Expose-Headers` field rather than a third string joined per response:
    /// list-valued fields may be repeated (RFC 9110 §5.3), and browsers read them as one list.
    func apply<Fields: FieldEditing>(to headers: inout Fields) {
        headers.replaceOrAdd(name: "access-control-allow-origin", value: self.origin)
        headers.add(name: "access-control-expose-headers", value: self.exposedHeaders)
        if let route = self.routeExposedHeaders { headers.add(name: "access-control-expose-headers", value: route) }
        headers.add(name: "vary", value: "Origin")
    }

    /// Removes the CORS fields a backend sent: the gateway alone decides which origin may read
    /// its routes, so a backend's `Access-Control-Allow-Origin: *` cannot widen that. Only for
    /// requests that came with an `Origin` (browsers): nothing else reads these fields.
    static func removeUpstreamFields<Fields: FieldEditing>(from headers: inout Fields) {
        headers.removeAll(whereName: { $0.count > 15 && ForwardedHeaders.matches(bytes: $0, "access-control-", prefixOnly: true) })
    }
}
