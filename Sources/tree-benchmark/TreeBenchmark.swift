import Foundation
import GatewayConfig
import Hierarchy

/// Generates a large tenant tree (OEMs × partners × customers), compiles it, and prints how
/// long that took and how much memory the process holds. `bench/tree-compile.sh` runs it on a
/// release build.
@main
struct TreeBenchmark {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst()
        let oems = arguments.first.flatMap(Int.init) ?? 100
        let partnersPerOEM = arguments.dropFirst().first.flatMap(Int.init) ?? 10
        let customersPerPartner = arguments.dropFirst(2).first.flatMap(Int.init) ?? 100
        let withYAML = arguments.contains("--yaml")
        // The catalog declares module dependencies unless told not to: with them every node's
        // feature set is checked against the requirements' closure (compare the two runs).
        let withRequirements = !arguments.contains("--no-requires")
        if let index = arguments.firstIndex(of: "--write-tree"), arguments.index(after: index) < arguments.endIndex {
            // The generated tree as a tenant-tree file, for bench/admin-write.sh.
            let source = makeTree(oems: oems, partnersPerOEM: partnersPerOEM, customersPerPartner: customersPerPartner, requirements: withRequirements)
            let text = TenantTreeWriter.yaml(TenantTreeDocument(tree: source, issuers: []))
            try text.write(toFile: arguments[arguments.index(after: index)], atomically: true, encoding: .utf8)
            return
        }

        let baseline = residentBytes()
        let source = makeTree(oems: oems, partnersPerOEM: partnersPerOEM, customersPerPartner: customersPerPartner, requirements: withRequirements)
        let customers = oems * partnersPerOEM * customersPerPartner
        print("tree: \(oems) OEMs × \(partnersPerOEM) partners × \(customersPerPartner) customers = \(customers) customers, \(source.nodes.count) nodes, \(source.catalog.requires.count) features with requirements")

        let sourceHeld = residentBytes()
        var start = DispatchTime.now().uptimeNanoseconds
        var snapshot: TenantSnapshot? = try TreeCompiler.compile(source)
        var best = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let held = residentBytes()
        let peak = peakResidentBytes()
        print(String(format: "compile run 1: %.3f s", best))
        print(String(format: "memory: source %.0f MiB, source + snapshot %.0f MiB resident, peak during the compile %.0f MiB (process baseline %.0f MiB)",
                     Double(sourceHeld) / 1_048_576, Double(held) / 1_048_576, Double(peak) / 1_048_576, Double(baseline) / 1_048_576))
        for run in 2...3 {
            snapshot = nil
            start = DispatchTime.now().uptimeNanoseconds
            snapshot = try TreeCompiler.compile(source)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = min(best, seconds)
            print(String(format: "compile run %d: %.3f s", run, seconds))
        }
        print(String(format: "compile (best of 3): %.3f s", best))

