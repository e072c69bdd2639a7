/// A node an issue is about or refers to, as the compiler knew it: its path once the node was
/// placed in the tree, else its id as written (an unknown parent, a cycle, an id used twice), or
/// the catalog.
///
/// Issues keep these typed rather than spelled into the text, so that whoever shows an issue to
/// someone who may see only part of the tree decides for each node whether to name it.
public enum IssueNode: Sendable, Hashable, CustomStringConvertible {
    case path(NodePath)
    case id(String)
    case catalog

    public var description: String {
        switch self {
        case .path(let path): return path.description
        case .id(let id): return id.isEmpty ? "(unnamed)" : id
        case .catalog: return "catalog"
        }
    }
}

/// The text of an issue: literal text — which quotes values exactly as they were written — and
/// references to nodes, which are named only when the text is rendered.
///
/// Written as a string literal: `"'\(domain)' is already the portal domain of \(node: owner)"`.
/// Everything interpolated without the `node:` label is text, verbatim.
public struct IssueText: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringInterpolation {
    public enum Part: Sendable, Hashable {
        case text(String)
        case node(IssueNode)
    }

    public private(set) var parts: [Part]

    public init(parts: [Part]) {
        self.parts = parts
    }

    public init(stringLiteral value: String) {
        self.parts = [.text(value)]
    }

    public init(stringInterpolation: Interpolation) {
        self.parts = stringInterpolation.parts
    }

    public struct Interpolation: StringInterpolationProtocol {
        var parts: [Part] = []

        public init(literalCapacity: Int, interpolationCount: Int) {}

        public mutating func appendLiteral(_ literal: String) {
            self.parts.append(.text(literal))
        }

        public mutating func appendInterpolation(_ value: some CustomStringConvertible) {
            self.parts.append(.text(value.description))
        }

        public mutating func appendInterpolation(node: IssueNode) {
            self.parts.append(.node(node))
        }

        // A node spelt into the text could not be left unnamed for a reader who may not see it.
        @available(*, unavailable, message: "refer to a node with \\(node:)")
        public mutating func appendInterpolation(_ node: IssueNode) {}

        @available(*, unavailable, message: "refer to a node with \\(node: .path(…))")
        public mutating func appendInterpolation(_ path: NodePath) {}

        @available(*, unavailable, message: "refer to a node with \\(node: …)")
        public mutating func appendInterpolation(_ id: NodeID) {}

        /// Nodes separated by `separator`, each a reference of its own.
        public mutating func appendInterpolation(nodes: [IssueNode], separator: String) {
            for (index, node) in nodes.enumerated() {
                if index > 0 { self.parts.append(.text(separator)) }
                self.parts.append(.node(node))
            }
        }
    }

    public mutating func append(_ other: IssueText) {
        self.parts += other.parts
    }

    /// The nodes the text refers to, in order.
    public var nodes: [IssueNode] {
        self.parts.compactMap { part in
            if case .node(let node) = part { return node }
            return nil
        }
    }

    /// The text with every reference to `node` made a reference to `other` instead.
    public func replacing(_ node: IssueNode, with other: IssueNode) -> IssueText {
        IssueText(parts: self.parts.map { $0 == .node(node) ? .node(other) : $0 })
    }

    /// The text with each node named by `name`; literal text is kept exactly as it is.
    public func rendered(naming name: (IssueNode) -> String) -> String {
        self.parts.map { part in
            switch part {
            case .text(let text): return text
            case .node(let node): return name(node)
            }
        }.joined()
    }

    /// The text with every node named: for operators, who see the whole tree.
    public var description: String {
        self.rendered { $0.description }
    }
}

/// One reason a tenant tree was rejected, located by the node (its path, or its id when the path
/// cannot be known — an unknown parent, a cycle) and the field, plus the position in the document
/// when the tree came from one.
public struct TreeIssue: Error, Sendable, Hashable, CustomStringConvertible {
    public var subject: IssueNode
    /// `features`, `branding.logoUrl`, `limits.rate`, …; empty for the node as a whole.
    public var field: String
    public var text: IssueText
    /// For a value that must be unique in the whole tree (a portal domain, an issuer): the node
    /// that already holds it, which `text` refers to. Such an issue reads the same from either
    /// side, so it may be shown as the counterpart's, naming the subject instead — to a reader
    /// who can see only the counterpart.
    public var counterpart: IssueNode?
    public var location: SourceLocation

    public init(subject: IssueNode, field: String, text: IssueText, counterpart: IssueNode? = nil, location: SourceLocation = .unknown) {
        self.subject = subject
        self.field = field
        self.text = text
        self.counterpart = counterpart
        self.location = location
    }

    /// `acme/northwind/contoso`, an id, or `catalog`.
    public var node: String { self.subject.description }

    /// The text with every node named.
    public var message: String { self.text.description }

    public var description: String {
        let at = self.field.isEmpty ? self.node : "\(self.node) \(self.field)"
        return "\(at): \(self.message)"
    }
}

/// The whole tree was rejected: every issue found, in document order where known. Nothing of
/// the tree is used; the previous snapshot keeps serving.
public struct TreeValidationError: Error, Sendable, CustomStringConvertible {
    public var issues: [TreeIssue]

    public init(issues: [TreeIssue]) {
        self.issues = issues
    }

    public var description: String {
        self.issues.map(\.description).joined(separator: "\n")
    }
}
