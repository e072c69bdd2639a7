/// "Why is feature X off for this customer?" — for a node and an attribute, what each node on
/// the path declared, what was in effect at each step, and which node decided the outcome.
public struct Explanation: Sendable, Hashable {
    public struct Step: Sendable, Hashable {
        public let node: NodePath
        /// What this node declared for the attribute; nil when it declared nothing (inherits).
        public let declared: String?
        /// The value in effect at this node.
        public let effective: String
    }

    public let subject: NodePath
    public let attribute: String
    public let steps: [Step]
    public let value: String
    /// The node whose declaration produced the value; nil when nothing on the path declared it
    /// (the platform default applies).
    public let decidedBy: NodePath?
    /// A sentence for support staff and partners.
    public let summary: String
    /// For `feature.NAME`: every feature it requires, directly or not, and whether and where
    /// the node gets each (see `Explanation.Requirement`). Empty for other attributes.
    public var requirements: [Requirement] = []
    /// For `masking`: every masking rule that reaches the node, route by route, with where it
    /// was declared (see `Explanation.Mask`). Empty for other attributes.
    public var masks: [Mask] = []

    public var text: String {
        var lines = ["\(self.attribute) for \(self.subject): \(self.value)"]
        for step in self.steps {
            lines.append("  \(step.node): declared \(step.declared ?? "(nothing: inherits)") → \(step.effective)")
        }
        for requirement in self.requirements {
            lines.append("  requires \(requirement.feature) (\(requirement.chain.joined(separator: " → "))): \(requirement.enabled ? "on" : "off"), \(requirement.source)")
        }
        for mask in self.masks {
            lines.append("  masks \(mask.route): \(mask.fields.joined(separator: ", ")) for \(mask.callers), from \(mask.declaredBy.map { "\($0)" } ?? "the catalog route")")
        }
        lines.append("  decided by: \(self.decidedBy?.description ?? "platform default")")
        lines.append("  \(self.summary)")
        return lines.joined(separator: "\n")
    }
}

extension Explanation {
    /// One feature the explained feature requires, at the explained node.
    public struct Requirement: Sendable, Hashable {
        /// The required feature.
        public let feature: String
        /// The chain of direct requirements that leads to it, from the explained feature
        /// (`[payroll, ledger]`, or `[payroll, hr, ledger]` when needed only through `hr`).
        public let chain: [String]
        /// Whether the node has it.
        public let enabled: Bool
        /// Where the node gets it (`package starter`, `add-on`, `offered by acme`) or why it does
        /// not (`not offered by acme/globex`, `not in the package or add-ons`).
        public let source: String
        /// The node that does not offer it, when that is why the node lacks it.
        public let withheldBy: NodePath?
    }
}

extension Explanation {
    /// One masking rule that reaches the explained node.
    public struct Mask: Sendable, Hashable {
        /// The catalog route masked: `GET /v1/payroll`, or its path alone for a route of every method.
        public let route: String
        /// JSON Pointers and field names: as a node declared them; a catalog route's pointers
        /// first, then its names.
        public let fields: [String]
        /// The role kinds masked besides support sessions; nil: every caller.
        public let roles: [String]?
        /// `nonJSON: pass`: a non-JSON response passes unmasked (never to a support session).
        public let passesNonJSON: Bool
        /// The node whose rule it is; nil for the catalog route's own.
        public let declaredBy: NodePath?

        /// Who is masked: `viewer and support sessions`, `every caller`.
        public var callers: String {
            let who = self.roles.map { $0.isEmpty ? "support sessions" : $0.joined(separator: ", ") + " and support sessions" } ?? "every caller"
            return self.passesNonJSON ? who + " (non-JSON passes, except to support sessions)" : who
        }
    }
}

public struct ExplainError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

extension TenantSnapshot {
    /// The attributes explain understands: `status`, `features`, `feature.NAME`, `package`,
    /// `limits`, `placement`, `residency`, `origins`, `partnerIssuerSelfService`, `masking`,
    /// `supportAccess`, `branding.FIELD`.
    public static var explainableAttributes: [String] {
        ["status", "features", "feature.<name>", "package", "limits", "placement", "residency", "origins", "partnerIssuerSelfService", "masking", "supportAccess"]
            + BrandingField.allCases.map { "branding.\($0.rawValue)" }
    }

