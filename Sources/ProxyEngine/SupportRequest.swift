import GatewayConfig
import SupportAccess
import TokenAuth

/// A request made with a support token: who from support acts, under which grant and ticket,
/// within which scope. Only a token of the gateway's own support issuer (`supportAccess.issuer`)
/// makes one: the same claims from any other issuer mean nothing here.
public struct SupportRequest: Sendable, Hashable {
    public let grant: String
    public let ticket: String
    /// The token's `sub`: the engineer.
    public let engineer: String
    public let scope: SupportScope

    public init(grant: String, ticket: String, engineer: String, scope: SupportScope) {
        self.grant = grant
        self.ticket = ticket
        self.engineer = engineer
        self.scope = scope
    }

    /// - Returns: `.none` for a token of another issuer; `.invalid` for a token of the support
    ///   issuer that is not a well-formed support token (no role, no grant, an unknown scope, a
    ///   `jti` that is not the grant — the revocation of the grant would not reach it).
    static func of(_ token: VerifiedToken, settings: GatewaySettings) -> Recognized {
        guard let support = settings.supportAccess, token.issuer == support.issuer else { return .none }
        guard token.role == "support", let claims = token.support, token.jwtID == claims.grant, let scope = SupportScope(claim: claims.scope) else {
            return .invalid
        }
        return .support(SupportRequest(grant: claims.grant, ticket: claims.ticket, engineer: token.subject, scope: scope))
    }

    enum Recognized {
        case none
        case invalid
        case support(SupportRequest)
    }
}
