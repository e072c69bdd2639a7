import Hierarchy

/// The admin API's routes: every method and path the admin listener serves, and nothing else.
/// `docs/admin-api.openapi.yaml` lists exactly `AdminRoute.table` (a test compares them).
public enum AdminRoute: Sendable, Hashable {
    /// The roots the caller administers: every OEM for the platform, else its own node.
    case listRoots
    /// A new OEM (platform admins).
    case createOEM
    /// Who the token says the caller is: subject, role and node (the console's sign-in).
    case me
    case getNode(String)
    case updateNode(String)
    case deleteNode(String)
    case listChildren(String)
    case createChild(String)
    case effectivePolicy(String)
    case explain(String)
    case audit(String)
    case exportTree(String)
    case applySubtree(String)
    case revokeTokens(String)
    case usage(String)
    /// Per-minute figures of a partner or OEM over every node, and its customers' usage.
    case health(String)
    case getIssuers(String)
    case replaceIssuers(String)
    /// The node's uploaded portal certificates (never their keys).
    case listCertificates(String)
    case getCertificate(String, domain: String)
    /// Upload (or replace) the certificate and key of one of the node's portal domains.
    case putCertificate(String, domain: String)
    case deleteCertificate(String, domain: String)
    /// A customer's support grants: the customer's side sees them all, an engineer its own.
    case listSupportGrants(String)
    /// A support engineer asks for access to the customer.
    case requestSupportGrant(String)
    /// Approve, refuse, revoke a grant, or fetch its token.
    case supportGrant(String, grant: String, action: SupportGrantAction)
    /// What support engineers did for the customer, request by request.
    case supportSessions(String)

    public enum SupportGrantAction: String, Sendable, Hashable, CaseIterable {
        case approve, refuse, revoke, token
    }

    /// One route as the OpenAPI document names it: `{id}` stands for a node id.
    public struct Entry: Sendable, Hashable {
        public let method: String
        public let path: String
    }

    public static let prefix = "/admin/v1/nodes/"