    public func explain(_ id: NodeID, attribute: String) throws(ExplainError) -> Explanation {
        guard let subject = self.policy(id) else { throw ExplainError(description: "no node '\(id)'") }
        let chain = subject.path.ids.compactMap { self.policy($0) }
        let declarations = chain.map { self.declared[$0.id]! }

        func steps(_ declared: (NodeSource) -> String?, _ effective: (EffectivePolicy) -> String) -> [Explanation.Step] {
            zip(chain, declarations).map { Explanation.Step(node: $0.path, declared: declared($1), effective: effective($0)) }
        }
        func nearest(_ declared: (NodeSource) -> Bool) -> NodePath? {
            zip(chain, declarations).reversed().first { declared($1) }?.0.path
        }
        func list(_ values: [String]) -> String { values.isEmpty ? "none" : values.joined(separator: ", ") }

        switch attribute {
        case "status":
            let value = subject.status.rawValue
            let decider = subject.suspendedBy.flatMap { self.policy($0)?.path }
            return Explanation(
                subject: subject.path, attribute: attribute,
                steps: steps({ $0.status?.rawValue }, { $0.status.rawValue }), value: value, decidedBy: decider,
                summary: decider.map { "Suspended because \($0) is suspended; suspending a node suspends its whole subtree." }
                    ?? "Active: no node on the path is suspended."
            )

        case "features", "package":
            let value = list(self.catalog.names(subject.features))
            let decider = nearest { $0.features != nil || $0.package != nil || !$0.addOns.isEmpty }
            return Explanation(
                subject: subject.path, attribute: attribute,
                steps: steps(
                    { source in
                        var parts: [String] = []
                        if let features = source.features { parts.append("allowed: \(list(features))") }
                        if let package = source.package { parts.append("package: \(package)") }
                        if !source.addOns.isEmpty { parts.append("add-ons: \(list(source.addOns))") }
                        return parts.isEmpty ? nil : parts.joined(separator: "; ")
                    },
                    { list(self.catalog.names($0.features)) }
                ),
                value: value, decidedBy: decider,
                summary: "Effective features are the package and add-ons, intersected with what every ancestor allows."
            )

        case _ where attribute.hasPrefix("feature."):
            let name = String(attribute.dropFirst("feature.".count))
            guard let index = self.catalog.index(of: name) else { throw ExplainError(description: "no feature '\(name)' in the catalog") }
            let enabled = subject.features.contains(index)
            // The first node on the path at which the feature is no longer in effect.
            let removedAt = chain.first { !$0.features.contains(index) }
            var summary: String
            if enabled {
                summary = "'\(name)' is enabled: the package or an add-on includes it and every ancestor allows it."
            } else if let removedAt, removedAt.kind != .customer {
                summary = "'\(name)' is off because \(removedAt.path) does not allow it."
            } else {
                summary = "'\(name)' is off because neither the customer's package nor its add-ons include it."
            }
            let requirements = self.requirements(of: index, at: subject, path: chain, declarations: declarations)
            summary += Self.requirementsNote(requirements, feature: name, enabled: enabled)
            var explanation = Explanation(
                subject: subject.path, attribute: attribute,
                steps: steps(
                    { source in
                        if let features = source.features { return features.contains(name) ? "allows \(name)" : "does not allow \(name)" }
                        if let package = source.package {
                            return source.addOns.contains(name) ? "add-on \(name)" : "package \(package)"
                        }
                        return nil
                    },
                    { $0.features.contains(index) ? "on" : "off" }
                ),
                value: enabled ? "on" : "off", decidedBy: enabled ? subject.path : (removedAt?.path ?? subject.path), summary: summary
            )
            explanation.requirements = requirements
            return explanation

        case "limits":
            let value = subject.limits.map { "\($0.node): \(Self.describe($0.limits))" }.joined(separator: "; ")
            let decider = nearest { $0.limits != nil || $0.customerDefaults != nil }
            return Explanation(
                subject: subject.path, attribute: attribute,
                steps: steps(
                    { source in
                        var parts: [String] = []
                        if let limits = source.limits { parts.append("limits \(Self.describe(limits))") }
                        if let defaults = source.customerDefaults { parts.append("customerDefaults \(Self.describe(defaults))") }
                        return parts.isEmpty ? nil : parts.joined(separator: "; ")
                    },
                    { policy in policy.limits.first { $0.node == policy.id }.map { Self.describe($0.limits) } ?? "no own budget" }
                ),
                value: value.isEmpty ? "unlimited" : value, decidedBy: decider,
                summary: "Each level's limits budget its whole subtree; a request is charged at every level listed."
            )

        case "placement":
            let value = subject.cell.map { cell in "cell \(cell) (\(self.cells[cell].map { "\($0.kind.rawValue), \($0.region)" } ?? "?"))" } ?? "none"
            return Explanation(
                subject: subject.path, attribute: attribute,
                steps: steps({ $0.placement.map(Self.describe) }, { $0.cell ?? "-" }),
                value: value, decidedBy: nearest { $0.placement != nil },
                summary: "The nearest placement on the path wins." + self.fallbackNote(for: subject)
            )

        case "residency":
            let value = subject.residency.map { list($0.sorted()) } ?? "unrestricted"
            return Explanation(
                subject: subject.path, attribute: attribute,
                steps: steps({ $0.residency.map(list) }, { $0.residency.map { list($0.sorted()) } ?? "unrestricted" }),
                value: value, decidedBy: nearest { $0.residency != nil },
                summary: "Each node may only narrow the regions of its parent."
            )

        case "origins":
            return Explanation(
                subject: subject.path, attribute: attribute,
                steps: steps({ $0.origins.map(list) }, { list($0.origins) }),
                value: list(subject.origins), decidedBy: nearest { $0.origins != nil },
                summary: "Each node may only narrow the origins of its parent."
            )

        case "partnerIssuerSelfService":
            let value = subject.partnerIssuerSelfService ? "on" : "off"
            return Explanation(
                subject: subject.path, attribute: attribute,
                steps: steps({ $0.partnerIssuerSelfService.map { $0 ? "on" : "off" } }, { $0.partnerIssuerSelfService ? "on" : "off" }),
                value: value, decidedBy: nearest { $0.partnerIssuerSelfService != nil },
                summary: subject.partnerIssuerSelfService
                    ? "The OEM lets the admins of its partners manage their own partner's token issuers."
                    : "The admins of the OEM's partners do not manage their partner's token issuers; the OEM's admin registers them."
            )

        case "masking":
            let masks = self.masks(reaching: chain, declarations: declarations)
            func described(_ masks: [Explanation.Mask]) -> String {
                let routes = Set(masks.map(\.route)).count
                return masks.isEmpty ? "none" : "\(masks.count) rule\(masks.count == 1 ? "" : "s") on \(routes) route\(routes == 1 ? "" : "s")"
            }
            var explanation = Explanation(
                subject: subject.path, attribute: attribute,
                steps: steps(
                    { source in
                        source.masking.isEmpty ? nil : source.masking.map { "\($0.route ?? "?"): \($0.fields.joined(separator: ", "))" }.joined(separator: "; ")
                    },
                    // In effect at a node: the catalog's rules and those of the nodes down to it.
                    { policy in described(masks.filter { $0.declaredBy.map { $0.contains(policy.path) } ?? true }) }
                ),
                value: described(masks), decidedBy: nearest { !$0.masking.isEmpty },
                summary: "Masks add up down the path: the catalog route's rules, then each node's own; no node unmasks what is masked above it. "
                    + "Support sessions are masked by every rule, whatever its roles."
            )
            explanation.masks = masks
            return explanation

        case "supportAccess":
            func described(_ policy: SupportAccessPolicy) -> String {
                let cap = policy.maxDuration.map { cap in
                    "maxDuration \(SupportAccessPolicy.text(seconds: cap))" + (policy.maxDurationSetBy.flatMap { self.policy($0)?.path }.map { " (set by \($0))" } ?? "")
                } ?? "maxDuration from the settings"
                return cap + "; approvers " + list(SupportApprover.allCases.filter(policy.approvers.contains).map(\.rawValue)) + " and platform admins"
            }
            return Explanation(
                subject: subject.path, attribute: attribute,
                steps: steps(
                    { source in
                        guard let own = source.supportAccess else { return nil }
                        var parts: [String] = []
                        if let cap = own.maxDuration { parts.append("maxDuration \(SupportAccessPolicy.text(seconds: cap))") }
                        if let approvers = own.approvers { parts.append("approvers \(list(approvers.map(\.rawValue)))") }
                        return parts.isEmpty ? nil : parts.joined(separator: "; ")
                    },
                    { described($0.supportAccess) }
                ),
                value: described(subject.supportAccess), decidedBy: nearest { $0.supportAccess != nil },
                summary: "Each node may only shorten its parent's maxDuration and narrow its approvers; the settings' supportAccess.maxDuration "
                    + "caps every grant, and platform admins always approve (a break-glass grant only they)."
            )

        case _ where attribute.hasPrefix("branding."):
            guard let field = BrandingField(rawValue: String(attribute.dropFirst("branding.".count))) else {
                throw ExplainError(description: "no branding field '\(attribute.dropFirst("branding.".count))'")
            }
            let lockedAt = zip(chain, declarations).first { $1.branding?.locked.contains(field) == true }?.0.path
            // Below a lock, values are ignored: the nearest value at or above the locking node wins.
            let lastConsidered = lockedAt.flatMap { locked in chain.firstIndex { $0.path == locked } } ?? chain.count - 1
            let decider = zip(chain, declarations).prefix(lastConsidered + 1).reversed().first { $1.branding?.values[field] != nil }?.0.path
            return Explanation(
                subject: subject.path, attribute: attribute,
                steps: steps(
                    { source in
                        let value = source.branding?.values[field]
                        let locked = source.branding?.locked.contains(field) == true
                        if value == nil && !locked { return nil }
                        return (value ?? "(no value)") + (locked ? " [locked]" : "")
                    },
                    { $0.branding.values[field] ?? "(unset)" }
                ),
                value: subject.branding.values[field] ?? "(unset)", decidedBy: decider,
                summary: lockedAt.map { "Locked at \($0): nodes below cannot change it." } ?? "The nearest value on the path wins."
            )

        default:
            throw ExplainError(description: "unknown attribute '\(attribute)'; one of: \(Self.explainableAttributes.joined(separator: ", "))")
        }
    }

