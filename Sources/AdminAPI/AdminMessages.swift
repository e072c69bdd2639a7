/// An admin request as the listener received it, body complete.
public struct AdminRequest: Sendable {
    public var method: String
    /// The request target: path and, after `?`, the query.
    public var target: String
    /// Header names lowercased.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    public var requestID: String
    /// Set by `AdminService` once the identity providers of the issuers a change names have
    /// been fetched: issuer → the keys fetched (`kid (alg)`). Nil before.
    public var fetchedIssuerKeys: [String: [String]]?

    public init(method: String, target: String, headers: [(name: String, value: String)], body: [UInt8] = [], requestID: String) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.requestID = requestID
    }

    public func header(_ name: String) -> String? {
        self.headers.first { $0.name == name }?.value
    }

    public var path: String { String(self.target.prefix { $0 != "?" }) }

    /// The value of one query parameter (no percent-decoding: names and values here are ids
    /// and attribute names, which need none).
    public func query(_ name: String) -> String? {
        guard let mark = self.target.firstIndex(of: "?") else { return nil }
        for pair in self.target[self.target.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.first == Substring(name) { return parts.count > 1 ? String(parts[1]) : "" }
        }
        return nil
    }
}

/// What the admin listener sends back.
public struct AdminResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: String

    public init(status: Int, headers: [(name: String, value: String)] = [], body: String) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static func json(_ status: Int, _ value: JSONValue, etag: String? = nil) -> AdminResponse {
        var headers = [(name: "content-type", value: "application/json")]
        if let etag { headers.append((name: "etag", value: etag)) }
        return AdminResponse(status: status, headers: headers, body: value.text)
    }
}

/// Every refusal the admin API gives: a fixed slug (the stable `type`), status and title. The
/// body never says whether a node outside the caller's subtree exists.
public struct AdminProblem: Error, Sendable, Hashable {
    public let slug: String
    public let status: Int
    public let title: String

    private init(_ slug: String, _ status: Int, _ title: String) {
        self.slug = slug
        self.status = status
        self.title = title
    }

    public static let tokenMissing = AdminProblem("admin-token-missing", 401, "An admin bearer token is required.")
    public static let tokenRejected = AdminProblem("admin-token-rejected", 401, "The admin token is not valid for administration.")
    public static let nodeNotFound = AdminProblem("node-not-found", 404, "No such node.")
    public static let routeNotFound = AdminProblem("route-not-found", 404, "No admin route matches the request.")
    public static let methodNotAllowed = AdminProblem("method-not-allowed", 405, "The route does not accept this method.")
    public static let actionForbidden = AdminProblem("admin-action-forbidden", 403, "This change is not yours to make on this node.")
    public static let preconditionRequired = AdminProblem("precondition-required", 428, "Send If-Match with the node's ETag.")
    public static let preconditionFailed = AdminProblem("precondition-failed", 412, "It changed since its ETag was read.")
    public static let malformedBody = AdminProblem("malformed-body", 400, "The request body is not a JSON object.")
    public static let bodyTooLarge = AdminProblem("body-too-large", 413, "The request body is larger than allowed.")
    public static let invalidChange = AdminProblem("invalid-change", 422, "The change was rejected; nothing was changed.")
    public static let hasChildren = AdminProblem("node-has-children", 409, "Delete the node's children first.")
    public static let missingAttribute = AdminProblem("attribute-required", 400, "Name the attribute to explain: ?attribute=…")
    public static let unknownAttribute = AdminProblem("unknown-attribute", 400, "The attribute cannot be explained.")
    public static let badDay = AdminProblem("malformed-day", 400, "Give the day as ?day=YYYY-MM-DD (UTC).")
    public static let badMinutes = AdminProblem("malformed-minutes", 400, "Give the window as ?minutes=N, N from 1 to 60.")
    public static let invalidCertificate = AdminProblem("invalid-certificate", 422, "The certificate was rejected; nothing was changed.")
    public static let certificateNotFound = AdminProblem("certificate-not-found", 404, "The node has no uploaded certificate for this domain.")
    public static let certificateUploadsDisabled = AdminProblem(
        "certificate-uploads-disabled", 409, "Certificate uploads are not set up on this gateway (certificateUploads); nothing was changed."
    )
    public static let supportAccessDisabled = AdminProblem(
        "support-access-disabled", 409, "Support access is not set up on this gateway (supportAccess); nothing was changed."
    )
    public static let supportGrantNotFound = AdminProblem("support-grant-not-found", 404, "No such support grant on this customer.")
    public static let supportGrantOwn = AdminProblem("support-grant-own", 403, "The requester of a support grant cannot decide it.")
    public static let supportGrantState = AdminProblem("support-grant-state", 409, "The support grant's state does not allow this.")
    public static let storeUnavailable = AdminProblem("store-unavailable", 503, "The shared store cannot be reached; nothing was changed.")
    public static let storeBusy = AdminProblem("store-busy", 503, "Concurrent changes kept the store busy; nothing was changed. Retry.")

    public var type: String { "urn:erp-gateway:problem:\(self.slug)" }

    func response(requestID: String, errors: [FieldProblem] = [], allow: [String] = []) -> AdminResponse {
        var members: [String: JSONValue] = [
            "type": .string(self.type), "title": .string(self.title), "status": .integer(Int64(self.status)), "requestId": .string(requestID),
        ]
        if !errors.isEmpty { members["errors"] = .array(errors.map(\.json)) }
        var headers = [(name: "content-type", value: "application/problem+json")]
        if !allow.isEmpty { headers.append((name: "allow", value: allow.joined(separator: ", "))) }
        if self.status == 401 { headers.append((name: "www-authenticate", value: "Bearer")) }
        return AdminResponse(status: self.status, headers: headers, body: JSONValue.object(members).text)
    }
}
