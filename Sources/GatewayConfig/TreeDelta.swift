import Hierarchy

/// One change to a tenant-tree document as the admin store logs it: the nodes that are new or
/// changed (with their issuers) and the ids of the nodes removed. Applied to the document the
/// change was made on, it gives the document after the change — node order included, so that
/// every gateway node holds the same document and exports the same text.
///
/// A delta is written as a short header and the changed nodes in the tree file's own format:
///
///     erp-gateway tree delta 1
///     removed: c-7 c-8
///     positions: 12 13
///     ---
///     catalog: …
///     tenants:
///       - id: …
///
/// `positions` are the changed nodes' places in the document after the change, in the order the
/// nodes are written. The nodes are read back by `TenantTreeLoader`, the reader of the tree file,
/// so a delta is held to the same shape rules as a whole tree; the catalog rides along so that
/// the reader can check the delta was made on the same catalog.
public struct TreeDelta: Sendable {
    public var nodes: [NodeSource]
    /// Each of `nodes`' position in the document after the change, ascending.
    public var positions: [Int]
    /// The issuers `nodes` register, in node order.
    public var issuers: [IssuerDefinition]
    public var removed: [String]
    /// The catalog the change was made on.
    public var catalog: CatalogSource

    public init(nodes: [NodeSource], positions: [Int], issuers: [IssuerDefinition], removed: [String], catalog: CatalogSource) {
        self.nodes = nodes
        self.positions = positions
        self.issuers = issuers
        self.removed = removed
        self.catalog = catalog
    }

    static let header = "erp-gateway tree delta 1"

    public struct Mismatch: Error, CustomStringConvertible {
        public let description: String
    }

    /// The delta from `before` to `after`, given every id whose node or issuers may differ
    /// (`touched`; an id in it that did not change costs a few bytes, nothing else). Nil when the
    /// two are not related by a delta: a changed catalog, an id twice in `after`, or nodes other
    /// than the touched ones that moved relative to each other.
    public static func between(_ before: TenantTreeDocument, _ after: TenantTreeDocument, touching touched: Set<String>) -> TreeDelta? {
        guard CatalogSource.sameCatalog(before.tree.catalog, after.tree.catalog) else { return nil }
        // A change touches a node or a few: comparing ids one by one beats hashing every id of a
        // 100,000-node tree three times (57 ms → a few, bench/tree-compile.sh).
        let few = Array(touched)
        let isTouched: (String) -> Bool = few.count <= 16 ? { id in few.contains(id) } : { id in touched.contains(id) }
        var nodes: [NodeSource] = []
        var positions: [Int] = []
        var seen: Set<String> = []
        for position in after.tree.nodes.indices where isTouched(after.tree.nodes[position].id) {
            let node = after.tree.nodes[position]
            guard seen.insert(node.id).inserted else { return nil }
            nodes.append(node)
            positions.append(position)
        }
        var removed: [String] = []
        for node in before.tree.nodes where isTouched(node.id) && !seen.contains(node.id) { removed.append(node.id) }
        // Every other node keeps its place relative to the others: that is what `apply` assumes.
        var index = 0
        for node in before.tree.nodes where !isTouched(node.id) {
            while index < after.tree.nodes.count, isTouched(after.tree.nodes[index].id) { index += 1 }
            guard index < after.tree.nodes.count, after.tree.nodes[index].id == node.id else { return nil }
            index += 1
        }
        while index < after.tree.nodes.count, isTouched(after.tree.nodes[index].id) { index += 1 }
        guard index == after.tree.nodes.count else { return nil }
        let issuers = after.issuers.filter { $0.node.map(seen.contains) ?? false }
        return TreeDelta(nodes: nodes, positions: positions, issuers: issuers, removed: removed, catalog: after.tree.catalog)
    }

    /// The ids whose node or issuers this delta replaces or removes.
    public var touched: Set<String> {
        Set(self.nodes.map(\.id)).union(self.removed)
    }

    /// Whether the delta registers, or removes the node of, any issuer in `document`: then the
    /// token verifier is built again.
    public func changesIssuers(of document: TenantTreeDocument) -> Bool {
        if !self.issuers.isEmpty { return true }
        let touched = self.touched
        return document.issuers.contains { $0.node.map(touched.contains) ?? false }
    }

    private func changesNoIssuers(of document: TenantTreeDocument) -> Bool {
        !self.changesIssuers(of: document)
    }

    // MARK: - Text

    public var text: String {
        var out = Self.header + "\n"
        out += "removed:" + self.removed.map { " " + $0 }.joined() + "\n"
        out += "positions:" + self.positions.map { " \($0)" }.joined() + "\n"
        out += "---\n"
        if !self.nodes.isEmpty {
            out += TenantTreeWriter.yaml(TenantTreeDocument(tree: TreeSource(catalog: self.catalog, nodes: self.nodes, cells: []), issuers: self.issuers))
        }
        return out
    }

