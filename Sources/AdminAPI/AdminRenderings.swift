import Hierarchy
import Quotas

/// The JSON the read endpoints answer with.
extension AdminEngine {
    static func effective(_ policy: EffectivePolicy, catalog: Catalog) -> JSONValue {
        var members: [String: JSONValue] = [
            "id": .string(policy.id.rawValue),
            "path": .string(policy.path.description),
            "kind": .string(policy.kind.rawValue),
            "status": .string(policy.status.rawValue),
            "features": .strings(catalog.names(policy.features)),
            "addOns": .strings(policy.addOns),
            "limits": .array(policy.limits.map { level in
                .object(["node": .string(level.node.rawValue), "kind": .string(level.kind.rawValue), "limits": NodeJSON.encode(level.limits)])
            }),
            "branding": .object(Dictionary(uniqueKeysWithValues: policy.branding.values.map { ($0.key.rawValue, JSONValue.string($0.value)) })),
            "portalDomains": .strings(policy.portalDomains),
            "origins": .strings(policy.origins),
            "partnerIssuerSelfService": .bool(policy.partnerIssuerSelfService),
            "supportAccess": .object([
                "maxDuration": policy.supportAccess.maxDuration.map { JSONValue.string(SupportAccessPolicy.text(seconds: $0)) } ?? .null,
                "maxDurationSetBy": policy.supportAccess.maxDurationSetBy.map { JSONValue.string($0.rawValue) } ?? .null,
                "approvers": .strings(SupportApprover.allCases.filter(policy.supportAccess.approvers.contains).map(\.rawValue)),
            ]),
        ]
        if let by = policy.suspendedBy { members["suspendedBy"] = .string(by.rawValue) }
        if let package = policy.package { members["package"] = .string(package) }
        if let cell = policy.cell { members["cell"] = .string(cell) }
        if let residency = policy.residency { members["residency"] = .strings(residency.sorted()) }
        return .object(members)
    }

    static func explanation(_ explanation: Explanation) -> JSONValue {
        var members: [String: JSONValue] = [
            "subject": .string(explanation.subject.description),
            "attribute": .string(explanation.attribute),
            "value": .string(explanation.value),
            "summary": .string(explanation.summary),
            "steps": .array(explanation.steps.map { step in
                .object(["node": .string(step.node.description), "declared": step.declared.map(JSONValue.string) ?? .null, "effective": .string(step.effective)])
            }),
        ]
        members["decidedBy"] = explanation.decidedBy.map { .string($0.description) } ?? .null
        if explanation.attribute.hasPrefix("feature.") {
            // The dependency chain: each required feature, how it is reached, and where the node gets it.
            members["requires"] = .array(explanation.requirements.map { requirement in
                .object([
                    "feature": .string(requirement.feature), "chain": .strings(requirement.chain), "enabled": .bool(requirement.enabled),
                    "source": .string(requirement.source), "withheldBy": requirement.withheldBy.map { .string($0.description) } ?? .null,
                ])
            })
        }
        if explanation.attribute == "masking" {
            // Each rule that reaches the node, and whose it is (null: the catalog route's).
            members["masks"] = .array(explanation.masks.map { mask in
                .object([
                    "route": .string(mask.route), "fields": .strings(mask.fields), "roles": mask.roles.map { .strings($0) } ?? .null,
                    "nonJSON": .string(mask.passesNonJSON ? "pass" : "refuse"), "declaredBy": mask.declaredBy.map { .string($0.description) } ?? .null,
                ])
            })
        }
        return .object(members)
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` for a second since the Unix epoch (ISO 8601, UTC; an instant
    /// before 1970 is written as the epoch).
    static func isoSecond(_ second: Int64) -> String {
        let instant = max(0, second)
        let day = UTCCalendarPeriod(now: instant * 1_000_000)
        let intoDay = Int(instant % 86_400)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(day.year, 4))-\(pad(day.month, 2))-\(pad(day.day, 2))T\(pad(intoDay / 3600, 2)):\(pad(intoDay / 60 % 60, 2)):\(pad(intoDay % 60, 2))Z"
    }

    /// `yyyymmdd` for a `YYYY-MM-DD` query value; nil for anything else.
    static func dayStamp(_ text: String) -> String? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            parts.allSatisfy({ $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let month = Int(parts[1]), let day = Int(parts[2]), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        return parts.joined()
    }

    /// The usage endpoint's answer: each customer's counts for the day, and their sum.
    public static func usageResponse(_ rows: [(path: NodePath, day: UsageMeter.Day)], day: String) -> AdminResponse {
        let iso = "\(day.prefix(4))-\(day.dropFirst(4).prefix(2))-\(day.suffix(2))"
        func counts(_ requests: Int, _ cost: Int, _ refused: Int) -> [String: JSONValue] {
            ["requests": .integer(Int64(requests)), "cost": .integer(Int64(cost)), "refused": .integer(Int64(refused))]
        }
        let customers = rows.map { row in
            JSONValue.object(counts(row.day.requests, row.day.cost, row.day.refused).merging(["customer": .string(row.path.description)]) { a, _ in a })
        }
        let total = counts(rows.map(\.day.requests).reduce(0, +), rows.map(\.day.cost).reduce(0, +), rows.map(\.day.refused).reduce(0, +))
        return .json(200, .object(["day": .string(iso), "customers": .array(customers), "total": .object(total)]))
    }

    /// The audit endpoint's answer: the newest records first, those about `subtree` only.
    public static func auditResponse(_ records: [AuditRecord], subtree: NodePath) -> AdminResponse {
        .json(200, .object(["entries": .array(records.filter { subtree.contains($0.node) }.map(\.json))]))
    }
}