    static func describe(_ limits: Limits) -> String {
        let parts = limits.fields.compactMap { field in field.value.map { "\(field.name) \($0)" } }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    /// Every masking rule that reaches the last node of `chain`, route by route in catalog
    /// order: the catalog route's own first, then each node's down the path.
    func masks(reaching chain: [EffectivePolicy], declarations: [NodeSource]) -> [Explanation.Mask] {
        let routes = Dictionary(uniqueKeysWithValues: self.catalog.routes.all.map { ($0.index, $0) })
        func name(_ index: Int) -> String {
            guard let route = routes[index] else { return "?" }
            return route.method.map { "\($0) \(route.pathPrefix)" } ?? route.pathPrefix
        }
        var byRoute: [Int: [Explanation.Mask]] = [:]
        for (index, rules) in self.catalog.masks.rules {
            byRoute[index, default: []] += rules.map { rule in
                Explanation.Mask(
                    route: name(index), fields: rule.pointers + rule.names, roles: rule.roles.map { $0.sorted() }, passesNonJSON: rule.passesNonJSON,
                    declaredBy: nil
                )
            }
        }
        for (policy, source) in zip(chain, declarations) {
            for rule in source.masking {
                for index in self.catalog.routeIndices(named: rule.route ?? "") {
                    byRoute[index, default: []].append(Explanation.Mask(
                        route: name(index), fields: rule.fields, roles: rule.roles, passesNonJSON: rule.nonJSON == .pass, declaredBy: policy.path
                    ))
                }
            }
        }
        return byRoute.keys.sorted().flatMap { byRoute[$0]! }
    }

    static func describe(_ placement: PlacementSource) -> String {
        if let cell = placement.cell { return "cell \(cell)" }
        return "tier \(placement.tier?.rawValue ?? "?"), region \(placement.region ?? "?")"
    }
}

extension TenantSnapshot {
    /// Which of the customer's cell's fallbacks its requests may use: those in its residency, in
    /// order; the others are named as skipped, so an operator sees residency hold.
    func fallbackNote(for policy: EffectivePolicy) -> String {
        guard let id = policy.cell, let cell = self.cells[id], !cell.fallback.isEmpty else { return "" }
        var usable: [String] = []
        var skipped: [String] = []
        for name in cell.fallback {
            guard let fallback = self.cells[name], fallback.kind == .pooled else { continue }
            if let residency = policy.residency, !residency.contains(fallback.region) {
                skipped.append("\(name) (\(fallback.region))")
            } else {
                usable.append("\(name) (\(fallback.region))")
            }
        }
        var note = "\n  Fallback cells when none of \(id)'s endpoints can serve: " + (usable.isEmpty ? "none" : usable.joined(separator: ", ")) + "."
        if !skipped.isEmpty { note += "\n  Skipped, outside the residency: " + skipped.joined(separator: ", ") + "." }
        return note
    }
}