    /// Reads a delta written by `text`. The nodes are read by the tree file's reader.
    public static func parse(_ text: String, cells: [GatewaySettings.Cell]) throws -> TreeDelta {
        var lines = text.split(separator: "\n", maxSplits: 4, omittingEmptySubsequences: false)
        guard lines.count >= 4, lines[0] == Self.header, lines[1].hasPrefix("removed:"), lines[2].hasPrefix("positions:"), lines[3] == "---" else {
            throw Mismatch(description: "not a tree delta")
        }
        let removed = lines[1].dropFirst("removed:".count).split(separator: " ").map(String.init)
        let positions = try lines[2].dropFirst("positions:".count).split(separator: " ").map { part -> Int in
            guard let position = Int(part), position >= 0 else { throw Mismatch(description: "bad position '\(part)'") }
            return position
        }
        let body = lines.count > 4 ? String(lines.removeLast()) : ""
        var nodes: [NodeSource] = []
        var issuers: [IssuerDefinition] = []
        var catalog: CatalogSource?
        if !body.isEmpty {
            let document = try TenantTreeLoader.parseDocument(body, source: "tree delta", cells: cells)
            nodes = document.tree.nodes
            issuers = document.issuers
            catalog = document.tree.catalog
        }
        guard nodes.count == positions.count, zip(positions, positions.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw Mismatch(description: "\(nodes.count) nodes for \(positions.count) positions")
        }
        return TreeDelta(nodes: nodes, positions: positions, issuers: issuers, removed: removed, catalog: catalog ?? CatalogSource(features: [], packages: [], routes: []))
    }

    // MARK: - Applying

    /// The document after this change. Throws when the delta does not fit the document (a
    /// removed id it does not hold, a position past its end, another catalog): the reader then
    /// loads the whole tree instead.
    public func apply(to document: TenantTreeDocument) throws(Mismatch) -> TenantTreeDocument {
        if !self.nodes.isEmpty, !CatalogSource.sameCatalog(self.catalog, document.tree.catalog) {
            throw Mismatch(description: "the delta was made on another catalog")
        }
        var result = document
        if self.removed.isEmpty, self.changesNoIssuers(of: document), zip(self.positions, self.nodes).allSatisfy({ position, node in
            position < document.tree.nodes.count && document.tree.nodes[position].id == node.id
        }) {
            // Changed in place (the common case: one node edited): the nodes stay where they are.
            for (position, node) in zip(self.positions, self.nodes) { result.tree.nodes[position] = node }
            return result
        }
        let replaced = Set(self.nodes.map(\.id))
        let removed = Set(self.removed)
        var kept: [NodeSource] = []
        kept.reserveCapacity(document.tree.nodes.count + self.nodes.count)
        var removedFound = 0
        for node in document.tree.nodes {
            if removed.contains(node.id) {
                removedFound += 1
            } else if !replaced.contains(node.id) {
                kept.append(node)
            }
        }
        guard removedFound == removed.count else { throw Mismatch(description: "the delta removes nodes the tree does not hold") }
        let total = kept.count + self.nodes.count
        guard self.positions.last.map({ $0 < total }) ?? true else { throw Mismatch(description: "a position past the end of the tree") }
        // One pass, merging the kept nodes (in their order) with the changed ones at their places.
        var nodes: [NodeSource] = []
        nodes.reserveCapacity(total)
        var next = 0
        var keptIndex = 0
        for position in 0..<total {
            if next < self.positions.count, self.positions[next] == position {
                nodes.append(self.nodes[next])
                next += 1
            } else {
                nodes.append(kept[keptIndex])
                keptIndex += 1
            }
        }
        result.tree.nodes = nodes
        if self.changesIssuers(of: document) {
            // Issuers in node order, as the tree file's reader lists them.
            let touched = self.touched
            var byNode = Dictionary(grouping: document.issuers.filter { !($0.node.map(touched.contains) ?? false) }, by: { $0.node ?? "" })
            for issuer in self.issuers { byNode[issuer.node ?? "", default: []].append(issuer) }
            var issuers = byNode[""] ?? []
            for node in nodes { if let registered = byNode[node.id] { issuers += registered } }
            result.issuers = issuers
        }
        return result
    }
}

extension CatalogSource {
    /// The same features, requirements, packages and routes, wherever they were written.
    static func sameCatalog(_ a: CatalogSource, _ b: CatalogSource) -> Bool {
        a.declares(sameAs: b)
    }
}
