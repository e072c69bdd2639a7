import GatewayConfig
import Hierarchy

/// One revision of the tenant tree as the admin store holds it: the document (the tree file's
/// own format, read) and the configuration compiled from it under the current settings.
/// Immutable; a change makes a new one, which shares every untouched compiled part with this.
public struct StoredTree: Sendable {
    /// 0 for a tree that came from the file because the store could not be read yet.
    public let revision: Int64
    /// The id the commit of this revision drew (`StoreRevision`): with the number, what tells
    /// this tree from another one with the same number after a failover lost a commit.
    /// `StoreRevision.noID` for the file's tree.
    public internal(set) var commitID: String
    public let document: TenantTreeDocument
    public let configuration: GatewayConfiguration

    /// The text the document was read from, when it was read from one (the seed).
    private let readFrom: String?

    public init(
        revision: Int64, commitID: String = StoreRevision.noID, document: TenantTreeDocument, configuration: GatewayConfiguration, text: String? = nil
    ) {
        self.revision = revision
        self.commitID = commitID
        self.document = document
        self.configuration = configuration
        self.readFrom = text
    }

    /// The whole tree in the tree file's format: written on demand (a seed, a write-back, a
    /// compaction of the store's change log), since at 100,000 customers that takes seconds.
    public var text: String { self.readFrom ?? TenantTreeWriter.yaml(self.document) }

    /// Which revision of the store this is: number and id.
    public var storeRevision: StoreRevision { StoreRevision(number: self.revision, id: self.commitID) }

    /// The same tree, as the revision of the store whose commit drew `id`.
    public func identified(as id: String) -> StoredTree {
        var tree = self
        tree.commitID = id
        return tree
    }

    public var snapshot: TenantSnapshot? { self.configuration.tenants }

    /// The node's declaration and its path: a few dictionary lookups in the compiled snapshot,
    /// whether the node exists or not, and whether or not the caller may see it.
    func node(_ id: String) -> (source: NodeSource, path: NodePath)? {
        guard let nodeID = try? NodeID(id), let snapshot = self.snapshot, let source = snapshot.declaration(nodeID),
            let path = snapshot.policy(nodeID)?.path
        else { return nil }
        return (source, path)
    }

    /// Where a node known to exist sits in `document.tree.nodes`.
    func position(of id: String) -> Int {
        self.document.tree.nodes.firstIndex { $0.id == id }!
    }

    func children(of id: String) -> [NodeSource] {
        guard let nodeID = try? NodeID(id), let snapshot = self.snapshot else { return [] }
        return snapshot.children(of: nodeID).compactMap(snapshot.declaration)
    }

    /// This tree with `delta` applied, as revision `revision` (its id still to be set with
    /// `identified(as:)`): only what the delta touches is compiled again. Throws when the delta
    /// does not fit this tree or the result is invalid.
    public func applying(_ delta: TreeDelta, revision: Int64) throws -> StoredTree {
        let document = try delta.apply(to: self.document)
        let configuration = try GatewayConfiguration.assemble(
            tree: document, applying: delta, to: self.configuration, previousTree: self.document, treeSource: "admin store revision \(revision)"
        )
        return StoredTree(revision: revision, document: document, configuration: configuration)
    }

    /// The same tree compiled under the settings file at `settingsPath`, read anew (a reload:
    /// the cells, issuers or keys of the settings may have changed).
    public func recompiled(settingsPath: String) throws(ConfigurationError) -> StoredTree {
        let settings = try SettingsLoader.load(path: settingsPath)
        var document = self.document
        document.tree.cells = TenantTreeLoader.cellDescriptors(settings.cells)
        let source = self.revision == 0 ? "tenant-tree file" : "admin store revision \(self.revision)"
        let configuration = try GatewayConfiguration.assemble(settings: settings, settingsPath: settingsPath, tree: document, treeSource: source, treeFiles: [])
        return StoredTree(revision: self.revision, commitID: self.commitID, document: document, configuration: configuration)
    }

    /// A tree as the store holds it — the text of its last compaction and the deltas logged
    /// since — read and compiled once under the settings file at `settingsPath`.
    public static func read(text: String, deltas: [String], revision: Int64, settingsPath: String) throws -> StoredTree {
        let settings = try SettingsLoader.load(path: settingsPath)
        return try self.read(text: text, deltas: deltas, revision: revision, settings: settings, settingsPath: settingsPath)
    }

    public static func read(text: String, deltas: [String], revision: Int64, settings: GatewaySettings, settingsPath: String) throws -> StoredTree {
        guard !deltas.isEmpty else { return try self.read(text: text, revision: revision, settings: settings, settingsPath: settingsPath) }
        let source = "admin store revision \(revision)"
        var document = try TenantTreeLoader.parseDocument(text, source: source, cells: settings.cells)
        for delta in deltas {
            document = try TreeDelta.parse(delta, cells: settings.cells).apply(to: document)
        }
        let configuration = try GatewayConfiguration.assemble(settings: settings, settingsPath: settingsPath, tree: document, treeSource: source, treeFiles: [])
        return StoredTree(revision: revision, document: document, configuration: configuration)
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
        return StoredTree(revision: revision, document: document, configuration: configuration, text: text)
    }

    /// What a committed change writes to the store: the delta every node applies, or — when the
    /// change is not one (never, for the admin API's own changes) — the whole tree.
    enum Write: Sendable {
        case delta(String)
        case whole(String)
    }

    /// Compiles a changed document exactly as every gateway node will. `touched` names every node
    /// whose declaration or issuers may differ from this tree's. The delta is written as text and
    /// read back by the reader every node uses, applied to this tree and compiled incrementally;
    /// a rejected change is compiled again the way a whole stored tree is (written out, read
    /// back, compiled whole), so its problems are exactly those of a whole tree.
    func compile(_ document: TenantTreeDocument, touching touched: Set<String>, revision: Int64) -> Result<(tree: StoredTree, write: Write), CompileFailure> {
        let settings = self.configuration.settings
        let settingsPath = self.configuration.files.first ?? "settings"
        if let delta = TreeDelta.between(self.document, document, touching: touched) {
            let text = delta.text
            if let next = try? self.applying(TreeDelta.parse(text, cells: settings.cells), revision: revision) {
                return .success((next, .delta(text)))
            }
        }
        let text = TenantTreeWriter.yaml(document)
        do {
            return .success((try Self.read(text: text, revision: revision, settings: settings, settingsPath: settingsPath), .whole(text)))
        } catch {
            return .failure(CompileFailure(error, document: document))
        }
    }

    /// Compiles a changed document as a whole: written to text, read back by the tree file's
    /// reader, compiled by the one tree compiler, its issuers checked.
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
