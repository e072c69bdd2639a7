import GatewayConfig
import Hierarchy

/// One revision of the tenant tree as the admin store holds it: the text (the tree file's own
/// format), the document read from it, and the configuration compiled from it under the
/// current settings. Immutable; a change makes a new one.
public struct StoredTree: Sendable {
    /// 0 for a tree that came from the file because the store could not be read yet.
    public let revision: Int64
    public let text: String
    public let document: TenantTreeDocument
    public let configuration: GatewayConfiguration
    /// Each node's position in `document.tree.nodes` and its path, by id as written.
    private let index: [String: (position: Int, path: NodePath)]

    public init(revision: Int64, text: String, document: TenantTreeDocument, configuration: GatewayConfiguration) {
        self.revision = revision
        self.text = text
        self.document = document
        self.configuration = configuration
        var index: [String: (position: Int, path: NodePath)] = [:]
        for (position, node) in document.tree.nodes.enumerated() {
            if let id = try? NodeID(node.id), let path = configuration.tenants?.policy(id)?.path { index[node.id] = (position, path) }
        }
        self.index = index
    }

    public var snapshot: TenantSnapshot? { self.configuration.tenants }

    /// The node's declaration and its path: one dictionary lookup, whether the node exists or
    /// not, and whether or not the caller may see it.
    func node(_ id: String) -> (source: NodeSource, path: NodePath)? {
        guard let entry = self.index[id] else { return nil }
        return (self.document.tree.nodes[entry.position], entry.path)
    }

    /// Where a node known to exist sits in `document.tree.nodes`.
    func position(of id: String) -> Int {
        self.index[id]!.position
    }

    func children(of id: String) -> [NodeSource] {
        self.document.tree.nodes.filter { $0.parent == id }
    }

    /// A tree's text as the store holds it, read and compiled under the settings file at
    /// `settingsPath` (read anew: the settings may have been reloaded since).
    public static func read(text: String, revision: Int64, settingsPath: String) throws(ConfigurationError) -> StoredTree {
        let settings = try SettingsLoader.load(path: settingsPath)
        return try self.read(text: text, revision: revision, settings: settings, settingsPath: settingsPath)
    }

    public static func read(text: String, revision: Int64, settings: GatewaySettings, settingsPath: String) throws(ConfigurationError) -> StoredTree {
        let source = revision == 0 ? "tenant-tree file" : "admin store revision \(revision)"
        let document = try TenantTreeLoader.parseDocument(text, source: source, cells: settings.cells)
        let configuration = try GatewayConfiguration.assemble(settings: settings, settingsPath: settingsPath, tree: document, treeSource: source, treeFiles: [])
        return StoredTree(revision: revision, text: text, document: document, configuration: configuration)
    }

    /// Compiles a changed document exactly as every gateway node will: written to text, read
    /// back by the tree file's reader, compiled by the one tree compiler, its issuers checked.
    static func compile(
        _ document: TenantTreeDocument, revision: Int64, settings: GatewaySettings, settingsPath: String
    ) -> Result<StoredTree, CompileFailure> {
        do {
            return .success(try self.read(text: TenantTreeWriter.yaml(document), revision: revision, settings: settings, settingsPath: settingsPath))
        } catch {
            return .failure(CompileFailure(error, document: document))
        }
    }

    /// Why a changed document was rejected: every issue, and the document, to tell each
    /// administrator about them in its own terms (`ProblemAudience`).
    struct CompileFailure: Error {
        var issues: [ConfigurationIssue]
        var document: TenantTreeDocument

        init(_ error: ConfigurationError, document: TenantTreeDocument) {
            self.issues = error.issues
            self.document = document
        }
    }
}
