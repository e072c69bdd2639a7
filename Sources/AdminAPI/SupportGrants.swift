import Foundation
import GatewayConfig
import Hierarchy
import SupportAccess
import TokenAuth

/// Who calls a support-grant route: a support engineer (admin token role `support`, bound to
/// the platform — no `node` — or to one OEM), or an administrator.
enum SupportCaller: Sendable {
    case engineer(actor: String, oem: NodeID?)
    case admin(AdminPrincipal)

    var actor: String {
        switch self {
        case .engineer(let actor, _): actor
        case .admin(let principal): principal.actor
        }
    }

    var role: AdminRole {
        switch self {
        case .engineer: .support
        case .admin(let principal): principal.role
        }
    }

    /// The engineer of a token whose role claim is `support`; nil when its `node` names
    /// anything but an OEM of `tree`.
    init?(supportToken token: VerifiedToken, tree: TenantSnapshot) {
        guard let text = token.node else {
            self = .engineer(actor: token.subject, oem: nil)
            return
        }
        guard let id = try? NodeID(text), let policy = tree.policy(id), policy.kind == .oem else { return nil }
        self = .engineer(actor: token.subject, oem: id)
    }

    /// Whether the caller may see the customer's grants at all (a support engineer of an OEM
    /// only its OEM's customers); the rest is judged per grant.
    func sees(_ customer: NodePath) -> Bool {
        switch self {
        case .engineer(_, let oem): oem.map { customer.oem == $0 } ?? true
        case .admin(let principal): principal.sees(customer)
        }
    }
}

/// One support-grant request the engine has authenticated and checked as far as it can without
/// the stored grants; the service reads them and lets `judge` decide.
public struct SupportGrantOperation: Sendable {
    enum Kind: Sendable {
        /// A new grant, validated: stored if its id is free.
        case request(SupportGrant)
        case list
        case approve(String)
        case refuse(String)
        case revoke(String)
        /// The support token of an approved grant, for its requester.
        case token(String)
    }

    let kind: Kind
    let caller: SupportCaller
    let customer: NodePath
    let settings: GatewaySettings.SupportAccess
    /// The customer's support-access policy from the tree: whose admins approve.
    let policy: SupportAccessPolicy
    let requestID: String
    let now: Int64

    var grantID: String? {
        switch self.kind {
        case .request(let grant): grant.id
        case .list: nil
        case .approve(let id), .refuse(let id), .revoke(let id), .token(let id): id
        }
    }

    enum Judgement: Sendable {
        case respond(AdminResponse)
        /// Store `next` if the grant is still `expected`, with `audit`; then, for a revoked
        /// approved grant, revoke its token; then answer.
        case write(expected: String?, next: String, audit: AuditRecord, revocation: RevocationMessage?, response: AdminResponse)
        /// Append `audit` (a token handed out), then answer.
        case audited(AuditRecord, AdminResponse)
    }

    func refuse(_ problem: AdminProblem, field: String? = nil, _ message: String = "") -> Judgement {
        let errors = field.map { [FieldProblem(node: self.customer.description, field: $0, message: message)] } ?? []
        return .respond(problem.response(requestID: self.requestID, errors: errors))
    }

    /// Decides on the stored grants: `stored` is every grant of the customer for `list` (and for
    /// a new request, which does not look at them), the one grant (or nothing) for the others.
    func judge(_ stored: [String]) -> Judgement {
        switch self.kind {
        case .request(let grant):
            let audit = self.audit(.supportGrantRequest, before: nil, after: grant)
            return .write(
                expected: nil, next: SupportGrantJSON.stored(grant), audit: audit, revocation: nil,
                response: .json(201, SupportGrantJSON.encode(grant, now: self.now))
            )
        case .list:
            let grants = stored.compactMap(SupportGrantJSON.decode).filter { self.mayRead($0) && !self.isPastKeeping($0) }
                .sorted { $0.requestedAt > $1.requestedAt }
            return .respond(.json(200, .object(["grants": .array(grants.map { SupportGrantJSON.encode($0, now: self.now) })])))
        case .approve, .refuse, .revoke, .token:
            guard let text = stored.first, let grant = SupportGrantJSON.decode(text), grant.customer == self.customer, self.mayRead(grant) else {
                return self.refuse(.supportGrantNotFound)
            }
            return self.change(grant, stored: text)
        }
    }

