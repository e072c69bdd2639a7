/// One reason a tenant tree was rejected, located by the node's path (or id, when the path cannot
/// be known — an unknown parent, a cycle) and the field, plus the position in the document when
/// the tree came from one.
public struct TreeIssue: Error, Sendable, Hashable, CustomStringConvertible {
    /// `acme/northwind/contoso`, an id, or `catalog`.
    public var node: String
    /// `features`, `branding.logoUrl`, `limits.rate`, …; empty for the node as a whole.
    public var field: String
    public var message: String
    public var location: SourceLocation

    public init(node: String, field: String, message: String, location: SourceLocation = .unknown) {
        self.node = node
        self.field = field
        self.message = message
        self.location = location
    }

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
