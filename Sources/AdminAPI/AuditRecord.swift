import Hierarchy

/// One administrative change, as the audit log keeps it: append-only, one log per OEM, written
/// in the same atomic step as the change itself, never editable through the API.
public struct AuditRecord: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable {
        case update, create, delete
        case revokeTokens = "revoke-tokens"
        /// A subtree replaced by an uploaded document; each change names its node's path.
        case apply
        /// A portal domain's certificate uploaded or replaced, or deleted; the change names the
        /// domain (`certificates.<domain>`) and shows the certificates, never a key.
        case putCertificate = "put-certificate"
        case deleteCertificate = "delete-certificate"
        /// Support grants on a customer: asked for, decided, ended, a token handed out; the
        /// change shows the grant (reason, ticket, scope, break-glass, who decided).
        case supportGrantRequest = "support-grant-request"
        case supportGrantApprove = "support-grant-approve"
        case supportGrantRefuse = "support-grant-refuse"
        case supportGrantRevoke = "support-grant-revoke"
        case supportToken = "support-token"
    }

    /// One top-level field of the node that changed; nil where the field was not set.
    public struct FieldChange: Sendable, Hashable {
        public let field: String
        public let before: JSONValue?
        public let after: JSONValue?

        var json: JSONValue {
            .object(["field": .string(self.field), "before": self.before ?? .null, "after": self.after ?? .null])
        }
    }

    public let time: Int64
    public let actor: String
    public let role: AdminRole
    /// The path of the node changed (created, deleted), which also decides who may read it.
    public let node: NodePath
    public let action: Action
    public let changes: [FieldChange]
    public let requestID: String

    /// The node's top-level fields that differ between `before` and `after` (nil: the node did
    /// not exist on that side), in field-name order.
    public static func diff(before: JSONValue?, after: JSONValue?) -> [FieldChange] {
        let old = before?.object ?? [:]
        let new = after?.object ?? [:]
        let fields = Set(old.keys).union(new.keys).sorted()
        return fields.compactMap { field in
            old[field] == new[field] ? nil : FieldChange(field: field, before: old[field], after: new[field])
        }
    }

    public var json: JSONValue {
        .object([
            "time": .integer(self.time),
            "actor": .string(self.actor),
            "role": .string(self.role.rawValue),
            "node": .string(self.node.description),
            "action": .string(self.action.rawValue),
            "requestId": .string(self.requestID),
            "changes": .array(self.changes.map(\.json)),
        ])
    }

    /// Reads a stored record back; nil for anything that is not one.
    public init?(json: JSONValue) {
        guard case .integer(let time) = json["time"], let actor = json["actor"]?.string, let role = json["role"]?.string.flatMap(AdminRole.init(rawValue:)),
            let node = json["node"]?.string.flatMap({ try? NodePath(parsing: $0) }), let action = json["action"]?.string.flatMap(Action.init(rawValue:)),
            let requestID = json["requestId"]?.string, let changes = json["changes"]?.array
        else { return nil }
        self.init(
            time: time, actor: actor, role: role, node: node, action: action,
            changes: changes.compactMap { change in
                guard let field = change["field"]?.string else { return nil }
                let before = change["before"].flatMap { $0 == .null ? nil : $0 }
                let after = change["after"].flatMap { $0 == .null ? nil : $0 }
                return FieldChange(field: field, before: before, after: after)
            },
            requestID: requestID
        )
    }

    public init(time: Int64, actor: String, role: AdminRole, node: NodePath, action: Action, changes: [FieldChange], requestID: String) {
        self.time = time
        self.actor = actor
        self.role = role
        self.node = node
        self.action = action
        self.changes = changes
        self.requestID = requestID
    }
}