        // An admin change recompiles only what it touches: one customer, or one OEM's subtree.
        if let compiled = snapshot {
            func timeChange(_ name: String, _ id: String, _ edit: (inout NodeSource) -> Void) throws {
                guard let index = source.nodes.firstIndex(where: { $0.id == id }) else { return }
                var times: [Double] = []
                for run in 0..<7 {
                    var node = source.nodes[index]
                    edit(&node)
                    node.branding?.values[.supportUrl] = "https://support.example/\(run)"
                    var next = source
                    next.nodes[index] = node
                    let start = DispatchTime.now().uptimeNanoseconds
                    _ = try TreeCompiler.compile(next, reusing: compiled, changed: [node], removed: [])
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
                }
                times.sort()
                print(String(format: "incremental compile, %@: median %.1f ms, max %.1f ms (7 runs)", name, times[times.count / 2], times.last!))
            }
            let customer = "c-\(oems / 2)-\(partnersPerOEM / 2)-\(customersPerPartner / 2 + 1)"
            try timeChange("one customer's branding", customer) { $0.branding = BrandingSource(values: [.displayName: "Renamed"]) }
            try timeChange("one customer's package", customer) { node in
                node.package = "business"
                node.branding = BrandingSource()
            }
            try timeChange("one OEM's branding (\(partnersPerOEM * (1 + customersPerPartner)) nodes below)", "o-\(oems / 2)") { node in
                node.branding?.values[.displayName] = "OEM renamed"
            }
            try timeChange("one OEM's package", "o-\(oems / 2)") { node in
                node.packages = [PackageSource(name: "o-\(oems / 2)-basic", features: Array(source.catalog.features[0..<5]))]
            }
        }
        // What a node does with the document for a one-customer change besides compiling it:
        // derive the delta (writer), write and read it back, apply it to the document.
        do {
            let document = TenantTreeDocument(tree: source, issuers: [])
            let id = "c-\(oems / 2)-\(partnersPerOEM / 2)-\(customersPerPartner / 2 + 1)"
            let index = document.tree.nodes.firstIndex { $0.id == id }!
            var phases: [String: [Double]] = [:]
            func time<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
                let start = DispatchTime.now().uptimeNanoseconds
                defer { phases[name, default: []].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6) }
                return try body()
            }
            for run in 0..<7 {
                let changed = time("the changed document (a copy)") { () -> TenantTreeDocument in
                    var changed = document
                    changed.tree.nodes[index].branding = BrandingSource(values: [.displayName: "Run \(run)"])
                    return changed
                }
                let delta = time("the delta derived") { TreeDelta.between(document, changed, touching: [id])! }
                let text = time("the delta written") { delta.text }
                let read = try time("the delta read back") { try TreeDelta.parse(text, cells: []) }
                _ = try time("the delta applied to the document") { try read.apply(to: document) }
            }
            for (name, times) in phases.sorted(by: { $0.key < $1.key }) {
                print(String(format: "one-customer delta, %@: median %.1f ms", name, times.sorted()[times.count / 2]))
            }
        }
        let writeStart = DispatchTime.now().uptimeNanoseconds
        let written = TenantTreeWriter.yaml(TenantTreeDocument(tree: source, issuers: []))
        print(String(format: "the whole tree written as the store's text (%.1f MiB): %.2f s",
                     Double(written.utf8.count) / 1_048_576, Double(DispatchTime.now().uptimeNanoseconds - writeStart) / 1e9))

        // A lookup on the request path: one dictionary probe.
        let probe = try NodeID("c-\(oems - 1)-\(partnersPerOEM - 1)-\(customersPerPartner - 1)")
        let lookups = 1_000_000
        start = DispatchTime.now().uptimeNanoseconds
        var found = 0
        for _ in 0..<lookups where snapshot?.customer(probe) != nil { found += 1 }
        let perLookup = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(lookups)
        print(String(format: "customer lookup: %.0f ns (%d found)", perLookup, found))

        if withYAML {
            let yaml = makeYAML(source)
            start = DispatchTime.now().uptimeNanoseconds
            let parsed = try TenantTreeLoader.parse(yaml, source: "generated", cells: [
                .init(id: "pooled-eu-1", kind: .pooled, region: "eu-west", endpoints: [.init(host: "127.0.0.1", port: 1)]),
                .init(id: "pooled-us-1", kind: .pooled, region: "us-east", endpoints: [.init(host: "127.0.0.1", port: 1)]),
            ])
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print(String(format: "YAML (%.1f MiB) read into a tree source: %.3f s, %d nodes", Double(yaml.utf8.count) / 1_048_576, seconds, parsed.nodes.count))
        }
    }

    static func makeTree(oems: Int, partnersPerOEM: Int, customersPerPartner: Int, requirements: Bool = true) -> TreeSource {
        let features = (0..<24).map { "feature-\($0)" }
        // Requirements that every feature set of the tree below meets (they point to features
        // every set with the dependent holds): a chain, a shared base, a feature needing two.
        var requires: [String: [String]] = [:]
        if requirements {
            for index in 1...5 { requires[features[index]] = [features[index - 1]] }
            requires[features[13]] = [features[0]]
            requires[features[20]] = [features[1], features[2]]
        }
        let catalog = CatalogSource(
            features: features,
            packages: [
                PackageSource(name: "starter", features: Array(features[0..<6])),
                PackageSource(name: "business", features: Array(features[0..<14])),
                PackageSource(name: "enterprise", features: features),
            ],
            routes: features.enumerated().map { RouteSource(method: nil, pathPrefix: "/v1/\($0.element)", feature: $0.element, cost: 1 + $0.offset % 3) },
            requires: requires
        )
        var nodes: [NodeSource] = []
        nodes.reserveCapacity(oems * (1 + partnersPerOEM * (1 + customersPerPartner)))
        for o in 0..<oems {
            let oem = "o-\(o)"
            nodes.append(NodeSource(
                id: oem, kind: .oem, features: Array(features[0..<(16 + o % 8)]),
                packages: [PackageSource(name: "\(oem)-basic", features: Array(features[0..<4]))],
                limits: Limits(ratePerSecond: 100_000, burst: 200_000, perDay: 1_000_000_000, concurrency: 10_000),
                customerDefaults: Limits(ratePerSecond: 50, burst: 100, perDay: 100_000, concurrency: 20),
                placement: PlacementSource(tier: .pooled, region: o % 2 == 0 ? "eu-west" : "us-east"),
                residency: o % 2 == 0 ? ["eu-west"] : ["us-east", "eu-west"],
                branding: BrandingSource(values: [.displayName: "OEM \(o)", .logoUrl: "https://cdn.o\(o).example/logo.svg", .primaryColor: "#123456"], locked: [.logoUrl]),
                portalDomains: ["erp.o\(o).example"], origins: ["https://app.o\(o).example"], issuers: ["https://id.o\(o).example"]
            ))
            for p in 0..<partnersPerOEM {
                let partner = "p-\(o)-\(p)"
                nodes.append(NodeSource(
                    id: partner, kind: .partner, parent: oem, status: p == 7 ? .suspended : nil,
                    features: Array(features[0..<(12 + p % 4)]),
                    limits: Limits(ratePerSecond: 10_000, burst: 20_000, perDay: 100_000_000, concurrency: 1000),
                    branding: BrandingSource(values: [.displayName: "Partner \(o)-\(p)", .accentColor: "#abc"]),
                    portalDomains: ["portal.p\(o)-\(p).example"], issuers: ["https://id.p\(o)-\(p).example"]
                ))
                for c in 0..<customersPerPartner {
                    nodes.append(NodeSource(
                        id: "c-\(o)-\(p)-\(c)", kind: .customer, parent: partner,
                        package: c % 3 == 0 ? "\(oem)-basic" : (c % 3 == 1 ? "business" : "starter"),
                        addOns: c % 5 == 0 ? ["feature-13"] : [],
                        limits: c % 10 == 0 ? Limits(ratePerSecond: 200, burst: 400, perDay: 1_000_000, concurrency: 50) : nil,
                        branding: c % 4 == 0 ? BrandingSource(values: [.primaryColor: "#0f0f0f"]) : nil
                    ))
                }
            }
        }
        return TreeSource(
            catalog: catalog, nodes: nodes,
            cells: [CellDescriptor(id: "pooled-eu-1", kind: .pooled, region: "eu-west"), CellDescriptor(id: "pooled-us-1", kind: .pooled, region: "us-east")]
        )
    }

    /// The same tree as a tenant-tree document.
    static func makeYAML(_ source: TreeSource) -> String {
        let features = source.catalog.features.map { feature in
            source.catalog.requires[feature].map { "{ name: \(feature), requires: [\($0.joined(separator: ", "))] }" } ?? feature
        }
        var out = "catalog:\n  features: [\(features.joined(separator: ", "))]\n  packages:\n"
        for package in source.catalog.packages { out += "    \(package.name): [\(package.features.joined(separator: ", "))]\n" }
        out += "  routes:\n"
        for route in source.catalog.routes { out += "    - { path: \(route.pathPrefix), feature: \(route.feature ?? ""), cost: \(route.cost) }\n" }
        out += "tenants:\n"
        for node in source.nodes {
            out += "  - id: \(node.id)\n    kind: \(node.kind.rawValue)\n"
            if let parent = node.parent { out += "    parent: \(parent)\n" }
            if let package = node.package { out += "    package: \(package)\n" }
            if let features = node.features { out += "    features: [\(features.joined(separator: ", "))]\n" }
        }
        return out
    }

    static func residentBytes() -> Int { statusField("VmRSS:") }
    static func peakResidentBytes() -> Int { statusField("VmHWM:") }

    static func statusField(_ name: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
        }
        return 0
    }
}
