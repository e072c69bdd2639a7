import GatewayConfig
import Hierarchy

/// The administrator a rejected change is explained to, and the problems told in its terms. Each
/// message is built from the compiler's typed issue: literal text (the administrator's own input,
/// quoted exactly as sent) and references to nodes, each named only if the administrator may see
/// that node. Nothing is rendered first and then redacted, so an id that happens to occur inside
/// a value (a package `sg` while an OEM `sg` exists) is never touched, and an answer is the same
/// whether or not some node outside the subtree exists.
struct ProblemAudience {
    /// What stands in a problem's `node` for a node the administrator may not see.
    static let hiddenNode = "(outside your subtree)"
    /// What stands in a message for a node the administrator may not see.
    static let hiddenReference = "a node outside your subtree"
    /// The whole message of a problem found on a node the administrator may not see (its text
    /// would quote that node's values), unless it is one the administrator's own node shares.
    static let hiddenNodeMessage = "a node outside your subtree does not validate with this change"

    /// The root of what the administrator sees; nil for the platform, which sees everything.
    let scope: NodePath?
    /// The changed document whose compilation failed.
    let document: TenantTreeDocument
    /// The declared parent of each node of the document, by id.
    private let parents: [String: String?]
    /// The paths of the document's nodes by id (a list: an id used twice is one of the problems).
    private let paths: [String: [NodePath]]

    init(scope: NodePath?, document: TenantTreeDocument) {
        self.scope = scope
        self.document = document
        self.parents = Dictionary(document.tree.nodes.map { ($0.id, $0.parent) }, uniquingKeysWith: { first, _ in first })
        var paths: [String: [NodePath]] = [:]
        for node in document.tree.nodes {
            if let path = Self.path(of: node, parents: self.parents) { paths[node.id, default: []].append(path) }
        }
        self.paths = paths
    }

    /// The path of `node` from the declared parents, if they make one.
    private static func path(of node: NodeSource, parents: [String: String?]) -> NodePath? {
        var ids = [node.id]
        var parent = node.parent
        while let id = parent, ids.count < 3 {
            ids.insert(id, at: 0)
            parent = parents[id] ?? nil
        }
        let valid = ids.compactMap { try? NodeID($0) }
        return valid.count == ids.count ? NodePath(valid) : nil
    }

    /// The administrator's own node and below, and its ancestors: those are on its own path,
    /// so naming them reveals nothing.
    func sees(_ path: NodePath) -> Bool {
        guard let scope = self.scope else { return true }
        return scope.contains(path) || path.contains(scope)
    }

    func sees(_ node: IssueNode) -> Bool {
        switch node {
        case .catalog: return true
        case .path(let path): return self.sees(path)
        // An id the compiler could not place: seen if a node of the document with that id is.
        case .id(let id): return self.paths[id]?.contains(where: self.sees) ?? (self.scope == nil)
        }
    }

    /// Every issue of a failed compilation, as this administrator may read it.
    func problems(_ issues: [ConfigurationIssue]) -> [FieldProblem] {
        issues.map { issue in
            if let tree = issue.treeIssue { return self.problem(tree) }
            return self.problem(reported: issue)
        }
    }

    func problem(_ issue: TreeIssue) -> FieldProblem {
        var subject = issue.subject
        var text = issue.text
        // A value that must be unique, held both by a node the administrator cannot see and by
        // one it can: told on the one it can, as taken by the other.
        if !self.sees(subject), let holder = issue.counterpart, self.sees(holder) {
            text = text.replacing(holder, with: subject)
            subject = holder
        }
        // Otherwise an issue about a node the administrator cannot see quotes that node's values:
        // it is told without them.
        guard self.sees(subject) else { return FieldProblem(node: Self.hiddenNode, field: issue.field, message: Self.hiddenNodeMessage) }
        return FieldProblem(node: subject.description, field: issue.field, message: text.rendered { self.sees($0) ? $0.description : Self.hiddenReference })
    }

    /// An issue of the tree file's reader (located by document position, `tenants[3].limits.rate`)
    /// or of the issuer checks, whose text quotes only the values of the node it is about.
    func problem(reported issue: ConfigurationIssue) -> FieldProblem {
        guard issue.path.hasPrefix("tenants["), let close = issue.path.firstIndex(of: "]"),
            let index = Int(issue.path[issue.path.index(issue.path.startIndex, offsetBy: 8)..<close]),
            self.document.tree.nodes.indices.contains(index)
        else {
            let parts = issue.path.split(separator: " ", maxSplits: 1)
            return FieldProblem(node: parts.first.map(String.init) ?? "", field: parts.count > 1 ? String(parts[1]) : "", message: issue.message)
        }
        let field = String(issue.path[issue.path.index(after: close)...].drop { $0 == "." })
        let node = self.document.tree.nodes[index]
        let path = Self.path(of: node, parents: self.parents)
        guard path.map(self.sees) ?? (self.scope == nil) else {
            return FieldProblem(node: Self.hiddenNode, field: field, message: Self.hiddenNodeMessage)
        }
        return FieldProblem(node: path?.description ?? node.id, field: field, message: issue.message)
    }
}
