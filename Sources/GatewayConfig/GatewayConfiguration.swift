import Foundation
import Hierarchy

/// Everything the gateway serves with, read and validated in one step: the static settings and,
/// when they name one, the compiled tenant tree. `serve`, `check`, `explain` and every reload go
/// through `load`, so a file is judged the same way wherever it is read.
public struct GatewayConfiguration: Sendable {
    public let settings: GatewaySettings
    public let tenants: TenantSnapshot?
    /// The files this configuration was read from, for change detection.
    public let files: [String]

    public init(settings: GatewaySettings, tenants: TenantSnapshot?, files: [String]) {
        self.settings = settings
        self.tenants = tenants
        self.files = files
    }

    /// Reads the settings file, then the tenant tree it names, and compiles the tree. Every
    /// problem of the first file that has any is reported, with file, line and key path or node.
    public static func load(path: String) throws(ConfigurationError) -> GatewayConfiguration {
        let settings = try SettingsLoader.load(path: path)
        guard let treePath = settings.tenantTreePath else {
            return GatewayConfiguration(settings: settings, tenants: nil, files: [path])
        }
        let source = try TenantTreeLoader.load(path: treePath, cells: settings.cells)
        do {
            let snapshot = try TreeCompiler.compile(source)
            return GatewayConfiguration(settings: settings, tenants: snapshot, files: [path, treePath])
        } catch {
            throw ConfigurationError(source: treePath, issues: error.issues.map(Self.issue(from:)))
        }
    }

    static func issue(from tree: TreeIssue) -> ConfigurationIssue {
        let path = tree.field.isEmpty ? tree.node : "\(tree.node) \(tree.field)"
        return ConfigurationIssue(path: path, line: tree.location.line, column: tree.location.column, message: tree.message)
    }
}

/// The modification time, size and inode of a configuration's files, to notice a changed file
/// without reading it. A file replaced by rename (as editors and config management do) shows up
/// as a change too.
public struct FileFingerprint: Equatable, Sendable {
    private struct Stat: Equatable, Sendable {
        var modified: Date?
        var size: Int?
        var inode: UInt64?
    }

    private let entries: [String: Stat]

    public init(files: [String]) {
        var entries: [String: Stat] = [:]
        for file in files {
            let attributes = try? FileManager.default.attributesOfItem(atPath: file)
            entries[file] = Stat(
                modified: attributes?[.modificationDate] as? Date,
                size: (attributes?[.size] as? NSNumber)?.intValue,
                inode: (attributes?[.systemFileNumber] as? NSNumber)?.uint64Value
            )
        }
        self.entries = entries
    }
}
