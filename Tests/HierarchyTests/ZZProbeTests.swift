import Testing
import PropertyBased
@testable import Hierarchy

@Test func zzProbeStats() async {
    nonisolated(unsafe) var stats: [String: Int] = [:]
    await propertyCheck(count: 150, input: RandomTrees.partnerEdits) { edit in
        let s = edit.tree.source
        stats["trees", default: 0] += 1
        stats["nodes", default: 0] += s.nodes.count
        stats["locks", default: 0] += s.nodes.reduce(0) { $0 + ($1.branding?.locked.count ?? 0) }
        stats["dedicated", default: 0] += s.nodes.filter { $0.placement?.cell?.contains("dedicated") == true }.count
        stats["suspended", default: 0] += s.nodes.filter { $0.status == .suspended }.count
        stats["residency", default: 0] += s.nodes.filter { $0.residency != nil }.count
        stats["limits", default: 0] += s.nodes.filter { $0.limits != nil }.count
        stats["partnerFeatures", default: 0] += s.nodes.filter { $0.kind == .partner && $0.features != nil }.count
        stats["oemPacks", default: 0] += s.nodes.filter { !$0.packages.isEmpty }.count
        stats["origins", default: 0] += s.nodes.filter { $0.origins != nil }.count
        let a = try TreeCompiler.compile(s), b = try TreeCompiler.compile(edit.edited)
        let changedInside = a.nodeIDs.filter { a.policy($0)!.digest != b.policy($0)!.digest }.count
        stats["changedInside", default: 0] += changedInside
        let cells = Set(a.nodeIDs.compactMap { a.policy($0)!.cell })
        stats["distinctCells", default: 0] += cells.count
    }
    print("PROBE", stats.sorted { $0.key < $1.key })
}
