import JSONText
import NIOHTTP1

/// The step of the request pipeline that raised a problem: every problem `type` a client quotes
/// in a bug report leads to one phase, and the log line of every refused request names it.
public enum Phase: String, Sendable, CaseIterable {
    /// Reading the request: framing, limits, timeouts, method, path.
    case decode
    /// Matching the route catalog (and the portal branding endpoint).
    case route
    /// The bearer token: present, well-formed, verified, not revoked.
    case authenticate
    /// The customer the token speaks for: inside the issuer's subtree, placed on a cell.
    case resolve
    /// The customer's status, features and browser origin.
    case authorize
    /// Quotas at every level of the customer's path.
    case admit
    /// The cell and endpoint that serve the request.
    case selectCell = "select-cell"
    /// The upstream attempt: connection, request, response head.
    case forward
    /// The response to the client: field masking of the upstream's response.
    case respond
}

/// Why the gateway answered a request itself instead of relaying the upstream's response.
///
/// Every problem is one of the constants below, each named like its slug and raised by one
/// phase for one reason: a fixed slug (the stable `type` clients switch on, safe as a log field
/// or metric label), status, title, phase, origin and whether the connection must close.
/// Nothing from the request — an upstream address, another tenant's name — can end up in one,
/// because nothing but these constants can be built.
public struct GatewayProblem: Error, Hashable, Sendable, CustomStringConvertible {
    /// Where the problem arose: the client's request or the upstream.
    public enum Origin: String, Sendable { case downstream, upstream }

    /// The stable, documented identifier clients can switch on (`type` in the problem body).
    public let slug: String
    public let status: HTTPResponseStatus
    public let title: String
    /// The pipeline phase that raises it.
    public let phase: Phase
    public let origin: Origin
    /// Whether the client connection must be closed after the answer: the rest of the byte stream
    /// can no longer be trusted to start at a message boundary.
    public let closesConnection: Bool

    private init(_ slug: String, _ status: HTTPResponseStatus, _ title: String, _ phase: Phase, _ origin: Origin, closes: Bool = false) {
        self.slug = slug
        self.status = status
        self.title = title
        self.phase = phase
        self.origin = origin
        self.closesConnection = closes
    }

