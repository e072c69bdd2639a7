import GatewayConfig
import Hierarchy
import NIOHTTP1
import SupportAccess
import TokenAuth

/// The phases between route match and forward — authenticate → resolve → authorize — as one
/// function of the request head, the configuration and the loop's token cache. No I/O: every
/// decision here has a test without a socket, and the connection handler only carries it out.
///
/// Refusals never tell a caller whether another tenant exists: an unknown tenant and a tenant
/// outside the issuer's subtree get the same answer; the log line gets the precise reason.
struct TenantAccess {
    let configuration: GatewayConfiguration
    let tenants: TenantSnapshot
    let authentication: AuthenticationConfiguration
    /// Counts how tokens were checked; nil without metrics.
    var metrics: LoopMetrics? = nil
    /// The key sets fetched from identity providers, as this loop last received them.
    var fetchedKeys: FetchedKeySets = .none
    /// Tells the process's key fetcher about an unknown `kid` of a fetched issuer; nil when no
    /// issuer's keys are fetched.
    var unknownKeys: UnknownKeySignal? = nil

    enum Decision {
        /// Forward to the customer's cell with this grant.
        case forward(Grant)
        /// Answer a CORS preflight with these headers (204).
        case preflight(HTTPHeaders)
        /// Refuse. `reason` is for the log only.
        case refuse(Refusal)
    }

    /// What a request that passed every phase may do, and for whom.
    ///
    /// A class, not a struct: as a value it was 992 bytes (its policy, token and cell inline),
    /// copied into the tenant request and again into the admitted request, which it made 1,360
    /// bytes — past glibc's per-thread cache (1,032 bytes), so every admitted request took
    /// malloc's slow path, and with freed small blocks about (a cold token's decode leaves
    /// dozens) consolidated them first: `malloc_consolidate` under `AdmittedRequest`'s
    /// allocation was 1 % of a cold-token profile (`bench/profile.sh cold`).
    final class Grant {
        let policy: EffectivePolicy
        let route: Route
        let token: VerifiedToken
        let cell: GatewaySettings.Cell
        /// The browser origin to allow on the response, when the request came with one.
        let corsOrigin: String?
        /// A support engineer's request under a grant; nil for every other token.
        let support: SupportRequest?
        /// The kind of caller field masking decides for: the token's `role` claim
        /// (`RoleKind(roleClaim:)`, where `role: "support"` is a support session) — and a
        /// support session whenever the token is a support grant's, whatever its claim says.
        let roleKind: RoleKind

        init(
            policy: EffectivePolicy, route: Route, token: VerifiedToken, cell: GatewaySettings.Cell, corsOrigin: String?,
            support: SupportRequest? = nil
        ) {
            self.policy = policy
            self.route = route
            self.token = token
            self.cell = cell
            self.corsOrigin = corsOrigin
            self.support = support
            self.roleKind = support != nil ? .support : RoleKind(roleClaim: token.role)
        }
    }

    static let preflightMaxAgeSeconds = 600

