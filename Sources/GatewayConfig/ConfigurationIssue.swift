import Hierarchy

/// One problem found in a configuration source, located precisely enough for an operator to fix
/// it without guessing: the key path (`cells[1].endpoints[0]`) and, when the source is a file, the
/// line and column.
public struct ConfigurationIssue: Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var column: Int?
    public var message: String
    /// The file the issue is in, when it differs from the error's own source (one load reads
    /// the settings file, the tenant tree and key files).
    public var file: String?
    /// The tree compiler's issue this one was made from, with the nodes it refers to still
    /// typed: the admin API builds each caller's message from it, naming only what that caller
    /// may see.
    public var treeIssue: TreeIssue?

    public init(path: String, line: Int? = nil, column: Int? = nil, message: String, file: String? = nil, treeIssue: TreeIssue? = nil) {
        self.path = path
        self.line = line
        self.column = column
        self.message = message
        self.file = file
        self.treeIssue = treeIssue
    }

    public var description: String {
        var location = ""
        if let line {
            location = "\(line):\(column ?? 1): "
        }
        let at = self.path.isEmpty ? "(document)" : self.path
        return "\(location)\(at): \(self.message)"
    }
}

/// The configuration was rejected. It carries every issue found, not just the first, so one
/// `check` run shows everything that needs fixing.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public var source: String
    public var issues: [ConfigurationIssue]

    public init(source: String, issues: [ConfigurationIssue]) {
        self.source = source
        self.issues = issues
    }

    public var description: String {
        let lines = self.issues.map { "\($0.file ?? self.source):\($0)" }
        return lines.joined(separator: "\n")
    }
}
