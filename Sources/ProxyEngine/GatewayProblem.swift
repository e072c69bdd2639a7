import JSONText
import NIOHTTP1

/// Why the gateway answered a request itself instead of relaying the upstream's response.
///
/// Every problem is one of the constants below: a fixed slug (the stable `type` clients switch
/// on, safe as a log field or metric label), status, title, origin and whether the connection
/// must close. Nothing from the request — an upstream address, another tenant's name — can end
/// up in one, because nothing but these constants can be built.
public struct GatewayProblem: Error, Hashable, Sendable, CustomStringConvertible {
    /// Where the problem arose: the client's request or the upstream.
    public enum Origin: String, Sendable { case downstream, upstream }

    /// The stable, documented identifier clients can switch on (`type` in the problem body).
    public let slug: String
    public let status: HTTPResponseStatus
    public let title: String
    public let origin: Origin
    /// Whether the client connection must be closed after the answer: the rest of the byte stream
    /// can no longer be trusted to start at a message boundary.
    public let closesConnection: Bool

    private init(_ slug: String, _ status: HTTPResponseStatus, _ title: String, _ origin: Origin, closes: Bool = false) {
        self.slug = slug
        self.status = status
        self.title = title
        self.origin = origin
        self.closesConnection = closes
    }

    public static func == (lhs: GatewayProblem, rhs: GatewayProblem) -> Bool { lhs.slug == rhs.slug }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.slug) }

    public var type: String { "urn:erp-gateway:problem:\(self.slug)" }
    public var description: String { self.slug }

    // MARK: Request framing and limits

    public static let malformedRequest = GatewayProblem("malformed-request", .badRequest, "The request is not valid HTTP/1.1.", .downstream, closes: true)
    public static let requestSmuggling = GatewayProblem("ambiguous-framing", .badRequest, "The request's message framing is ambiguous.", .downstream, closes: true)
    public static let headerReadTimeout = GatewayProblem("request-header-timeout", .requestTimeout, "The request head did not arrive in time.", .downstream, closes: true)
    /// The request body stopped arriving for `timeouts.requestBodyIdle`: the client, not the
    /// upstream, is slow, so no endpoint is blamed.
    public static let requestBodyTimeout = GatewayProblem(
        "request-body-timeout", .requestTimeout, "The request body did not arrive in time.", .downstream, closes: true
    )
    public static let bodyTooLarge = GatewayProblem("body-too-large", .payloadTooLarge, "The request body is larger than allowed.", .downstream, closes: true)
    public static let uriTooLong = GatewayProblem("uri-too-long", .uriTooLong, "The request target is longer than allowed.", .downstream, closes: true)
    public static let headerFieldsTooLarge = GatewayProblem(
        "header-fields-too-large", .requestHeaderFieldsTooLarge, "The request header fields are larger than allowed.", .downstream, closes: true
    )
    /// CONNECT, or a method that is neither a standard one nor named by a route. The connection
    /// closes: after CONNECT the decoder reads no further request.
    public static let methodNotImplemented = GatewayProblem(
        "method-not-implemented", .notImplemented, "The gateway does not forward this method.", .downstream, closes: true
    )
    public static let ambiguousPath = GatewayProblem("ambiguous-path", .badRequest, "The request path cannot be interpreted unambiguously.", .downstream, closes: true)

    // MARK: Routing

    public static let routeNotFound = GatewayProblem("route-not-found", .notFound, "No route matches the request.", .downstream)
    public static let methodNotAllowed = GatewayProblem("method-not-allowed", .methodNotAllowed, "The route does not accept this method.", .downstream)
    public static let portalNotFound = GatewayProblem("portal-not-found", .notFound, "No portal is served on this host.", .downstream)

    // MARK: Authentication and authorization

    public static let tokenMissing = GatewayProblem("token-missing", .unauthorized, "A bearer token is required.", .downstream)
    public static let tokenInQuery = GatewayProblem("token-in-query", .badRequest, "Tokens are accepted only in the Authorization header.", .downstream)
    public static let tokenRevoked = GatewayProblem("token-revoked", .unauthorized, "The bearer token has been revoked.", .downstream)
    public static let tenantNotPermitted = GatewayProblem("tenant-not-permitted", .forbidden, "The token may not act for this tenant.", .downstream)
    public static let tenantSuspended = GatewayProblem("tenant-suspended", .forbidden, "The tenant is suspended.", .downstream)
    public static let featureNotEnabled = GatewayProblem("feature-not-enabled", .forbidden, "The tenant's plan does not include this feature.", .downstream)
    public static let originNotAllowed = GatewayProblem("origin-not-allowed", .forbidden, "Requests from this origin are not allowed.", .downstream)

    /// A token the verifier refused; `reason` is the verifier's fixed rejection slug (`token-expired`, `bad-signature`, …).
    public static func tokenRejected(_ reason: String) -> GatewayProblem {
        GatewayProblem(reason, .unauthorized, "The bearer token is not valid.", .downstream)
    }

    // MARK: Quotas

    /// A level of the tenant's path is over its limit; the RateLimit headers name which.
    public static let quotaExceeded = GatewayProblem("quota-exceeded", .tooManyRequests, "A usage limit has been reached.", .downstream)

    /// Redis cannot be reached and the tier's fail mode is `closed`.
    public static let quotaUnavailable = GatewayProblem("quota-store-unavailable", .serviceUnavailable, "Usage limits cannot be checked right now.", .upstream)

    // MARK: Upstream

    public static let upstreamUnreachable = GatewayProblem("upstream-unreachable", .badGateway, "The backend service could not be reached.", .upstream)
    public static let upstreamFailed = GatewayProblem("upstream-failed", .badGateway, "The backend service failed to answer.", .upstream)
    public static let upstreamConnectTimeout = GatewayProblem(
        "upstream-connect-timeout", .gatewayTimeout, "The backend service did not accept a connection in time.", .upstream
    )
    public static let upstreamResponseTimeout = GatewayProblem("upstream-timeout", .gatewayTimeout, "The backend service did not answer in time.", .upstream)
    /// The customer's cell is at its pending or in-flight bound; `Retry-After` says when to come back.
    public static let cellOverloaded = GatewayProblem("cell-overloaded", .serviceUnavailable, "The backend serving this tenant is at capacity.", .upstream)
    /// Every endpoint the request may use is unhealthy or ejected.
    public static let noHealthyUpstream = GatewayProblem("no-healthy-upstream", .serviceUnavailable, "No backend is available for this tenant right now.", .upstream)
    public static let upstreamBusy = GatewayProblem("upstream-busy", .serviceUnavailable, "The backend service is at its connection limit.", .upstream)
}

/// RFC 9457 `application/problem+json`, rendered without Foundation's encoder: the fields are
/// few and fixed, and this runs on the event loop.
public struct ProblemDocument: Sendable {
    public var problem: GatewayProblem
    public var requestID: String
    /// Extension members (RFC 9457 §3.2), e.g. the one feature a `feature-not-enabled` names.
    public var extensions: [(name: String, value: String)]

    public init(_ problem: GatewayProblem, requestID: String, extensions: [(name: String, value: String)] = []) {
        self.problem = problem
        self.requestID = requestID
        self.extensions = extensions
    }

    public var json: String {
        var out = "{"
        out += "\"type\":" + JSONText.quote(self.problem.type)
        out += ",\"title\":" + JSONText.quote(self.problem.title)
        out += ",\"status\":\(self.problem.status.code)"
        out += ",\"requestId\":" + JSONText.quote(self.requestID)
        for (name, value) in self.extensions {
            out += "," + JSONText.quote(name) + ":" + JSONText.quote(value)
        }
        out += "}"
        return out
    }
}
