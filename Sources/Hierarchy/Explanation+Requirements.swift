/// The dependency chain of `explain … feature.NAME`: every feature NAME requires (transitively),
/// and for each whether and where the node gets it — so "why is payroll off?" is answered with
/// the module it is missing as well as the node that withholds it.
extension TenantSnapshot {
    func requirements(
        of feature: Int, at subject: EffectivePolicy, path chain: [EffectivePolicy], declarations: [NodeSource]
    ) -> [Explanation.Requirement] {
        let requirements = self.catalog.requirements
        let declaration = declarations.last
        let package = subject.kind == .customer ? self.packageFeatures(of: subject) : nil
        return requirements.requirements(of: feature).map { required in
            let name = self.catalog.features[required]
            let route = (requirements.chain(from: feature, to: required) ?? [feature, required]).map { self.catalog.features[$0] }
            // The first node on the path that does not offer it: nodes below can only narrow.
            let withheldBy = chain.first { $0.kind != .customer && !$0.features.contains(required) }
            let enabled = subject.features.contains(required)
            let source: String
            if enabled {
                if subject.kind == .customer {
                    source = package?.contains(required) == true ? "package \(subject.package ?? "")" : "add-on"
                } else {
                    let offeredBy = zip(chain, declarations).reversed().first { $1.features?.contains(name) == true }?.0.path
                    source = offeredBy.map { "offered by \($0)" } ?? "offered (the whole catalog)"
                }
            } else if let withheldBy {
                source = "not offered by \(withheldBy.path)"
            } else if declaration?.addOns.contains(name) == true || package?.contains(required) == true {
                // Not reached in a compiled tree (only an ancestor takes a subscribed feature away).
                source = "in the package or add-ons, but off"
            } else {
                source = "not in the package or add-ons"
            }
            return Explanation.Requirement(feature: name, chain: route, enabled: enabled, source: source, withheldBy: enabled ? nil : withheldBy?.path)
        }
    }

    /// The features of the package a customer subscribes to: its OEM's own or a platform one.
    func packageFeatures(of customer: EffectivePolicy) -> FeatureSet? {
        guard let name = customer.package else { return nil }
        return self.state.resolved[customer.path.oem]?.oemPackages[name] ?? self.catalog.packages[name]
    }

    /// The sentence the summary ends with: that every requirement is met, or which are missing
    /// and who withholds them.
    static func requirementsNote(_ requirements: [Explanation.Requirement], feature: String, enabled: Bool) -> String {
        guard !requirements.isEmpty else { return "" }
        let missing = requirements.filter { !$0.enabled }
        let quoted = { (list: [Explanation.Requirement]) in list.map { "'\($0.feature)'" }.joined(separator: ", ") }
        if missing.isEmpty {
            return " It requires \(quoted(requirements)), which \(requirements.count == 1 ? "is" : "are") on \(enabled ? "as well" : "here")."
        }
        let reasons = missing.map { "'\($0.feature)' \($0.source)" }.joined(separator: ", ")
        if enabled {
            // A compiled tree never gets here; said plainly should it ever.
            return " It is missing \(quoted(missing)), which it requires: \(reasons)."
        }
        return " It also requires \(quoted(missing)), which \(missing.count == 1 ? "is" : "are") missing here (\(reasons)): enabling '\(feature)' here needs \(missing.count == 1 ? "it" : "them") too."
    }
}
