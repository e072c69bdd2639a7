/// Module dependencies: the catalog's `requires`, checked once as a graph (unknown names,
/// cycles) and then against every feature set the tree hands out — the catalog's packages, the
/// OEMs' packages, what each OEM and partner offers and what each customer ends up with. A node
/// never has a feature without everything that feature requires; a tree that would give one is
/// refused, naming the node and field that enabled the feature and, when an ancestor took the
/// requirement away, that ancestor too.
extension Compilation {
    /// The requirements of the catalog's valid features; reports unknown or repeated names and
    /// cycles (whose edges are left out, so the closure is still finite).
    mutating func compileRequirements(_ catalog: CatalogSource, features index: Catalog) -> FeatureRequirements {
        let issuesBefore = self.issues.count
        // A `requires` list is located where it was written, else at its feature.
        func location(_ key: String) -> SourceLocation {
            let feature = key.hasSuffix(".requires") ? String(key.dropLast(".requires".count)) : key
            return catalog.locations[key] ?? catalog.locations[feature] ?? catalog.locations["features"] ?? .unknown
        }
        var direct = [[Int]](repeating: [], count: index.features.count)
        // Where each valid feature's `requires` was written, for reports.
        var fieldOf: [Int: String] = [:]
        for (position, feature) in catalog.features.enumerated() {
            guard let required = catalog.requires[feature], let own = index.index(of: feature), fieldOf[own] == nil,
                catalog.features.firstIndex(of: feature) == position
            else { continue }
            let field = "features[\(position)].requires"
            fieldOf[own] = field
            var seen: Set<String> = []
            for name in required {
                if !seen.insert(name).inserted {
                    self.report(.catalog, field, "'\(name)' is listed twice", location(field))
                } else if name == feature {
                    self.report(.catalog, field, "'\(feature)' cannot require itself", location(field))
                } else if let requiredIndex = index.index(of: name) {
                    direct[own].append(requiredIndex)
                } else {
                    self.report(.catalog, field, "unknown feature '\(name)'", location(field))
                }
            }
        }
        for feature in catalog.requires.keys.sorted() where !catalog.features.contains(feature) {
            self.report(.catalog, "features", "requirements given for '\(feature)', which is not a feature of the catalog", location("features"))
        }

        // Cycles: depth first; an edge back into the current walk closes one. Reported once per
        // cycle found, at the feature of the cycle that comes first in the catalog.
        var state = [UInt8](repeating: 0, count: direct.count)  // 0 new, 1 on the walk, 2 done
        var walk: [Int] = []
        func visit(_ feature: Int, _ compilation: inout Compilation) {
            state[feature] = 1
            walk.append(feature)
            var kept: [Int] = []
            for next in direct[feature] {
                if state[next] == 1 {
                    let cycle = Array(walk[walk.firstIndex(of: next)!...])
                    let first = cycle.firstIndex(of: cycle.min()!)!
                    let ordered = Array(cycle[first...] + cycle[..<first])
                    let names = (ordered + [ordered[0]]).map { index.features[$0] }.joined(separator: " → ")
                    let field = fieldOf[ordered[0]] ?? "features"
                    compilation.report(.catalog, field, "requirements form a cycle: \(names)", location(field))
                    continue
                }
                kept.append(next)
                if state[next] == 0 { visit(next, &compilation) }
            }
            direct[feature] = kept
            walk.removeLast()
            state[feature] = 2
        }
        for feature in direct.indices where state[feature] == 0 { visit(feature, &self) }
        // A graph with a mistake is not checked against the tree: every package and node would
        // repeat it. The tree is rejected for the mistake itself.
        return self.issues.count == issuesBefore ? FeatureRequirements(direct: direct) : .none
    }

    /// ` (a → b → c)` when `feature` needs `requirement` only through others; empty when it
    /// names it itself.
    func requirementPath(_ feature: Int, _ requirement: Int) -> String {
        guard let chain = self.catalog.requirements.chain(from: feature, to: requirement), chain.count > 2 else { return "" }
        return " (" + chain.map { self.catalog.features[$0] }.joined(separator: " → ") + ")"
    }

    /// A package (the catalog's or an OEM's) must hold everything its features require: it is
    /// sold whole, so a customer on it could not otherwise have the features it names.
    mutating func checkPackageRequirements(_ set: FeatureSet, subject: IssueNode, field: String, location: SourceLocation) {
        let requirements = self.catalog.requirements
        guard !requirements.isSatisfied(by: set) else { return }
        for (feature, missing) in requirements.unmet(in: set) {
            let names = self.catalog.features
            self.report(subject, field, "'\(names[feature])' requires '\(names[missing])'\(self.requirementPath(feature, missing)), which the package does not include", location)
        }
    }

    /// What an OEM or partner offers (`features`) must hold what each offered feature requires.
    /// Only requirements its own list leaves out are its mistake: one its parent does not offer
    /// is reported on the parent.
    mutating func checkOfferedRequirements(_ allowed: FeatureSet, own: FeatureSet, subject: IssueNode, location: SourceLocation) {
        let requirements = self.catalog.requirements
        guard !requirements.isSatisfied(by: allowed) else { return }
        let names = self.catalog.features
        for (feature, missing) in requirements.unmet(in: allowed) where !own.contains(missing) {
            self.report(subject, "features", "'\(names[feature])' requires '\(names[missing])'\(self.requirementPath(feature, missing)), which the features offered here do not include", location)
        }
    }

    /// A customer's effective features must hold what each of them requires. A requirement its
    /// package or add-ons include but an ancestor does not offer names that ancestor (the
    /// highest one that took it away); one they leave out is the add-ons' mistake (a package
    /// that leaves one out is reported on the package itself).
    mutating func checkCustomerRequirements(
        effective: FeatureSet, subscribed: FeatureSet, addOns: FeatureSet, package: String?, path: NodePath, subject: IssueNode,
        location: (String) -> SourceLocation
    ) {
        let requirements = self.catalog.requirements
        guard !requirements.isSatisfied(by: effective) else { return }
        let names = self.catalog.features
        for (feature, missing) in requirements.unmet(in: effective) {
            let via = self.requirementPath(feature, missing)
            if subscribed.contains(missing) || addOns.contains(missing) {
                let remover = path.ids.dropLast().first { self.resolved[$0].map { !$0.allowed.contains(missing) } ?? false }
                let field = subscribed.contains(missing) ? "package" : "addOns"
                let text: IssueText
                if let remover {
                    text = "'\(names[feature])' requires '\(names[missing])'\(via), which \(node: self.reference(to: remover)) does not offer"
                } else {
                    text = "'\(names[feature])' requires '\(names[missing])'\(via), which is not offered here"
                }
                self.report(subject, field, text, location(field))
            } else if addOns.contains(feature), !subscribed.contains(feature) {
                let holders = package.map { "neither the package '\($0)' nor the add-ons include" } ?? "the add-ons do not include"
                self.report(subject, "addOns", "add-on '\(names[feature])' requires '\(names[missing])'\(via), which \(holders)", location("addOns"))
            }
        }
    }
}
