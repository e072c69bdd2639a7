import Hierarchy

/// One problem with a value an administrator sent or a change would cause, located by node
/// path and field (`branding.primaryColor`, `limits.rate`) like the compiler's own reports.
public struct FieldProblem: Sendable, Hashable {
    public var node: String
    public var field: String
    public var message: String

    public init(node: String, field: String, message: String) {
        self.node = node
        self.field = field
        self.message = message
    }

    var json: JSONValue {
        .object(["node": .string(self.node), "field": .string(self.field), "message": .string(self.message)])
    }
}

/// Every problem found in one value.
struct FieldProblems: Error {
    let list: [FieldProblem]
}

/// A node as the admin API shows and accepts it: the declaration as stored (what the node sets
/// itself, not what it inherits), with the field names of the tree file.
public enum NodeJSON {
    /// Fields a node's JSON may carry; `id`, `kind`, `parent` and `issuers` are read-only.
    static let readOnlyFields: Set<String> = ["id", "kind", "parent", "issuers"]
    static let writableFields: Set<String> = [
        "status", "features", "packages", "package", "addOns", "limits", "customerDefaults", "placement", "residency", "branding",
        "portalDomains", "origins", "partnerIssuerSelfService", "supportAccess", "masking",
    ]

    public static func encode(_ node: NodeSource) -> JSONValue {
        var members: [String: JSONValue] = ["id": .string(node.id), "kind": .string(node.kind.rawValue)]
        if let parent = node.parent { members["parent"] = .string(parent) }
        if let status = node.status { members["status"] = .string(status.rawValue) }
        if let features = node.features { members["features"] = .strings(features) }
        if !node.packages.isEmpty {
            members["packages"] = .object(Dictionary(node.packages.map { ($0.name, JSONValue.strings($0.features)) }, uniquingKeysWith: { a, _ in a }))
        }
        if let package = node.package { members["package"] = .string(package) }
        if !node.addOns.isEmpty { members["addOns"] = .strings(node.addOns) }
        if let limits = node.limits { members["limits"] = Self.encode(limits) }
        if let defaults = node.customerDefaults { members["customerDefaults"] = Self.encode(defaults) }
        if let placement = node.placement {
            var fields: [String: JSONValue] = [:]
            if let cell = placement.cell { fields["cell"] = .string(cell) }
            if let tier = placement.tier { fields["tier"] = .string(tier.rawValue) }
            if let region = placement.region { fields["region"] = .string(region) }
            members["placement"] = .object(fields)
        }
        if let residency = node.residency { members["residency"] = .strings(residency) }
        if let branding = node.branding {
            var fields: [String: JSONValue] = [:]
            for (field, value) in branding.values { fields[field.rawValue] = .string(value) }
            if !branding.locked.isEmpty { fields["locked"] = .strings(branding.locked.map(\.rawValue)) }
            members["branding"] = .object(fields)
        }
        if !node.portalDomains.isEmpty { members["portalDomains"] = .strings(node.portalDomains) }
        if let origins = node.origins { members["origins"] = .strings(origins) }
        if !node.issuers.isEmpty { members["issuers"] = .strings(node.issuers) }
        if let selfService = node.partnerIssuerSelfService { members["partnerIssuerSelfService"] = .bool(selfService) }
        if let support = node.supportAccess {
            var fields: [String: JSONValue] = [:]
            if let duration = support.maxDuration { fields["maxDuration"] = .string(SupportAccessPolicy.text(seconds: duration)) }
            if let approvers = support.approvers { fields["approvers"] = .strings(approvers.map(\.rawValue)) }
            members["supportAccess"] = .object(fields)
        }
        if !node.masking.isEmpty {
            members["masking"] = .array(node.masking.map { rule in
                var fields: [String: JSONValue] = ["fields": .strings(rule.fields)]
                if let route = rule.route { fields["route"] = .string(route) }
                if let roles = rule.roles { fields["roles"] = .strings(roles) }
                if let nonJSON = rule.nonJSON { fields["nonJSON"] = .string(nonJSON.rawValue) }
                return .object(fields)
            })
        }
        return .object(members)
    }

    static func encode(_ limits: Limits) -> JSONValue {
        var fields: [String: JSONValue] = [:]
        for (name, value) in limits.fields { if let value { fields[name] = .integer(Int64(value)) } }
        return .object(fields)
    }

