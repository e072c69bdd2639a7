/// The catalog's module dependencies (`requires`), compiled once per catalog: for each feature,
/// the features it needs directly and every feature it needs transitively. Checking a node's
/// feature set against them is then a few word operations per feature that requires anything, so
/// 100,000 customers are checked without walking a dependency graph even once per node.
public struct FeatureRequirements: Sendable {
    /// Direct requirements by feature index, in the order they were declared.
    let direct: [[Int]]
    /// Transitive requirements by feature index (a feature never requires itself: cycles are
    /// catalog errors, and a catalog with one is never compiled into a snapshot).
    let closure: [FeatureSet]
    /// The features that require anything: the only members of a set that need checking.
    let dependents: FeatureSet

    /// No feature requires anything.
    public static let none = FeatureRequirements(direct: [])

    /// `direct` must be acyclic (the catalog compiler reports cycles and leaves their edges out).
    init(direct: [[Int]]) {
        self.direct = direct
        var closure = [FeatureSet?](repeating: nil, count: direct.count)
        // Depth first with memoization: each feature's closure is computed once.
        func close(_ feature: Int, visiting: inout Set<Int>) -> FeatureSet {
            if let known = closure[feature] { return known }
            var result = FeatureSet()
            if visiting.insert(feature).inserted {
                for required in direct[feature] where !visiting.contains(required) {
                    result.insert(required)
                    result = result.union(close(required, visiting: &visiting))
                }
                visiting.remove(feature)
            }
            closure[feature] = result
            return result
        }
        var visiting: Set<Int> = []
        self.closure = direct.indices.map { close($0, visiting: &visiting) }
        self.dependents = FeatureSet(indices: direct.indices.filter { !direct[$0].isEmpty })
    }

    public var isEmpty: Bool { self.dependents.isEmpty }

    /// Whether every feature of `set` has everything it requires in `set` too. The check every
    /// node's effective set passes; allocation-free, since it runs once per node of the tree.
    public func isSatisfied(by set: FeatureSet) -> Bool {
        set.allCommonMembers(with: self.dependents) { self.closure[$0].isSubset(of: set) }
    }

    /// Every feature `feature` requires, directly or not, ascending by catalog index.
    public func requirements(of feature: Int) -> [Int] {
        self.closure.indices.contains(feature) ? self.closure[feature].indices : []
    }

    /// The features `feature` directly requires, as declared.
    public func directRequirements(of feature: Int) -> [Int] {
        self.direct.indices.contains(feature) ? self.direct[feature] : []
    }

    /// The pairs (feature of `set`, requirement missing from `set`), in catalog order; empty
    /// when `set` satisfies every requirement. A missing requirement is told once, by the
    /// features nearest to it: not by `reports` when `inventory`, which `reports` requires, is in
    /// the set and lacks it too. For reports: only called once a check failed.
    public func unmet(in set: FeatureSet) -> [(feature: Int, missing: Int)] {
        var result: [(Int, Int)] = []
        for feature in set.intersection(self.dependents).indices {
            let between = self.closure[feature].intersection(set).indices
            for missing in self.closure[feature].subtracting(set).indices where !between.contains(where: { self.closure[$0].contains(missing) }) {
                result.append((feature, missing))
            }
        }
        return result
    }

    /// The shortest chain of direct requirements from `feature` to `requirement`, both included
    /// (`[payroll, hr]`, or `[a, b, c]` when `a` needs `c` through `b`); nil when there is none.
    public func chain(from feature: Int, to requirement: Int) -> [Int]? {
        guard self.direct.indices.contains(feature) else { return nil }
        var previous: [Int: Int] = [feature: feature]
        var queue = [feature]
        var head = 0
        while head < queue.count {
            let current = queue[head]
            head += 1
            if current == requirement { break }
            for next in self.direct[current] where previous[next] == nil {
                previous[next] = current
                queue.append(next)
            }
        }
        guard previous[requirement] != nil, requirement != feature else { return nil }
        var chain = [requirement]
        while let last = chain.last, last != feature { chain.append(previous[last]!) }
        return chain.reversed()
    }
}