    /// Whether the grant ended longer ago than the settings' `keepEnded`: no longer listed, and
    /// removed from the store (`trimmed`).
    func isPastKeeping(_ grant: SupportGrant) -> Bool {
        guard let endedAt = grant.endedAt(at: self.now) else { return false }
        return endedAt + Int64(self.settings.keepEnded.components.seconds) <= self.now
    }

    /// The ids among `stored` (every grant of the customer) to remove: ended past keeping. An
    /// ended grant never changes again, so removing it needs no compare-and-set.
    func trimmed(_ stored: [String]) -> [String] {
        stored.compactMap(SupportGrantJSON.decode).filter(self.isPastKeeping).map(\.id)
    }

    /// The customer's side (its admins and those above it) and the grant's requester.
    func mayRead(_ grant: SupportGrant) -> Bool {
        switch self.caller {
        case .engineer(let actor, _): grant.requester.actor == actor
        case .admin(let principal): principal.sees(grant.customer)
        }
    }

    private func change(_ grant: SupportGrant, stored: String) -> Judgement {
        var next = grant
        let decision = SupportGrant.Decision(actor: self.caller.actor, role: self.caller.role.rawValue, time: self.now)
        let action: AuditRecord.Action
        let refusal: SupportGrant.Refusal?
        switch self.kind {
        case .approve, .refuse:
            // Deciding is the customer's side's: an engineer never decides, not even another's.
            guard case .admin(let principal) = self.caller else { return self.refuse(.actionForbidden) }
            let isPlatform = principal.role == .platformAdmin
            if !grant.breakGlass, let level = Self.approverLevel(principal.role), !self.policy.approvers.contains(level) {
                let allowed = SupportApprover.allCases.filter(self.policy.approvers.contains).map(\.rawValue).joined(separator: ", ")
                return self.refuse(.actionForbidden, field: "approvers", "the tree's supportAccess.approvers for this customer: \(allowed) (and platform admins)")
            }
            if case .approve = self.kind {
                action = .supportGrantApprove
                refusal = next.approve(by: decision, isPlatformAdmin: isPlatform)
            } else {
                action = .supportGrantRefuse
                refusal = next.refuse(by: decision, isPlatformAdmin: isPlatform)
            }
        case .revoke:
            action = .supportGrantRevoke
            refusal = next.revoke(by: decision)
        case .token:
            return self.token(grant)
        case .request, .list:
            return self.refuse(.routeNotFound)
        }
        switch refusal {
        case nil:
            var revocation: RevocationMessage?
            if case .revoke = self.kind, grant.status(at: self.now) == .approved, let expiresAt = grant.expiresAt {
                revocation = .token(jwtID: grant.id, expiresAt: expiresAt)
            }
            return .write(
                expected: stored, next: SupportGrantJSON.stored(next), audit: self.audit(action, before: grant, after: next), revocation: revocation,
                response: .json(200, SupportGrantJSON.encode(next, now: self.now))
            )
        case .ownGrant?:
            return self.refuse(.supportGrantOwn)
        case .breakGlassNeedsPlatformAdmin?:
            return self.refuse(.actionForbidden, field: "breakGlass", "a break-glass grant is approved by a platform admin other than its requester")
        case .notPending?, .alreadyEnded?:
            return self.refuse(.supportGrantState, field: "status", "the grant is \(grant.status(at: self.now).rawValue)")
        }
    }

    /// The level whose admins an admin role approves for; nil for platform admins, who always may.
    static func approverLevel(_ role: AdminRole) -> SupportApprover? {
        switch role {
        case .customerAdmin: .customer
        case .partnerAdmin: .partner
        case .oemAdmin: .oem
        case .platformAdmin, .support: nil
        }
    }

