import JSONMasking

/// Field masking: which fields of a route's JSON responses a kind of caller does not see.
///
/// Declared as rules — on a catalog route (for every tenant) and on nodes (for their subtree) —
/// and compiled once per configuration into each node's `ResponseMasks`. Inheritance only
/// restricts: a node's masks are its parent's plus its own rules, so a node can mask more
/// fields, or the same fields for more role kinds, and has no way to unmask anything above it.
/// Support sessions (`RoleKind.support`) see every route's masks, whatever a rule's `roles`.

/// What a response that is not JSON gets on a route that masks it.
public enum NonJSONResponses: String, Sendable, Hashable, CaseIterable {
    /// Refused (502 `unmaskable-response`): the default.
    case refuse
    /// Passed unmasked. Never for a support session, and only when every rule that masks the
    /// caller on the route says so.
    case pass
}

/// One masking rule as declared.
public struct MaskingRuleSource: Sendable, Hashable {
    /// On a node: the catalog route(s) it masks — `GET /v1/employees` names the route with that
    /// method and path, `/v1/employees` every route with that path. Nil on a catalog route's own
    /// rules.
    public var route: String?
    /// JSON Pointers (`/employees/*/salary`: starting with `/`, `*` a whole segment for every
    /// element or member) and field names (anything else: masked at any depth).
    public var fields: [String]
    /// The role kinds masked besides support sessions (`default`: tokens without a `role`
    /// claim); nil: every caller.
    public var roles: [String]?
    /// Nil: `refuse`.
    public var nonJSON: NonJSONResponses?

    public init(route: String? = nil, fields: [String], roles: [String]? = nil, nonJSON: NonJSONResponses? = nil) {
        self.route = route
        self.fields = fields
        self.roles = roles
        self.nonJSON = nonJSON
    }
}

/// The kind of caller masking decides for, from the data-plane token (its `role` claim) or the
/// request context (a support session).
public enum RoleKind: Sendable, Hashable {
    /// A support engineer's session: masked on every masked route, whatever the rules' roles.
    case support
    /// A token whose `role` claim has this value.
    case named(String)
    /// A token without a `role` claim (or with `role: "default"`): `default` in the rules.
    case unnamed

    /// The `role` claim of support-engineer tokens.
    public static let supportRole = "support"
    /// How rules name tokens without a role.
    public static let unnamedRole = "default"

    public init(roleClaim: String?) {
        switch roleClaim {
        case nil, Self.unnamedRole?: self = .unnamed
        case Self.supportRole?: self = .support
        case let role?: self = .named(role)
        }
    }
}

/// One rule after validation.
struct MaskingRule: Sendable, Hashable {
    var names: [String]
    var pointers: [String]
    /// Nil: every caller.
    var roles: Set<String>?
    var passesNonJSON: Bool

    /// The rule, or what is wrong with it (each problem once, for the compiler's report).
    static func compile(_ source: MaskingRuleSource) -> (rule: MaskingRule?, problems: [String]) {
        var problems: [String] = []
        var names: [String] = []
        var pointers: [String] = []
        if source.fields.isEmpty { problems.append("fields: a rule masks at least one field") }
        for field in source.fields {
            if field.isEmpty {
                problems.append("fields: an empty field name")
            } else if field.hasPrefix("/") {
                do {
                    _ = try FieldMask.segments(of: field)
                    pointers.append(field)
                } catch {
                    problems.append("fields: '\(field)': \(error)")
                }
            } else {
                names.append(field)
            }
        }
        var roles: Set<String>?
        if let listed = source.roles {
            for role in listed where role.isEmpty || role.utf8.count > 128 || role.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7f }) {
                problems.append("roles: '\(role)' is not a role (1 to 128 visible characters)")
            }
            roles = Set(listed)
        }
        guard problems.isEmpty else { return (nil, problems) }
        return (MaskingRule(names: names, pointers: pointers, roles: roles, passesNonJSON: source.nonJSON == .pass), [])
    }

    func applies(to role: String) -> Bool { self.roles?.contains(role) ?? true }
}

/// One route's masks for every role kind, compiled from the rules that reach a node.
public struct RouteMasks: Sendable, Hashable {
    /// Rules without `roles`: every caller's mask, for role kinds no rule names.
    let everyone: FieldMask?
    /// Each role kind some rule names (`default` included): the rules for everyone and its own.
    let byRole: [String: FieldMask]
    /// Every rule together, never passing non-JSON responses.
    let support: FieldMask

    init(rules: [MaskingRule]) throws(FieldMask.PointerProblem) {
        func mask(_ rules: [MaskingRule], passes: Bool) throws(FieldMask.PointerProblem) -> FieldMask {
            try FieldMask(names: rules.flatMap(\.names), pointers: rules.flatMap(\.pointers), passesNonJSON: passes)
        }
        let forEveryone = rules.filter { $0.roles == nil }
        self.everyone = forEveryone.isEmpty ? nil : try mask(forEveryone, passes: forEveryone.allSatisfy(\.passesNonJSON))
        var byRole: [String: FieldMask] = [:]
        for role in Set(rules.flatMap { $0.roles ?? [] }).subtracting([RoleKind.supportRole]).sorted() {
            let applying = rules.filter { $0.applies(to: role) }
            byRole[role] = try mask(applying, passes: applying.allSatisfy(\.passesNonJSON))
        }
        self.byRole = byRole
        self.support = try mask(rules, passes: false)
    }

    /// The mask for a kind of caller; nil when its responses on the route are not masked.
    public func mask(for kind: RoleKind) -> FieldMask? {
        switch kind {
        case .support: self.support
        case .named(let role): self.byRole[role] ?? self.everyone
        case .unnamed: self.byRole[RoleKind.unnamedRole] ?? self.everyone
        }
    }
}

/// A node's masks on every route: its ancestors' rules (the catalog's first) and its own.
/// Immutable; a node without rules of its own shares its parent's value.
public struct ResponseMasks: Sendable, Hashable {
    /// The rules that reach the node, by route (`Route.index`).
    let rules: [Int: [MaskingRule]]
    let byRoute: [Int: RouteMasks]

    public static let none = ResponseMasks(rules: [:], byRoute: [:])

    /// No route is masked for anyone: the data plane looks no further.
    public var isEmpty: Bool { self.byRoute.isEmpty }

    /// The mask for `kind` on `route`; nil when its responses pass unmasked.
    public func mask(route: Route, for kind: RoleKind) -> FieldMask? {
        guard !self.byRoute.isEmpty, let masks = self.byRoute[route.index] else { return nil }
        return masks.mask(for: kind)
    }

    /// These masks with `own` rules added: only the routes they name are compiled again.
    func adding(_ own: [Int: [MaskingRule]]) throws(FieldMask.PointerProblem) -> ResponseMasks {
        guard !own.isEmpty else { return self }
        var rules = self.rules
        var byRoute = self.byRoute
        for (route, added) in own {
            let all = (rules[route] ?? []) + added
            rules[route] = all
            byRoute[route] = try RouteMasks(rules: all)
        }
        return ResponseMasks(rules: rules, byRoute: byRoute)
    }
}

extension Catalog {
    /// The indices of the routes a rule's `route` names: `METHOD /path` one route, `/path`
    /// every route with that path.
    func routeIndices(named reference: String) -> [Int] {
        let parts = reference.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        let method = parts.count == 2 ? parts[0].uppercased() : nil
        let path = parts.count == 2 ? String(parts[1]) : reference
        return self.routes.all.filter { $0.pathPrefix == path && (method == nil || $0.method == method) }.map(\.index).sorted()
    }
}
