import GatewayConfig
import Hierarchy
import Yams

/// `PUT /admin/v1/nodes/{id}/subtree`: a subtree in the tree file's format (what `GET` on the
/// same path exports) replaces the stored one — GitOps for a delegated administrator. Each node
/// that differs is authorized exactly as the single-node write that would make the same change;
/// the whole tree is then compiled as for any change.
extension AdminEngine {
    /// The export of a subtree: the catalog and every node at or below `root`.
    static func export(_ tree: StoredTree, root: NodePath) -> String {
        TenantTreeWriter.yaml(tree.document) { node in tree.node(node.id).map { root.contains($0.path) } ?? false }
    }
}

extension AdminEngine.Context {
    func applySubtree(_ root: (source: NodeSource, path: NodePath)) -> AdminOutcome {
        let current = AdminEngine.export(self.tree, root: root.path)
        let etag = JSONValue.string(current).etag
        if let problem = self.precondition(etag: etag) { return self.refuse(problem) }
        let label = root.path.description
        guard let text = String(validating: self.request.body, as: UTF8.self) else { return self.refuse(.malformedBody) }
        // Anchors and aliases could make a small document expand into a huge one while it is
        // read; a tree file never needs them.
        if Self.usesAnchorsOrAliases(text) {
            return self.refuse(.invalidChange, [FieldProblem(node: "(document)", field: "", message: "YAML anchors and aliases (&name, *name) are not accepted here")])
        }
        // Key material only inline and public: an uploaded document must not make the gateway
        // read its own files (`pemFile`), nor carry shared secrets.
        if let problem = Self.forbiddenKeyField(in: text) {
            return self.refuse(.invalidChange, [FieldProblem(node: label, field: problem, message: "keys are given inline as public keys (pem) here")])
        }
        let settings = self.tree.configuration.settings
        let uploaded: TenantTreeDocument
        do {
            uploaded = try TenantTreeLoader.parseDocument(text, source: "request", cells: settings.cells, baseDirectory: nil)
        } catch {
            // The reader's issues quote only the document the caller sent; the position is told
            // in the message, since a problem has no place of its own for it.
            return self.refuse(.invalidChange, error.issues.map { issue in
                let position = issue.line.map { line in " (line \(line)" + (issue.column.map { ", column \($0))" } ?? ")") } ?? ""
                return FieldProblem(node: "(document)", field: issue.path, message: issue.message + position)
            })
        }
        let stored = self.tree.document.tree.catalog
        let catalog = uploaded.tree.catalog
        guard catalog.declares(sameAs: stored) else {
            return self.refuse(.invalidChange, [FieldProblem(node: "(document)", field: "catalog", message: "the catalog is the platform's: send it unchanged, as exported")])
        }

        // Every uploaded node must hang below the root, the root itself in its place. Parents may
        // come after their children (the file allows any order): three rounds place every level.
        var paths: [String: NodePath] = [:]
        var problems: [FieldProblem] = []
        if let node = uploaded.tree.nodes.first(where: { $0.id == root.source.id }) {
            if node.kind == root.source.kind, node.parent == root.source.parent {
                paths[node.id] = root.path
            } else {
                problems.append(FieldProblem(node: label, field: "parent", message: "the root of the subtree keeps its kind and parent"))
            }
        }
        for _ in 0..<3 {
            for node in uploaded.tree.nodes where paths[node.id] == nil {
                if let parent = node.parent, let parentPath = paths[parent], let id = try? NodeID(node.id), let path = parentPath.appending(id) {
                    paths[node.id] = path
                }
            }
        }
        for node in uploaded.tree.nodes where paths[node.id] == nil && node.id != root.source.id {
            problems.append(FieldProblem(node: node.id, field: "parent", message: "not below \(label)"))
        }
        if paths[root.source.id] == nil, problems.isEmpty {
            problems.append(FieldProblem(node: label, field: "", message: "the subtree's root is missing"))
        }
        guard problems.isEmpty else { return self.refuse(.invalidChange, problems) }

        // What changes, node by node, and whether each change is the caller's to make.
        let before = self.tree.document.tree.nodes.filter { node in
            self.tree.node(node.id).map { root.path.contains($0.path) } ?? false
        }
        let beforeByID = Dictionary(before.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let afterIDs = Set(uploaded.tree.nodes.map(\.id))
        let issuers = { (document: TenantTreeDocument, id: String) in IssuerJSON.encode(document.issuers.filter { $0.node == id }) }
        var changes: [AuditRecord.FieldChange] = []
        for node in uploaded.tree.nodes {
            let path = paths[node.id]!
            let old = beforeByID[node.id]
            var nodeChanges = AuditRecord.diff(before: old.map(NodeJSON.encode), after: NodeJSON.encode(node)).filter { $0.field != "issuers" }
            var actions = Self.actions(for: nodeChanges)
            if old == nil {
                actions.insert(.createChild)
            }
            let oldIssuers = issuers(self.tree.document, node.id)
            let newIssuers = issuers(uploaded, node.id)
            if oldIssuers != newIssuers {
                actions.insert(.manageIssuers)
                nodeChanges.append(AuditRecord.FieldChange(
                    field: "issuers", before: IssuerJSON.summary(self.tree.document.issuers.filter { $0.node == node.id }),
                    after: IssuerJSON.summary(uploaded.issuers.filter { $0.node == node.id })
                ))
            }
            for action in actions {
                // A new node is created under its parent; what it is given is judged on itself.
                let target = action == .createChild ? path.parent : path
                if AdminAuthorization.decide(self.principal, action, target: target) != .allowed { return self.refuse(.actionForbidden) }
            }
            changes += nodeChanges.map { AuditRecord.FieldChange(field: "\(path) \($0.field)", before: $0.before, after: $0.after) }
        }
        for node in before where !afterIDs.contains(node.id) {
            let nodePath = self.tree.node(node.id)!.path
            if AdminAuthorization.decide(self.principal, .delete, target: nodePath) != .allowed { return self.refuse(.actionForbidden) }
            changes.append(AuditRecord.FieldChange(field: "\(nodePath)", before: NodeJSON.encode(node), after: nil))
        }
        guard !changes.isEmpty else {
            if self.isDryRun { return self.dryRun(.object(["changes": .array([])]), changes: []) }
            return .respond(.json(200, .object(["changes": .array([]), "revision": .integer(self.tree.revision)]), etag: etag))
        }

        // The new subtree in place of the old one; everything else as it was.
        var document = self.tree.document
        let first = document.tree.nodes.firstIndex { beforeByID[$0.id] != nil } ?? document.tree.nodes.count
        let kept = document.tree.nodes.enumerated().filter { beforeByID[$0.element.id] == nil }
        let keptBefore = kept.filter { $0.offset < first }.map(\.element)
        let keptAfter = kept.filter { $0.offset >= first }.map(\.element)
        document.tree.nodes = keptBefore + uploaded.tree.nodes + keptAfter
        document.issuers.removeAll { $0.node.map { beforeByID[$0] != nil } ?? false }
        document.issuers += uploaded.issuers

        return self.commit(
            document, touching: Set(beforeByID.keys).union(afterIDs), node: nil, path: root.path, action: .apply, changes: changes, status: 200,
            body: (.object(["changes": .array(changes.map(\.json))]), nil)
        )
    }

    /// Whether the text has an anchor or alias where YAML would read one: `&name` or `*name` at
    /// the start of a value or flow item. (A value such as `R&D` or `a=1&b=2` is not one.)
    static func usesAnchorsOrAliases(_ text: String) -> Bool {
        var previous: Character = "\n"
        var iterator = text.makeIterator()
        while let character = iterator.next() {
            if character == "&" || character == "*", " \t\n[{,:-".contains(previous) {
                var lookahead = iterator
                if let next = lookahead.next(), next.isLetter || next.isNumber || next == "_" { return true }
            }
            previous = character
        }
        return false
    }

    /// The first key of a key definition that names a file or a secret, if any.
    static func forbiddenKeyField(in text: String) -> String? {
        guard let root = try? Yams.compose(yaml: text) else { return nil }  // the loader reports the syntax
        func walk(_ node: Node) -> String? {
            switch node {
            case .mapping(let mapping):
                for (key, value) in mapping {
                    if let name = key.string, ["pemFile", "secretFile", "secret"].contains(name) { return name }
                    if let found = walk(value) { return found }
                }
            case .sequence(let sequence):
                for item in sequence { if let found = walk(item) { return found } }
            default:
                break
            }
            return nil
        }
        return walk(root)
    }
}