    /// Only the requester, only while the grant is approved and unexpired; the token ends when
    /// the grant does.
    private func token(_ grant: SupportGrant) -> Judgement {
        guard case .engineer(let actor, _) = self.caller, actor == grant.requester.actor else { return self.refuse(.actionForbidden) }
        guard grant.isActive(at: self.now), let expiresAt = grant.expiresAt else {
            return self.refuse(.supportGrantState, field: "status", "the grant is \(grant.status(at: self.now).rawValue): no token")
        }
        let claims: [String: ClaimValue] = [
            "iss": .string(self.settings.issuer), "aud": .string(self.settings.audience), "sub": .string(actor),
            "tenant": .string(grant.customer.leaf.rawValue), "role": .string(AdminRole.support.rawValue), "grant": .string(grant.id),
            "jti": .string(grant.id), "ticket": .string(grant.ticket), "scope": .string(grant.scope.claim),
            "iat": .integer(self.now), "exp": .integer(expiresAt),
        ]
        let token: String
        do {
            token = try TokenMinter.mint(claims: claims, algorithm: self.settings.algorithm, kid: self.settings.keyID, privateKeyPEM: self.settings.signingKeyPEM)
        } catch {
            // The key was checked when the settings were read: only a replaced file could fail.
            return self.refuse(.supportAccessDisabled)
        }
        let audit = AuditRecord(
            time: self.now, actor: actor, role: .support, node: self.customer, action: .supportToken,
            changes: [AuditRecord.FieldChange(field: "supportGrant", before: nil, after: .object([
                "id": .string(grant.id), "ticket": .string(grant.ticket), "expiresAt": .integer(expiresAt), "breakGlass": .bool(grant.breakGlass),
            ]))],
            requestID: self.requestID
        )
        return .audited(audit, .json(200, .object([
            "token": .string(token), "grant": .string(grant.id), "expiresAt": .integer(expiresAt), "scope": SupportGrantJSON.encode(grant.scope),
        ])))
    }

    private func audit(_ action: AuditRecord.Action, before: SupportGrant?, after: SupportGrant) -> AuditRecord {
        AuditRecord(
            time: self.now, actor: self.caller.actor, role: self.caller.role, node: self.customer, action: action,
            changes: [AuditRecord.FieldChange(
                field: "supportGrant", before: before.map { SupportGrantJSON.encode($0, now: self.now) }, after: SupportGrantJSON.encode(after, now: self.now)
            )],
            requestID: self.requestID
        )
    }
}

extension AdminEngine {
    /// The support-grant routes, for an engineer or an administrator. Everything about the
    /// request that needs no stored grant is checked here.
    static func supportGrants(
        _ route: AdminRoute, caller: SupportCaller, request: AdminRequest, tree: StoredTree, snapshot: TenantSnapshot, now: Int64
    ) -> AdminOutcome {
        let id = request.requestID
        guard let nodeID = route.nodeID, let target = tree.node(nodeID), caller.sees(target.path) else {
            return .respond(AdminProblem.nodeNotFound.response(requestID: id))
        }
        if case .admin(let principal) = caller, AdminAuthorization.decide(principal, .read, target: target.path) != .allowed {
            return .respond(AdminProblem.nodeNotFound.response(requestID: id))
        }
        guard target.path.kind == .customer else {
            return .respond(AdminProblem.invalidChange.response(requestID: id, errors: [
                FieldProblem(node: target.path.description, field: "", message: "support is granted on one customer at a time"),
            ]))
        }
        if case .supportSessions = route {
            // The customer's side reads what support did; an engineer does not.
            guard case .admin = caller else { return .respond(AdminProblem.actionForbidden.response(requestID: id)) }
            let limit = request.query("limit").flatMap(Int.init).map { min(max($0, 1), 1000) } ?? 100
            return .readSupportSessions(oem: target.path.oem.rawValue, customer: target.path, limit: limit)
        }
        guard let settings = tree.configuration.settings.supportAccess else {
            return .respond(AdminProblem.supportAccessDisabled.response(requestID: id))
        }
        let policy = snapshot.policy(target.path.leaf)?.supportAccess ?? .unrestricted
        let kind: SupportGrantOperation.Kind
        switch route {
        case .listSupportGrants:
            kind = .list
        case .requestSupportGrant:
            switch Self.newGrant(caller: caller, customer: target.path, request: request, snapshot: snapshot, settings: settings, policy: policy, now: now) {
            case .grant(let grant): kind = .request(grant)
            case .refused(let refusal): return .respond(refusal)
            }
        case .supportGrant(_, let grant, let action):
            switch action {
            case .approve: kind = .approve(grant)
            case .refuse: kind = .refuse(grant)
            case .revoke: kind = .revoke(grant)
            case .token: kind = .token(grant)
            }
        default:
            return .respond(AdminProblem.routeNotFound.response(requestID: id))
        }
        return .supportGrant(SupportGrantOperation(
            kind: kind, caller: caller, customer: target.path, settings: settings, policy: policy, requestID: id, now: now
        ))
    }