    public static func == (lhs: GatewayProblem, rhs: GatewayProblem) -> Bool { lhs.slug == rhs.slug }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.slug) }

    public var type: String { "urn:erp-gateway:problem:\(self.slug)" }
    public var description: String { self.slug }

    // MARK: Decode: framing, limits, method, path

    public static let malformedRequest = GatewayProblem("malformed-request", .badRequest, "The request is not valid HTTP/1.1.", .decode, .downstream, closes: true)
    public static let ambiguousFraming = GatewayProblem("ambiguous-framing", .badRequest, "The request's message framing is ambiguous.", .decode, .downstream, closes: true)
    public static let requestHeaderTimeout = GatewayProblem(
        "request-header-timeout", .requestTimeout, "The request head did not arrive in time.", .decode, .downstream, closes: true
    )
    /// The request body stopped arriving for `timeouts.requestBodyIdle`: the client, not the
    /// upstream, is slow, so no endpoint is blamed.
    public static let requestBodyTimeout = GatewayProblem(
        "request-body-timeout", .requestTimeout, "The request body did not arrive in time.", .decode, .downstream, closes: true
    )
    public static let bodyTooLarge = GatewayProblem("body-too-large", .payloadTooLarge, "The request body is larger than allowed.", .decode, .downstream, closes: true)
    public static let uriTooLong = GatewayProblem("uri-too-long", .uriTooLong, "The request target is longer than allowed.", .decode, .downstream, closes: true)
    public static let headerFieldsTooLarge = GatewayProblem(
        "header-fields-too-large", .requestHeaderFieldsTooLarge, "The request header fields are larger than allowed.", .decode, .downstream, closes: true
    )
    /// CONNECT, or a method that is neither a standard one nor named by a route. The connection
    /// closes: after CONNECT the decoder reads no further request.
    public static let methodNotImplemented = GatewayProblem(
        "method-not-implemented", .notImplemented, "The gateway does not forward this method.", .decode, .downstream, closes: true
    )
    public static let ambiguousPath = GatewayProblem(
        "ambiguous-path", .badRequest, "The request path cannot be interpreted unambiguously.", .decode, .downstream, closes: true
    )

    // MARK: Route

    public static let routeNotFound = GatewayProblem("route-not-found", .notFound, "No route matches the request.", .route, .downstream)
    public static let methodNotAllowed = GatewayProblem("method-not-allowed", .methodNotAllowed, "The route does not accept this method.", .route, .downstream)
    public static let portalNotFound = GatewayProblem("portal-not-found", .notFound, "No portal is served on this host.", .route, .downstream)
    /// A WebSocket handshake on a route the catalog does not mark `websocket: true`. Answered,
    /// never forwarded as a plain GET. The connection closes: the decoder reads nothing after
    /// a request asking to switch protocols.
    public static let websocketNotAllowed = GatewayProblem(
        "websocket-not-allowed", .badRequest, "This route does not accept WebSocket connections.", .route, .downstream, closes: true
    )

    // MARK: Authenticate

    public static let tokenMissing = GatewayProblem("token-missing", .unauthorized, "A bearer token is required.", .authenticate, .downstream)
    public static let tokenInQuery = GatewayProblem("token-in-query", .badRequest, "Tokens are accepted only in the Authorization header.", .authenticate, .downstream)
    public static let tokenRevoked = GatewayProblem("token-revoked", .unauthorized, "The bearer token has been revoked.", .authenticate, .downstream)

    /// The token's issuer takes its keys from its identity provider, and no key set fetched
    /// within `authentication.keyFetch.staleKeysFor` is at hand (the provider unreachable for
    /// too long, or never reached since the start).
    public static let issuerKeysUnavailable = GatewayProblem(
        "issuer-keys-unavailable", .serviceUnavailable, "The token's issuer keys cannot be checked right now.", .authenticate, .upstream
    )

    /// A token the verifier refused; `reason` is the verifier's fixed rejection slug (`token-expired`, `bad-signature`, …).
    public static func tokenRejected(_ reason: String) -> GatewayProblem {
        GatewayProblem(reason, .unauthorized, "The bearer token is not valid.", .authenticate, .downstream)
    }

    /// A support token whose grant was revoked (the grant's id is revoked as the token's `jti`):
    /// the engineer's access ended; a new grant is needed, not a new token.
    public static let supportGrantInactive = GatewayProblem(
        "support-grant-inactive", .forbidden, "The support grant this token was issued for is no longer active.", .authenticate, .downstream
    )

    // MARK: Resolve

    public static let tenantNotPermitted = GatewayProblem("tenant-not-permitted", .forbidden, "The token may not act for this tenant.", .resolve, .downstream)
    /// The customer's placement names no cell the settings in force have (a cell removed from the
    /// settings while the tree still places customers on it).
    public static let tenantNotPlaced = GatewayProblem("tenant-not-placed", .serviceUnavailable, "No backend is assigned to this tenant.", .resolve, .upstream)

    // MARK: Authorize

    public static let tenantSuspended = GatewayProblem("tenant-suspended", .forbidden, "The tenant is suspended.", .authorize, .downstream)
    public static let featureNotEnabled = GatewayProblem("feature-not-enabled", .forbidden, "The tenant's plan does not include this feature.", .authorize, .downstream)
    public static let originNotAllowed = GatewayProblem("origin-not-allowed", .forbidden, "Requests from this origin are not allowed.", .authorize, .downstream)
    /// A support token on a route or method its grant's scope does not cover (a write under a
    /// `read-only` grant, a route not named by the grant).
    public static let supportScopeExceeded = GatewayProblem(
        "support-scope-exceeded", .forbidden, "The support grant does not cover this request.", .authorize, .downstream
    )

    // MARK: Admit

    /// A level of the tenant's path is over its limit; the RateLimit headers name which.
    public static let quotaExceeded = GatewayProblem("quota-exceeded", .tooManyRequests, "A usage limit has been reached.", .admit, .downstream)
    /// Redis cannot be reached and the tier's fail mode is `closed`.
    public static let quotaStoreUnavailable = GatewayProblem(
        "quota-store-unavailable", .serviceUnavailable, "Usage limits cannot be checked right now.", .admit, .upstream
    )

    // MARK: Select cell

    /// The cell this request was placed on is not configured on this event loop any more: a
    /// reload removed it between the request's start and its first attempt.
    public static let cellUnavailable = GatewayProblem("cell-unavailable", .serviceUnavailable, "The backend serving this tenant is not available.", .selectCell, .upstream)
    /// The customer's cell is at its pending or in-flight bound; `Retry-After` says when to come back.
    public static let cellOverloaded = GatewayProblem("cell-overloaded", .serviceUnavailable, "The backend serving this tenant is at capacity.", .selectCell, .upstream)
    /// Every endpoint the request may use is unhealthy or ejected.
    public static let noHealthyUpstream = GatewayProblem(
        "no-healthy-upstream", .serviceUnavailable, "No backend is available for this tenant right now.", .selectCell, .upstream
    )

    // MARK: Forward

    /// The endpoint refused or reset the connection attempt.
    public static let upstreamUnreachable = GatewayProblem("upstream-unreachable", .badGateway, "The backend service could not be reached.", .forward, .upstream)
    public static let upstreamFailed = GatewayProblem("upstream-failed", .badGateway, "The backend service failed to answer.", .forward, .upstream)
    public static let upstreamConnectTimeout = GatewayProblem(
        "upstream-connect-timeout", .gatewayTimeout, "The backend service did not accept a connection in time.", .forward, .upstream
    )
    public static let upstreamTimeout = GatewayProblem("upstream-timeout", .gatewayTimeout, "The backend service did not answer in time.", .forward, .upstream)
    public static let upstreamBusy = GatewayProblem("upstream-busy", .serviceUnavailable, "The backend service is at its connection limit.", .forward, .upstream)
    /// The TLS handshake with an `https` cell's endpoint failed (untrusted or misnamed
    /// certificate, client certificate refused or missing, no protocol in common). The answer
    /// says no more than that; the operator's log has the reason.
    public static let upstreamTlsFailed = GatewayProblem(
        "upstream-tls-failed", .badGateway, "The backend service could not be reached securely.", .forward, .upstream
    )

    // MARK: Respond

    /// A response that must be masked for the caller is larger than `masking.maxBodyBytes`: it
    /// is refused, never passed on unmasked.
    public static let maskedResponseTooLarge = GatewayProblem(
        "masked-response-too-large", .badGateway, "The backend's response is too large to be masked.", .respond, .upstream
    )
    /// A response that must be masked for the caller is not JSON (or not valid JSON, or
    /// content-encoded): it is refused, never passed on unmasked.
    public static let unmaskableResponse = GatewayProblem(
        "unmaskable-response", .badGateway, "The backend's response cannot be masked.", .respond, .upstream
    )

    /// Every problem the gateway can answer with but the verifier's token rejections
    /// (`tokenRejected`, phase `authenticate`, one per `TokenRejection` but `keysUnavailable`,
    /// which is `issuerKeysUnavailable`).
    public static let all: [GatewayProblem] = [
        .malformedRequest, .ambiguousFraming, .requestHeaderTimeout, .requestBodyTimeout, .bodyTooLarge, .uriTooLong,
        .headerFieldsTooLarge, .methodNotImplemented, .ambiguousPath,
        .routeNotFound, .methodNotAllowed, .portalNotFound, .websocketNotAllowed,
        .tokenMissing, .tokenInQuery, .tokenRevoked, .issuerKeysUnavailable, .supportGrantInactive,
        .tenantNotPermitted, .tenantNotPlaced,
        .tenantSuspended, .featureNotEnabled, .originNotAllowed, .supportScopeExceeded,
        .quotaExceeded, .quotaStoreUnavailable,
        .cellUnavailable, .cellOverloaded, .noHealthyUpstream,
        .upstreamUnreachable, .upstreamFailed, .upstreamConnectTimeout, .upstreamTimeout, .upstreamBusy, .upstreamTlsFailed,
        .maskedResponseTooLarge, .unmaskableResponse,
    ]
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