    /// A strong validator of the node as stored: it changes exactly when the declaration does.
    public static func etag(_ node: NodeSource) -> String {
        Self.encode(node).etag
    }

    /// Reads the writable fields of `json` into a node with the given identity. Shape problems
    /// (types, unknown fields, names of statuses, tiers, branding fields, number ranges — the
    /// checks the tree file's reader makes) are reported field by field; everything that needs
    /// the whole tree is the compiler's.
    static func decode(
        _ json: JSONValue, id: String, kind: NodeKind, parent: String?, issuers: [String], label: String
    ) -> Result<NodeSource, FieldProblems> {
        var problems: [FieldProblem] = []
        func report(_ field: String, _ message: String) { problems.append(FieldProblem(node: label, field: field, message: message)) }
        guard let members = json.object else {
            return .failure(FieldProblems(list: [FieldProblem(node: label, field: "", message: "expected a JSON object")]))
        }
        var node = NodeSource(id: id, kind: kind, parent: parent, issuers: issuers)
        for key in members.keys.sorted() where !Self.writableFields.contains(key) && !Self.readOnlyFields.contains(key) {
            report(key, "unknown field (known: \(Self.writableFields.union(Self.readOnlyFields).sorted().joined(separator: ", ")))")
        }
        func strings(_ field: String) -> [String]? {
            guard let value = members[field] else { return nil }
            guard let items = value.array, items.allSatisfy({ $0.string != nil }) else {
                report(field, "expected a list of strings")
                return nil
            }
            return items.compactMap(\.string)
        }
        func string(_ field: String) -> String? {
            guard let value = members[field] else { return nil }
            guard let text = value.string else {
                report(field, "expected a string")
                return nil
            }
            return text
        }
        if let text = string("status") {
            if let status = TenantStatus(rawValue: text) { node.status = status } else { report("status", "must be 'active' or 'suspended', got '\(text)'") }
        }
        node.features = strings("features")
        if let value = members["packages"] {
            if let packages = value.object {
                for name in packages.keys.sorted() {
                    guard let items = packages[name]?.array, items.allSatisfy({ $0.string != nil }) else {
                        report("packages.\(name)", "expected a list of feature names")
                        continue
                    }
                    node.packages.append(PackageSource(name: name, features: items.compactMap(\.string)))
                }
            } else {
                report("packages", "expected an object of package names to feature lists")
            }
        }
        node.package = string("package")
        node.addOns = strings("addOns") ?? []
        node.limits = members["limits"].flatMap { Self.limits($0, field: "limits", report: report) }
        node.customerDefaults = members["customerDefaults"].flatMap { Self.limits($0, field: "customerDefaults", report: report) }
        if let value = members["placement"] {
            if let fields = value.object {
                var placement = PlacementSource()
                for key in fields.keys.sorted() {
                    guard let text = fields[key]?.string else {
                        report("placement.\(key)", "expected a string")
                        continue
                    }
                    switch key {
                    case "cell": placement.cell = text
                    case "region": placement.region = text
                    case "tier":
                        if let tier = PlacementSource.Tier(rawValue: text) { placement.tier = tier } else { report("placement.tier", "must be 'pooled' or 'dedicated', got '\(text)'") }
                    default: report("placement.\(key)", "unknown field (known: cell, region, tier)")
                    }
                }
                node.placement = placement
            } else {
                report("placement", "expected an object")
            }
        }
        node.residency = strings("residency")
        if let value = members["branding"] {
            if let fields = value.object {
                var branding = BrandingSource()
                for key in fields.keys.sorted() {
                    if key == "locked" {
                        guard let items = fields[key]?.array, items.allSatisfy({ $0.string != nil }) else {
                            report("branding.locked", "expected a list of branding field names")
                            continue
                        }
                        for name in items.compactMap(\.string) {
                            if let field = BrandingField(rawValue: name) { branding.locked.append(field) } else { report("branding.locked", "unknown branding field '\(name)'") }
                        }
                        continue
                    }
                    guard let field = BrandingField(rawValue: key) else {
                        report("branding.\(key)", "unknown branding field (known: \(BrandingField.allCases.map(\.rawValue).joined(separator: ", ")), locked)")
                        continue
                    }
                    guard let text = fields[key]?.string else {
                        report("branding.\(key)", "expected a string")
                        continue
                    }
                    branding.values[field] = text
                }
                node.branding = branding
            } else {
                report("branding", "expected an object")
            }
        }
        node.portalDomains = strings("portalDomains") ?? []
        node.origins = strings("origins")
        if let value = members["partnerIssuerSelfService"] {
            if case .bool(let selfService) = value { node.partnerIssuerSelfService = selfService } else { report("partnerIssuerSelfService", "expected true or false") }
        }
        if let value = members["supportAccess"], value != .null {
            if case .object(let fields) = value, Set(fields.keys).isSubset(of: ["maxDuration", "approvers"]) {
                var support = SupportAccessSource()
                if let duration = fields["maxDuration"] {
                    if let seconds = AdminEngine.seconds(duration), seconds > 0, seconds <= 7 * 24 * 3600 {
                        support.maxDuration = seconds
                    } else {
                        report("supportAccess.maxDuration", "a duration such as \"4h\" or \"30m\", at most 7 days")
                    }
                }
                if let approvers = fields["approvers"] {
                    let names = approvers.array?.compactMap(\.string) ?? []
                    let known = names.compactMap(SupportApprover.init(rawValue:))
                    if known.count == names.count, approvers.array?.count == names.count {
                        support.approvers = known
                    } else {
                        report("supportAccess.approvers", "a list of customer, partner, oem")
                    }
                }
                node.supportAccess = support
            } else {
                report("supportAccess", "expected {\"maxDuration\": …, \"approvers\": […]}")
            }
        }
        if let value = members["masking"] {
            node.masking = Self.maskingRules(value, report: report)
        }
        return problems.isEmpty ? .success(node) : .failure(FieldProblems(list: problems))
    }