    /// `POST …/support-grants`: `reason`, `ticket`, `duration` (`"4h"`, `"90m"` or seconds),
    /// `scope` (`"read-only"` or `{"routes": [...]}`), `breakGlass`. Only support engineers ask.
    static func newGrant(
        caller: SupportCaller, customer: NodePath, request: AdminRequest, snapshot: TenantSnapshot, settings: GatewaySettings.SupportAccess,
        policy: SupportAccessPolicy, now: Int64
    ) -> NewGrant {
        let id = request.requestID
        guard case .engineer(let actor, let oem) = caller else { return .refused(AdminProblem.actionForbidden.response(requestID: id)) }
        guard let json = JSONValue.parse(request.body), case .object = json else { return .refused(AdminProblem.malformedBody.response(requestID: id)) }
        let label = customer.description
        var problems: [FieldProblem] = []
        func text(_ field: String, max: Int) -> String {
            guard let value = json[field]?.string, !value.trimmingCharacters(in: .whitespaces).isEmpty, value.count <= max else {
                problems.append(FieldProblem(node: label, field: field, message: "required: a text of 1 to \(max) characters"))
                return ""
            }
            return value
        }
        let reason = text("reason", max: 1000)
        let ticket = text("ticket", max: 200)
        var duration: Int64 = 0
        // The settings' cap for the platform, the tree's (the customer's partner or OEM) below it.
        let settingsCap = Int64(settings.maxDuration.components.seconds)
        let cap = min(settingsCap, policy.maxDuration ?? .max)
        let capSource = cap < settingsCap ? "supportAccess.maxDuration of \(policy.maxDurationSetBy?.rawValue ?? "the tree")" : "supportAccess.maxDuration of the settings"
        if let value = json["duration"], let seconds = Self.seconds(value), seconds > 0 {
            duration = seconds
            if seconds > cap {
                problems.append(FieldProblem(node: label, field: "duration", message: "at most \(SupportAccessPolicy.text(seconds: cap)) (\(capSource))"))
            }
        } else {
            problems.append(FieldProblem(node: label, field: "duration", message: "required: a duration such as \"30m\" or \"4h\", or seconds"))
        }
        var scope = SupportScope.readOnly
        if let value = json["scope"] {
            if let parsed = SupportGrantJSON.scope(value) {
                scope = parsed
                if case .routes(let routes) = parsed {
                    let known = Set(snapshot.catalog.routes.all.map(\.pathPrefix))
                    for route in routes where !known.contains(route) || route.contains(",") {
                        problems.append(FieldProblem(node: label, field: "scope.routes", message: "'\(route)' is no catalog route"))
                    }
                }
            } else {
                problems.append(FieldProblem(node: label, field: "scope", message: "\"read-only\" or {\"routes\": [catalog route paths]}"))
            }
        } else {
            problems.append(FieldProblem(node: label, field: "scope", message: "required: \"read-only\" or {\"routes\": [catalog route paths]}"))
        }
        var breakGlass = false
        if let value = json["breakGlass"] {
            guard case .bool(let flag) = value else {
                return .refused(AdminProblem.invalidChange.response(requestID: id, errors: [FieldProblem(node: label, field: "breakGlass", message: "true or false")]))
            }
            breakGlass = flag
        }
        guard problems.isEmpty else { return .refused(AdminProblem.invalidChange.response(requestID: id, errors: problems)) }
        return .grant(SupportGrant(
            id: Self.newGrantID(), customer: customer, requester: .init(actor: actor, oem: oem?.rawValue), reason: reason, ticket: ticket,
            duration: duration, scope: scope, breakGlass: breakGlass, requestedAt: now,
            answerWithin: Int64(settings.answerWithin.components.seconds)
        ))
    }

    enum NewGrant {
        case grant(SupportGrant)
        case refused(AdminResponse)
    }

    /// `"45s"`, `"30m"`, `"4h"`, or a whole number of seconds.
    static func seconds(_ value: JSONValue) -> Int64? {
        if case .integer(let seconds) = value { return seconds }
        guard let text = value.string, let unit = text.last, let number = Int64(text.dropLast()), number > 0, number < 1_000_000 else { return nil }
        switch unit {
        case "s": return number
        case "m": return number * 60
        case "h": return number * 3600
        default: return nil
        }
    }

    static func newGrantID() -> String {
        func hex(_ value: UInt64) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: 16 - text.count) + text
        }
        return "sg-" + hex(.random(in: .min ... .max)) + hex(.random(in: .min ... .max))
    }
}
