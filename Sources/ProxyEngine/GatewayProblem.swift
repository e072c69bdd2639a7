import Hierarchy
import NIOHTTP1

/// Why the gateway answered a request itself instead of relaying the upstream's response.
///
/// A struct around a private enum (the async-http-client habit): callers can compare and switch on
/// the public constants, the description is short and fixed (safe as a log field or metric label),
/// and no associated value — an upstream address, another tenant's name — can leak into a response.
public struct GatewayProblem: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Kind: Hashable, Sendable {
        case malformedRequest
        case requestSmuggling
        case headerReadTimeout
        case bodyTooLarge
        case uriTooLong
        case headerFieldsTooLarge
        case upstreamUnreachable
        case upstreamFailed
        case upstreamConnectTimeout
        case upstreamResponseTimeout
        case upstreamBusy
        case routeNotFound
        case portalNotFound
    }

    /// Where the problem arose: the client's request or the upstream.
    public enum Origin: String, Sendable { case downstream, upstream }

    private let kind: Kind

    public static let malformedRequest = GatewayProblem(kind: .malformedRequest)
    public static let requestSmuggling = GatewayProblem(kind: .requestSmuggling)
    public static let headerReadTimeout = GatewayProblem(kind: .headerReadTimeout)
    public static let bodyTooLarge = GatewayProblem(kind: .bodyTooLarge)
    public static let uriTooLong = GatewayProblem(kind: .uriTooLong)
    public static let headerFieldsTooLarge = GatewayProblem(kind: .headerFieldsTooLarge)
    public static let upstreamUnreachable = GatewayProblem(kind: .upstreamUnreachable)
    public static let upstreamFailed = GatewayProblem(kind: .upstreamFailed)
    public static let upstreamConnectTimeout = GatewayProblem(kind: .upstreamConnectTimeout)
    public static let upstreamResponseTimeout = GatewayProblem(kind: .upstreamResponseTimeout)
    public static let upstreamBusy = GatewayProblem(kind: .upstreamBusy)
    public static let routeNotFound = GatewayProblem(kind: .routeNotFound)
    public static let portalNotFound = GatewayProblem(kind: .portalNotFound)

    public var status: HTTPResponseStatus {
        switch self.kind {
        case .malformedRequest, .requestSmuggling: .badRequest
        case .headerReadTimeout: .requestTimeout
        case .bodyTooLarge: .payloadTooLarge
        case .uriTooLong: .uriTooLong
        case .headerFieldsTooLarge: .requestHeaderFieldsTooLarge
        case .upstreamUnreachable, .upstreamFailed: .badGateway
        case .upstreamConnectTimeout, .upstreamResponseTimeout: .gatewayTimeout
        case .upstreamBusy: .serviceUnavailable
        case .routeNotFound, .portalNotFound: .notFound
        }
    }

    /// The stable, documented identifier clients can switch on (`type` in the problem body).
    public var slug: String {
        switch self.kind {
        case .malformedRequest: "malformed-request"
        case .requestSmuggling: "ambiguous-framing"
        case .headerReadTimeout: "request-header-timeout"
        case .bodyTooLarge: "body-too-large"
        case .uriTooLong: "uri-too-long"
        case .headerFieldsTooLarge: "header-fields-too-large"
        case .upstreamUnreachable: "upstream-unreachable"
        case .upstreamFailed: "upstream-failed"
        case .upstreamConnectTimeout: "upstream-connect-timeout"
        case .upstreamResponseTimeout: "upstream-timeout"
        case .upstreamBusy: "upstream-busy"
        case .routeNotFound: "route-not-found"
        case .portalNotFound: "portal-not-found"
        }
    }

    public var type: String { "urn:erp-gateway:problem:\(self.slug)" }

    public var title: String {
        switch self.kind {
        case .malformedRequest: "The request is not valid HTTP/1.1."
        case .requestSmuggling: "The request's message framing is ambiguous."
        case .headerReadTimeout: "The request head did not arrive in time."
        case .bodyTooLarge: "The request body is larger than allowed."
        case .uriTooLong: "The request target is longer than allowed."
        case .headerFieldsTooLarge: "The request header fields are larger than allowed."
        case .upstreamUnreachable: "The backend service could not be reached."
        case .upstreamFailed: "The backend service failed to answer."
        case .upstreamConnectTimeout: "The backend service did not accept a connection in time."
        case .upstreamResponseTimeout: "The backend service did not answer in time."
        case .upstreamBusy: "The backend service is at its connection limit."
        case .routeNotFound: "No route matches the request."
        case .portalNotFound: "No portal is served on this host."
        }
    }

    public var origin: Origin {
        switch self.kind {
        case .malformedRequest, .requestSmuggling, .headerReadTimeout, .bodyTooLarge, .uriTooLong, .headerFieldsTooLarge,
            .routeNotFound, .portalNotFound:
            .downstream
        case .upstreamUnreachable, .upstreamFailed, .upstreamConnectTimeout, .upstreamResponseTimeout, .upstreamBusy:
            .upstream
        }
    }

    /// Whether the client connection must be closed after the answer: the rest of the byte stream
    /// can no longer be trusted to start at a message boundary.
    public var closesConnection: Bool {
        switch self.kind {
        case .malformedRequest, .requestSmuggling, .headerReadTimeout, .bodyTooLarge, .uriTooLong, .headerFieldsTooLarge:
            true
        case .upstreamUnreachable, .upstreamFailed, .upstreamConnectTimeout, .upstreamResponseTimeout, .upstreamBusy,
            .routeNotFound, .portalNotFound:
            false
        }
    }

    public var description: String { self.slug }
}

/// RFC 9457 `application/problem+json`, rendered without Foundation's encoder: the fields are
/// few and fixed, and this runs on the event loop.
public struct ProblemDocument: Sendable {
    public var problem: GatewayProblem
    public var requestID: String

    public init(_ problem: GatewayProblem, requestID: String) {
        self.problem = problem
        self.requestID = requestID
    }

    public var json: String {
        var out = "{"
        out += "\"type\":" + JSONText.quote(self.problem.type)
        out += ",\"title\":" + JSONText.quote(self.problem.title)
        out += ",\"status\":\(self.problem.status.code)"
        out += ",\"requestId\":" + JSONText.quote(self.requestID)
        out += "}"
        return out
    }
}