    public static let table: [Entry] = [
        Entry(method: "GET", path: "/admin/v1/me"),
        Entry(method: "GET", path: "/admin/v1/nodes"),
        Entry(method: "POST", path: "/admin/v1/nodes"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}"),
        Entry(method: "PATCH", path: "/admin/v1/nodes/{id}"),
        Entry(method: "DELETE", path: "/admin/v1/nodes/{id}"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}/children"),
        Entry(method: "POST", path: "/admin/v1/nodes/{id}/children"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}/effective"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}/explain"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}/audit"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}/usage"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}/health"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}/subtree"),
        Entry(method: "PUT", path: "/admin/v1/nodes/{id}/subtree"),
        Entry(method: "POST", path: "/admin/v1/nodes/{id}/revocations"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}/issuers"),
        Entry(method: "PUT", path: "/admin/v1/nodes/{id}/issuers"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}/certificates"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}/certificates/{domain}"),
        Entry(method: "PUT", path: "/admin/v1/nodes/{id}/certificates/{domain}"),
        Entry(method: "DELETE", path: "/admin/v1/nodes/{id}/certificates/{domain}"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}/support-grants"),
        Entry(method: "POST", path: "/admin/v1/nodes/{id}/support-grants"),
        Entry(method: "POST", path: "/admin/v1/nodes/{id}/support-grants/{grant}/approve"),
        Entry(method: "POST", path: "/admin/v1/nodes/{id}/support-grants/{grant}/refuse"),
        Entry(method: "POST", path: "/admin/v1/nodes/{id}/support-grants/{grant}/revoke"),
        Entry(method: "POST", path: "/admin/v1/nodes/{id}/support-grants/{grant}/token"),
        Entry(method: "GET", path: "/admin/v1/nodes/{id}/support-sessions"),
    ]

    /// Why a request matches no route.
    public enum Mismatch: Error, Sendable, Hashable {
        case notFound
        /// The path is a route, the method is not one of its methods.
        case methodNotAllowed(allowed: [String])
    }

    /// Matches the path (query removed) and method. The node id is returned as written: it is
    /// looked up, not trusted, so an id that is not valid is simply a node that does not exist.
    /// A domain is returned lowercased (DNS names are case-insensitive; portal domains are
    /// lowercase) and, like the id, judged later against the node's own portal domains.
    public static func match(method: String, path: String) -> Result<AdminRoute, Mismatch> {
        if path == "/admin/v1/me" {
            return method == "GET" ? .success(.me) : .failure(.methodNotAllowed(allowed: ["GET"]))
        }
        if path == "/admin/v1/nodes" {
            let routes: [String: AdminRoute] = ["GET": .listRoots, "POST": .createOEM]
            guard let route = routes[method] else { return .failure(.methodNotAllowed(allowed: routes.keys.sorted())) }
            return .success(route)
        }
        guard path.hasPrefix(Self.prefix) else { return .failure(.notFound) }
        let segments = path.dropFirst(Self.prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard let first = segments.first, !first.isEmpty, segments.count <= 4 else { return .failure(.notFound) }
        let id = String(first)
        let routes: [String: AdminRoute]
        if segments.count == 4 {
            // Only a support grant's actions are addressed this deep.
            guard segments[1] == "support-grants", !segments[2].isEmpty, let action = SupportGrantAction(rawValue: String(segments[3])) else {
                return .failure(.notFound)
            }
            guard method == "POST" else { return .failure(.methodNotAllowed(allowed: ["POST"])) }
            return .success(.supportGrant(id, grant: String(segments[2]), action: action))
        }
        if segments.count == 3 {
            // Only a certificate is addressed below a node's collection.
            guard segments[1] == "certificates", !segments[2].isEmpty else { return .failure(.notFound) }
            let domain = segments[2].lowercased()
            routes = [
                "GET": .getCertificate(id, domain: domain), "PUT": .putCertificate(id, domain: domain), "DELETE": .deleteCertificate(id, domain: domain),
            ]
            guard let route = routes[method] else { return .failure(.methodNotAllowed(allowed: routes.keys.sorted())) }
            return .success(route)
        }
        switch segments.count == 2 ? String(segments[1]) : nil {
        case nil: routes = ["GET": .getNode(id), "PATCH": .updateNode(id), "DELETE": .deleteNode(id)]
        case "children": routes = ["GET": .listChildren(id), "POST": .createChild(id)]
        case "effective": routes = ["GET": .effectivePolicy(id)]
        case "explain": routes = ["GET": .explain(id)]
        case "audit": routes = ["GET": .audit(id)]
        case "usage": routes = ["GET": .usage(id)]
        case "health": routes = ["GET": .health(id)]
        case "subtree": routes = ["GET": .exportTree(id), "PUT": .applySubtree(id)]
        case "revocations": routes = ["POST": .revokeTokens(id)]
        case "issuers": routes = ["GET": .getIssuers(id), "PUT": .replaceIssuers(id)]
        case "certificates": routes = ["GET": .listCertificates(id)]
        case "support-grants": routes = ["GET": .listSupportGrants(id), "POST": .requestSupportGrant(id)]
        case "support-sessions": routes = ["GET": .supportSessions(id)]
        default: return .failure(.notFound)
        }
        guard let route = routes[method] else { return .failure(.methodNotAllowed(allowed: routes.keys.sorted())) }
        return .success(route)
    }

    /// The node the route acts on; nil for the routes about the roots.
    public var nodeID: String? {
        switch self {
        case .listRoots, .createOEM, .me:
            return nil
        case .getNode(let id), .updateNode(let id), .deleteNode(let id), .listChildren(let id), .createChild(let id), .effectivePolicy(let id),
            .explain(let id), .audit(let id), .exportTree(let id), .applySubtree(let id), .revokeTokens(let id), .usage(let id), .health(let id), .getIssuers(let id), .replaceIssuers(let id),
            .listCertificates(let id), .getCertificate(let id, _), .putCertificate(let id, _), .deleteCertificate(let id, _),
            .listSupportGrants(let id), .requestSupportGrant(let id), .supportGrant(let id, _, _), .supportSessions(let id):
            return id
        }
    }
}