    /// A node's masking rules: a list of `{route, fields, roles, nonJSON}` objects.
    private static func maskingRules(_ value: JSONValue, report: (String, String) -> Void) -> [MaskingRuleSource] {
        guard let items = value.array else {
            report("masking", "expected a list of rules")
            return []
        }
        var rules: [MaskingRuleSource] = []
        for (index, item) in items.enumerated() {
            let field = "masking[\(index)]"
            guard let members = item.object else {
                report(field, "expected an object")
                continue
            }
            for key in members.keys.sorted() where !["route", "fields", "roles", "nonJSON"].contains(key) {
                report("\(field).\(key)", "unknown field (known: fields, nonJSON, roles, route)")
            }
            func strings(_ key: String) -> [String]? {
                guard let items = members[key]?.array, items.allSatisfy({ $0.string != nil }) else { return nil }
                return items.compactMap(\.string)
            }
            guard let route = members["route"]?.string else {
                report("\(field).route", "expected the catalog route the rule masks")
                continue
            }
            guard let fields = strings("fields") else {
                report("\(field).fields", "expected a list of field names and JSON Pointers")
                continue
            }
            var roles: [String]?
            if members["roles"] != nil {
                roles = strings("roles")
                if roles == nil { report("\(field).roles", "expected a list of role kinds") }
            }
            var nonJSON: NonJSONResponses?
            if let text = members["nonJSON"] {
                nonJSON = text.string.flatMap(NonJSONResponses.init(rawValue:))
                if nonJSON == nil { report("\(field).nonJSON", "must be 'refuse' or 'pass'") }
            }
            rules.append(MaskingRuleSource(route: route, fields: fields, roles: roles, nonJSON: nonJSON))
        }
        return rules
    }

    /// The limits range of the tree file's reader, so a stored tree always reads back.
    static let limitRange: ClosedRange<Int64> = 1...1_000_000_000_000

    private static func limits(_ value: JSONValue, field: String, report: (String, String) -> Void) -> Limits? {
        guard let fields = value.object else {
            report(field, "expected an object")
            return nil
        }
        var values: [String: Int] = [:]
        let names = Limits().fields.map(\.name)
        for key in fields.keys.sorted() {
            guard names.contains(key) else {
                report("\(field).\(key)", "unknown field (known: \(names.joined(separator: ", ")))")
                continue
            }
            guard case .integer(let number) = fields[key] else {
                report("\(field).\(key)", "expected a whole number")
                continue
            }
            guard Self.limitRange.contains(number) else {
                report("\(field).\(key)", "must be between \(Self.limitRange.lowerBound) and \(Self.limitRange.upperBound), got \(number)")
                continue
            }
            values[key] = Int(number)
        }
        return Limits(ratePerSecond: values["rate"], burst: values["burst"], perDay: values["perDay"], perMonth: values["perMonth"], concurrency: values["concurrency"])
    }
}