    func decide(
        head: RelayedRequestHead, path: RequestPath, cache: inout VerifiedTokenCache?, revocations: RevocationList, now: Int64
    ) -> Decision {
        let origin = head.fields.first(name: "origin")
        let routes = self.tenants.catalog.routes

        // CORS preflight: no token (browsers never send one on a preflight).
        if head.method == .OPTIONS, let origin, let requested = head.fields.first(name: "access-control-request-method") {
            guard self.tenants.registeredOrigins.contains(origin) else {
                return .refuse(Refusal(problem: .originNotAllowed, reason: "preflight from an origin no node registered"))
            }
            // The branding endpoint is the gateway's own; an app fetches it like a route.
            let branding = path.path == BrandingEndpoint.path && (requested.uppercased() == "GET" || requested.uppercased() == "HEAD")
            guard branding || routes.match(method: requested.uppercased(), path: Substring(path.path)) != nil else {
                return .refuse(Refusal(problem: .routeNotFound, reason: "preflight for a method and path no route serves"))
            }
            var headers = HTTPHeaders()
            headers.add(name: "access-control-allow-origin", value: origin)
            headers.add(name: "access-control-allow-methods", value: requested.uppercased())
            if let asked = head.fields.first(name: "access-control-request-headers") {
                let allowed = asked.split(separator: ",").map { String($0.filter { $0 != " " && $0 != "\t" }).lowercased() }
                    .filter { !$0.isEmpty && $0.utf8.allSatisfy(Self.isTokenCharacter) }
                if !allowed.isEmpty { headers.add(name: "access-control-allow-headers", value: allowed.joined(separator: ", ")) }
            }
            headers.add(name: "access-control-max-age", value: String(Self.preflightMaxAgeSeconds))
            headers.add(name: "vary", value: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
            return .preflight(headers)
        }

        // Route match on the normalized path.
        guard let route = routes.match(method: head.method.rawValue, path: Substring(path.path)) else {
            if let methods = routes.methods(forPath: Substring(path.path)) {
                var headers = HTTPHeaders()
                headers.add(name: "allow", value: methods.sorted().joined(separator: ", "))
                return .refuse(Refusal(problem: .methodNotAllowed, headers: headers, reason: "no route for this method"))
            }
            return .refuse(Refusal(problem: .routeNotFound, reason: "no route matches"))
        }

        let policy: EffectivePolicy
        let verified: VerifiedToken
        switch self.authenticate(head: head, path: path, cache: &cache, revocations: revocations, now: now) {
        case .success(let result): (policy, verified) = result
        case .failure(var refusal):
            refusal.route = route.pathPrefix
            return .refuse(refusal)
        }
        // Recognized in `authenticate`; a malformed support token never gets here.
        var support: SupportRequest?
        if case .support(let request) = SupportRequest.of(verified, settings: self.configuration.settings) { support = request }

        // Authorize: a refusal from here on is the tenant's own.
        func refuse(_ refusal: Refusal) -> Decision {
            var refusal = refusal
            refusal.route = route.pathPrefix
            refusal.tenant = policy.path
            refusal.support = support
            return .refuse(refusal)
        }
        // The origin first: a page on an origin that is not the tenant's learns that and
        // nothing else about the tenant (suspended or not, which features).
        if let refusal = Self.originRefusal(origin, policy: policy) { return refuse(refusal) }
        if policy.status == .suspended {
            return refuse(Refusal(problem: .tenantSuspended, reason: "suspended by \(policy.suspendedBy?.rawValue ?? "?")"))
        }
        if let feature = route.featureIndex, !policy.features.contains(feature) {
            return refuse(Refusal(
                problem: .featureNotEnabled, extensions: [("feature", route.feature ?? "")], reason: "feature \(route.feature ?? "?") not enabled"
            ))
        }
        if let support, !support.scope.allows(method: head.method.rawValue, routePrefix: route.pathPrefix) {
            return refuse(Refusal(problem: .supportScopeExceeded, reason: "support grant \(support.grant) scope \(support.scope.claim)"))
        }
        guard let cellID = policy.cell, let cell = self.configuration.settings.cell(named: cellID) else {
            return refuse(Refusal(problem: .tenantNotPlaced, reason: "placed on cell '\(policy.cell ?? "none")', which the settings do not have"))
        }
        return .forward(Grant(policy: policy, route: route, token: verified, cell: cell, corsOrigin: origin, support: support))
    }

    /// A browser `Origin` the tenant does not allow; nil without one, or for one of its own.
    static func originRefusal(_ origin: String?, policy: EffectivePolicy) -> Refusal? {
        guard let origin, !policy.origins.contains(origin) else { return nil }
        return Refusal(problem: .originNotAllowed, reason: "origin not in the tenant's origins")
    }

    /// Authenticate and resolve: the bearer token, verified (or found in the loop's cache), not
    /// revoked, naming a customer inside its issuer's subtree.
    func authenticate(
        head: RelayedRequestHead, path: RequestPath, cache: inout VerifiedTokenCache?, revocations: RevocationList, now: Int64
    ) -> Result<(EffectivePolicy, VerifiedToken), Refusal> {
        if path.carriesToken {
            return .failure(Refusal(problem: .tokenInQuery, reason: "access_token in the query string"))
        }
        let token: Substring
        switch Self.bearerToken(head.fields) {
        case .none:
            return .failure(Refusal(problem: .tokenMissing, headers: Self.challenge(error: nil), reason: "no bearer token"))
        case .malformed:
            return .failure(Refusal(problem: .tokenRejected(TokenRejection.malformed.slug), headers: Self.challenge(error: "invalid_request"), reason: "malformed Authorization header"))
        case .token(let value):
            token = value
        }
        let verified: VerifiedToken
        if let cached = cache?.lookup(token, now: now) {
            verified = cached
            self.metrics?.tokenChecked(.cacheHit)
        } else {
            switch self.authentication.verifier.verify(token, now: now, fetched: self.fetchedKeys) {
            case .success(let value):
                verified = value
                cache?.insert(token, value, now: now)
                self.metrics?.tokenChecked(.verified)
            case .failure(let rejection):
                self.metrics?.tokenChecked(.rejected(slug: rejection.slug))
                if rejection == .keysUnavailable {
                    return .failure(Refusal(problem: .issuerKeysUnavailable, headers: Self.retryLater, reason: rejection.slug))
                }
                if rejection == .unknownKey, let unknownKeys = self.unknownKeys, let issuer = self.authentication.verifier.fetchedIssuer(of: token) {
                    // Perhaps the provider rotated: the fetcher decides whether that earns a fetch.
                    unknownKeys.signal(issuer: issuer)
                }
                return .failure(Refusal(
                    problem: .tokenRejected(rejection.slug), headers: Self.challenge(error: "invalid_token"), reason: rejection.slug
                ))
            }
        }

        // A support token's grant is its `jti`: revoking the grant revokes it on every node, as
        // fast as any token revocation.
        let support = SupportRequest.of(verified, settings: self.configuration.settings)
        if case .invalid = support {
            return .failure(Refusal(problem: .tenantNotPermitted, reason: "a token of the support issuer without a well-formed grant"))
        }
        // Checked on every request, cached or not: a revocation takes effect at once.
        if revocations.isRevoked(verified) {
            if case .support(let request) = support {
                var refusal = Refusal(problem: .supportGrantInactive, reason: "support grant \(request.grant) revoked")
                refusal.support = request
                if let tenantID = try? NodeID(verified.tenant) { refusal.tenant = self.tenants.customer(tenantID)?.path }
                return .failure(refusal)
            }
            return .failure(Refusal(problem: .tokenRevoked, headers: Self.challenge(error: "invalid_token"), reason: "token revoked"))
        }

        // Resolve: the tenant must exist and lie inside the issuer's subtree.
        guard let tenantID = try? NodeID(verified.tenant), let policy = self.tenants.customer(tenantID) else {
            return .failure(Refusal(problem: .tenantNotPermitted, reason: "tenant claim names no customer"))
        }
        if !self.authentication.platformIssuers.contains(verified.issuer) {
            guard let scope = self.tenants.node(forIssuer: verified.issuer), policy.path.contains(scope.id) else {
                return .failure(Refusal(problem: .tenantNotPermitted, reason: "tenant outside the issuer's subtree"))
            }
        }
        return .success((policy, verified))
    }

    /// Keys come back with the provider; a client may try again shortly.
    static let retryLater: HTTPHeaders = ["retry-after": "30"]

    enum BearerToken: Equatable {
        case none
        case malformed
        case token(Substring)
    }

    /// RFC 6750 §2.1: exactly one `Authorization: Bearer <token>`; the scheme is
    /// case-insensitive, the token is base64url and dots.
    static func bearerToken(_ fields: some FieldEditing) -> BearerToken {
        // Read in place, on every request: splitting and lower-casing the value allocated. Only
        // the token is made a string.
        var fieldsFound = 0
        var found: BearerToken = .none
        fields.forEachField { name, value in
            guard name.count == 13, ForwardedHeaders.matches(bytes: name, "authorization") else { return }
            fieldsFound += 1
            if fieldsFound == 1 { found = Self.bearerToken(value: value) }
        }
        return fieldsFound > 1 ? .malformed : found
    }

    /// `Bearer`, spaces, the token: read over the value's bytes in one pass. Walked as
    /// characters (`drop(while:)`, `firstIndex(of:)` on a `Substring`), finding the scheme cost
    /// more than checking every byte of the token: this function was 1.6 % of a full-pipeline
    /// request's samples, and is 0.7 % (`bench/profile.sh full`).
    private static func bearerToken(value bytes: UnsafeRawBufferPointer) -> BearerToken {
        let space = UInt8(ascii: " ")
        var index = 0
        while index < bytes.count, bytes[index] == space { index += 1 }
        let scheme = index
        while index < bytes.count, bytes[index] != space { index += 1 }
        guard index < bytes.count, index - scheme == 6,
              UnsafeRawBufferPointer(rebasing: bytes[scheme..<index]).elementsEqual("bearer".utf8, by: { ($0 | 0x20) == $1 })
        else { return .none }
        while index < bytes.count, bytes[index] == space { index += 1 }
        guard index < bytes.count else { return .none }
        let token = UnsafeRawBufferPointer(rebasing: bytes[index...])
        // One table load per byte and no branch: the predicate's five range checks per byte
        // were 1.4 % of a full-pipeline request's samples (`bench/profile.sh full`).
        let wellFormed = Self.tokenByteIsInvalid.withUnsafeBufferPointer { invalid in
            var any: UInt8 = 0
            for byte in token { any |= invalid[Int(byte)] }
            return any == 0
        }
        guard wellFormed else { return .malformed }
        return .token(Substring(String(decoding: token, as: UTF8.self)))
    }

    /// 0 for the bytes a compact JWS may hold (the base64url alphabet and `.`), 1 for the rest.
    private static let tokenByteIsInvalid: [UInt8] = (0...255).map { byte in
        Self.isBase64URL(UInt8(byte)) || byte == Int(UInt8(ascii: ".")) ? 0 : 1
    }

    static func challenge(error: String?) -> HTTPHeaders {
        var headers = HTTPHeaders()
        var value = "Bearer realm=\"erp-gateway\""
        if let error { value += ", error=\"\(error)\"" }
        headers.add(name: "www-authenticate", value: value)
        return headers
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }

    /// RFC 9110 token characters (header field names).
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        Self.isBase64URL(byte) || "!#$%&'*+.^`|~".utf8.contains(byte)
    }
}
