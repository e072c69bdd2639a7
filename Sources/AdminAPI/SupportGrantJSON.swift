import Hierarchy
import SupportAccess

/// A support grant as the store keeps it and the admin API shows it: one JSON object.
enum SupportGrantJSON {
    static func encode(_ grant: SupportGrant, now: Int64) -> JSONValue {
        func decision(_ decision: SupportGrant.Decision?) -> JSONValue {
            guard let decision else { return .null }
            return .object(["actor": .string(decision.actor), "role": .string(decision.role), "time": .integer(decision.time)])
        }
        return .object([
            "id": .string(grant.id),
            "customer": .string(grant.customer.leaf.rawValue),
            "path": .string(grant.customer.description),
            "requester": .string(grant.requester.actor),
            "requesterOem": grant.requester.oem.map(JSONValue.string) ?? .null,
            "reason": .string(grant.reason),
            "ticket": .string(grant.ticket),
            "duration": .integer(grant.duration),
            "scope": Self.encode(grant.scope),
            "breakGlass": .bool(grant.breakGlass),
            "requestedAt": .integer(grant.requestedAt),
            "answerBy": .integer(grant.answerBy),
            "state": .string(grant.state.rawValue),
            "status": .string(grant.status(at: now).rawValue),
            "decision": decision(grant.decision),
            "expiresAt": grant.expiresAt.map(JSONValue.integer) ?? .null,
            "revocation": decision(grant.revocation),
        ])
    }

    /// The stored form: everything but `status`, which depends on when it is read.
    static func stored(_ grant: SupportGrant) -> String {
        guard case .object(var members) = self.encode(grant, now: 0) else { return "" }
        members["status"] = nil
        return JSONValue.object(members).text
    }

    static func encode(_ scope: SupportScope) -> JSONValue {
        switch scope {
        case .readOnly: .string(SupportScope.readOnlyClaim)
        case .routes(let routes): .object(["routes": .array(routes.map(JSONValue.string))])
        }
    }

    static func decode(_ text: String) -> SupportGrant? {
        guard let json = JSONValue.parse(Array(text.utf8)), let id = json["id"]?.string,
            let path = json["path"]?.string.flatMap({ try? NodePath(parsing: $0) }), path.kind == .customer,
            let requester = json["requester"]?.string, let reason = json["reason"]?.string, let ticket = json["ticket"]?.string,
            case .integer(let duration)? = json["duration"], duration > 0, let scope = json["scope"].flatMap(Self.scope),
            case .bool(let breakGlass)? = json["breakGlass"], case .integer(let requestedAt)? = json["requestedAt"],
            let state = json["state"]?.string.flatMap(SupportGrant.State.init(rawValue:))
        else { return nil }
        func decision(_ value: JSONValue?) -> SupportGrant.Decision? {
            guard let value, let actor = value["actor"]?.string, let role = value["role"]?.string, case .integer(let time)? = value["time"] else { return nil }
            return SupportGrant.Decision(actor: actor, role: role, time: time)
        }
        var expiresAt: Int64?
        if case .integer(let value)? = json["expiresAt"] { expiresAt = value }
        // Stored before requests expired: the default wait.
        var answerBy: Int64?
        if case .integer(let value)? = json["answerBy"] { answerBy = value }
        return SupportGrant(
            id: id, customer: path, requester: .init(actor: requester, oem: json["requesterOem"]?.string), reason: reason, ticket: ticket,
            duration: duration, scope: scope, breakGlass: breakGlass, requestedAt: requestedAt, state: state, decision: decision(json["decision"]),
            expiresAt: expiresAt, revocation: decision(json["revocation"]), answerBy: answerBy
        )
    }

    /// `"read-only"` or `{"routes": ["/v1/ledger", …]}`.
    static func scope(_ json: JSONValue) -> SupportScope? {
        if json.string == SupportScope.readOnlyClaim { return .readOnly }
        guard let routes = json["routes"]?.array?.compactMap(\.string), !routes.isEmpty else { return nil }
        return .routes(Array(Set(routes)).sorted())
    }
}
