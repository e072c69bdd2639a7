import Foundation
import Hierarchy
import TokenAuth

/// Everything the gateway serves with, read and validated in one step: the static settings and,
/// when they name one, the compiled tenant tree. `serve`, `check`, `explain` and every reload go
/// through `load`, so a file is judged the same way wherever it is read.
///
/// A class of immutable fields: every request holds the configuration it runs with (its decoded
/// request, its tenant access), and as a value each of those copies retained and released
/// every field (about 1.4 % of the full pipeline's samples, `bench/profile.sh full`).
public final class GatewayConfiguration: Sendable {
    public let settings: GatewaySettings
    public let tenants: TenantSnapshot?
    /// With a tenant tree: the token verifier for every platform and tree issuer.
    public let authentication: AuthenticationConfiguration?
    /// With an admin API: the verifier of admin tokens (never used on the data plane).
    public let adminVerifier: TokenVerifier?
    /// The files this configuration was read from, for change detection.
    public let files: [String]
    /// The TLS client context of every cell with `https://` endpoints, by cell id.
    public let upstreamTLS: [String: UpstreamTLSContext]
    /// `settings.timeouts` in whole milliseconds, read once. A `Duration`'s `components` take a
    /// 128-bit division, and every proxied request read three to five timeouts: 0.38 % of a
    /// proxy-only profile's samples (`bench/profile.sh proxy`).
    public let timeoutMilliseconds: TimeoutMilliseconds
    /// The default cell, found once rather than by name on every request without a tenant.
    public let defaultCell: GatewaySettings.Cell?

    /// `upstreamTLS` must hold a context for every cell with `tls`; `load` and `assemble` build
    /// them (`UpstreamTLSContext.cache`).
    public init(
        settings: GatewaySettings, tenants: TenantSnapshot?, authentication: AuthenticationConfiguration? = nil, adminVerifier: TokenVerifier? = nil,
        files: [String], upstreamTLS: [String: UpstreamTLSContext] = [:]
    ) {
        self.upstreamTLS = upstreamTLS
        self.settings = settings
        self.timeoutMilliseconds = TimeoutMilliseconds(settings.timeouts)
        self.defaultCell = settings.cell(named: settings.defaultCell)
        self.tenants = tenants
        self.authentication = authentication
        self.adminVerifier = adminVerifier
        self.files = files
    }

    /// Reads the settings file, then the tenant tree it names, and compiles the tree. Every
    /// problem of the first file that has any is reported, with file, line and key path or node.
    public static func load(path: String) throws(ConfigurationError) -> GatewayConfiguration {
        let settings = try SettingsLoader.load(path: path)
        guard let treePath = settings.tenantTreePath else {
            // Platform issuers are checked even without a tree, so `check` catches a bad key.
            let authentication = settings.dataPlaneIssuers.isEmpty ? nil : try AuthenticationConfiguration.compile(
                platform: settings.dataPlaneIssuers, tree: [], settings: settings.authentication, settingsPath: path, treePath: nil
            )
            return GatewayConfiguration(
                settings: settings, tenants: nil, authentication: authentication,
                files: [path] + AuthenticationConfiguration.keyFiles(settings.platformIssuers) + Self.tlsFiles(settings) + (settings.listener.tls?.files ?? []) + (settings.admin?.listener.tls?.files ?? []) + settings.secretFiles,
                upstreamTLS: try UpstreamTLSContext.cache.contexts(for: settings.cells, settingsPath: path)
            )
        }
        let document = try TenantTreeLoader.loadDocument(path: treePath, cells: settings.cells)
        return try self.assemble(settings: settings, settingsPath: path, tree: document, treeSource: treePath, treeFiles: [treePath])
    }

    /// Compiles `document` under `settings`: the one path from a tree to a configuration, for
    /// the tree file and for the admin store's tree alike. `treeFiles` are watched for changes
    /// (none for a stored tree: the store announces its own changes).
    public static func assemble(
        settings: GatewaySettings, settingsPath: String, tree document: TenantTreeDocument, treeSource: String, treeFiles: [String]
    ) throws(ConfigurationError) -> GatewayConfiguration {
        let snapshot: TenantSnapshot
        do {
            snapshot = try TreeCompiler.compile(document.tree)
        } catch {
            throw ConfigurationError(source: treeSource, issues: error.issues.map(Self.issue(from:)))
        }
        let authentication = try AuthenticationConfiguration.compile(
            platform: settings.dataPlaneIssuers, tree: document.issuers, settings: settings.authentication, settingsPath: settingsPath, treePath: treeSource
        )
        let adminVerifier = try settings.admin.map { admin throws(ConfigurationError) in
            try AuthenticationConfiguration.adminVerifier(admin, settings: settings.authentication, settingsPath: settingsPath)
        }
        let keyFiles = AuthenticationConfiguration.keyFiles(settings.platformIssuers + document.issuers + (settings.admin?.issuers ?? []))
        return GatewayConfiguration(
            settings: settings, tenants: snapshot, authentication: authentication, adminVerifier: adminVerifier,
            files: [settingsPath] + treeFiles + keyFiles + Self.tlsFiles(settings) + (settings.listener.tls?.files ?? []) + (settings.admin?.listener.tls?.files ?? []) + settings.secretFiles,
            upstreamTLS: try UpstreamTLSContext.cache.contexts(for: settings.cells, settingsPath: settingsPath)
        )
    }

    /// `document` is `previous`'s tree with `delta` applied: compiles only what the delta touches
    /// (`TreeCompiler.compile(_:reusing:changed:removed:)`) and keeps everything else of
    /// `previous` — settings, admin verifier, cell TLS — as it is; the token verifier is built
    /// again only when the delta touches an issuer. Same result, same errors as `assemble`.
    public static func assemble(
        tree document: TenantTreeDocument, applying delta: TreeDelta, to previous: GatewayConfiguration, previousTree: TenantTreeDocument,
        treeSource: String
    ) throws(ConfigurationError) -> GatewayConfiguration {
        let settingsPath = previous.files.first ?? "settings"
        guard let tenants = previous.tenants else {
            return try self.assemble(settings: previous.settings, settingsPath: settingsPath, tree: document, treeSource: treeSource, treeFiles: [])
        }
        let snapshot: TenantSnapshot
        do {
            snapshot = try TreeCompiler.compile(document.tree, reusing: tenants, changed: delta.nodes, removed: Set(delta.removed))
        } catch {
            throw ConfigurationError(source: treeSource, issues: error.issues.map(Self.issue(from:)))
        }
        let settings = previous.settings
        var authentication = previous.authentication
        var files = previous.files
        if delta.changesIssuers(of: previousTree) {
            authentication = try AuthenticationConfiguration.compile(
                platform: settings.dataPlaneIssuers, tree: document.issuers, settings: settings.authentication, settingsPath: settingsPath, treePath: treeSource
            )
            let keyFiles = AuthenticationConfiguration.keyFiles(settings.platformIssuers + document.issuers + (settings.admin?.issuers ?? []))
            files = [settingsPath] + keyFiles + Self.tlsFiles(settings) + (settings.listener.tls?.files ?? []) + (settings.admin?.listener.tls?.files ?? []) + settings.secretFiles
        }
        return GatewayConfiguration(
            settings: settings, tenants: snapshot, authentication: authentication, adminVerifier: previous.adminVerifier, files: files,
            upstreamTLS: previous.upstreamTLS
        )
    }

    /// The CA bundles, client certificates and keys the cells' `tls` blocks name: replacing one
    /// (a renewed client certificate, a new CA) is picked up like a change to the settings.
    static func tlsFiles(_ settings: GatewaySettings) -> [String] {
        var seen: Set<String> = []
        return settings.cells.flatMap { $0.tls?.files ?? [] }.filter { seen.insert($0).inserted }
    }

    static func issue(from tree: TreeIssue) -> ConfigurationIssue {
        let path = tree.field.isEmpty ? tree.node : "\(tree.node) \(tree.field)"
        return ConfigurationIssue(path: path, line: tree.location.line, column: tree.location.column, message: tree.message, treeIssue: tree)
    }
}

extension GatewaySettings {
    /// Files of secrets the settings read besides key files: the key-encryption key of uploaded
    /// certificates. Watched, so a replaced key applies like a replaced public key.
    var secretFiles: [String] {
        (self.certificateUploads.map { [$0.keyEncryptionKeyFile] } ?? []) + (self.supportAccess.map { [$0.signingKeyFile] } ?? [])
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

/// The compiled token verifier (every key parsed once into an OpenSSL key) and which issuers
/// belong to the platform — those may speak for any customer; every other issuer only for the
/// subtree of the node it is registered on.
public struct AuthenticationConfiguration: Sendable {
    public let verifier: TokenVerifier
    public let platformIssuers: Set<String>
    /// Verified tokens each event loop keeps.
    public let cacheCapacity: Int
    /// The issuers whose keys are fetched from their identity providers, for the process's
    /// fetcher; the verifier takes their keys from what it publishes.
    public let fetchedIssuers: [FetchedIssuer]

    public init(verifier: TokenVerifier, platformIssuers: Set<String>, cacheCapacity: Int, fetchedIssuers: [FetchedIssuer] = []) {
        self.verifier = verifier
        self.platformIssuers = platformIssuers
        self.cacheCapacity = cacheCapacity
        self.fetchedIssuers = fetchedIssuers
    }

    static func compile(
        platform: [IssuerDefinition], tree: [IssuerDefinition], settings: GatewaySettings.Authentication, settingsPath: String, treePath: String?
    ) throws(ConfigurationError) -> AuthenticationConfiguration {
        var issues: [ConfigurationIssue] = []
        var policies: [IssuerPolicy] = []
        var registered: [String: IssuerDefinition] = [:]
        var fetched: [FetchedIssuer] = []
        for definition in platform + tree {
            let file = definition.node == nil ? settingsPath : (treePath ?? settingsPath)
            if let first = registered[definition.issuer] {
                let where_ = first.node.map { "on node '\($0)'" } ?? "in platformIssuers"
                issues.append(ConfigurationIssue(
                    path: definition.path, line: definition.line, message: "issuer '\(definition.issuer)' is already registered \(where_)", file: file
                ))
                continue
            }
            registered[definition.issuer] = definition
            var keys: [VerificationKey] = []
            for key in definition.keys {
                guard let algorithm = SigningAlgorithm(rawValue: key.algorithm) else {
                    let known = SigningAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")
                    issues.append(ConfigurationIssue(path: key.path, line: key.line, message: "unknown algorithm '\(key.algorithm)' (one of \(known))", file: file))
                    continue
                }
                do {
                    switch key.material {
                    case .publicKeyPEM(let pem): keys.append(try VerificationKey(kid: key.kid, algorithm: algorithm, pem: pem))
                    case .secret(let secret): keys.append(try VerificationKey(kid: key.kid, algorithm: algorithm, secret: secret))
                    }
                } catch {
                    issues.append(ConfigurationIssue(path: key.path, line: key.line, message: "key '\(key.kid)': \(error)", file: file))
                }
            }
            var keySource = IssuerPolicy.KeySource.configured
            if definition.keySource != .configured {
                var pinned: Set<SigningAlgorithm> = []
                for name in definition.algorithms {
                    guard let algorithm = SigningAlgorithm(rawValue: name), algorithm.isAsymmetric else {
                        let known = SigningAlgorithm.allCases.filter(\.isAsymmetric).map(\.rawValue).joined(separator: ", ")
                        issues.append(ConfigurationIssue(
                            path: definition.path, line: definition.line, message: "unknown algorithm '\(name)' for fetched keys (one of \(known))", file: file
                        ))
                        continue
                    }
                    pinned.insert(algorithm)
                }
                keySource = .fetched(algorithms: pinned)
                fetched.append(FetchedIssuer(issuer: definition.issuer, source: definition.keySource, algorithms: pinned))
            }
            do {
                policies.append(try IssuerPolicy(
                    issuer: definition.issuer, audience: definition.audience, maxLifetimeSeconds: definition.maxLifetime.components.seconds,
                    clockSkewSeconds: definition.clockSkew.components.seconds, tenantClaim: definition.tenantClaim, keys: keys, keySource: keySource
                ))
            } catch {
                issues.append(ConfigurationIssue(path: definition.path, line: definition.line, message: "issuer '\(definition.issuer)': \(error)", file: file))
            }
        }
        guard issues.isEmpty else {
            throw ConfigurationError(source: issues[0].file ?? settingsPath, issues: issues)
        }
        do {
            let verifier = try TokenVerifier(issuers: policies, maxTokenBytes: settings.maxTokenBytes)
            return AuthenticationConfiguration(
                verifier: verifier, platformIssuers: Set(platform.map(\.issuer)), cacheCapacity: settings.tokenCacheEntries, fetchedIssuers: fetched
            )
        } catch {
            // Duplicates were reported above; anything else is a bug worth seeing verbatim.
            throw ConfigurationError(source: settingsPath, issues: [ConfigurationIssue(path: "authentication", message: "\(error)")])
        }
    }

    /// Admin tokens carry their role in `admin.roleClaim`; the verifier requires that claim
    /// where the data plane requires the tenant claim, so a token without a role never verifies.
    static func adminVerifier(
        _ admin: GatewaySettings.Admin, settings: GatewaySettings.Authentication, settingsPath: String
    ) throws(ConfigurationError) -> TokenVerifier {
        let issuers = admin.issuers.map { issuer in
            var issuer = issuer
            issuer.tenantClaim = admin.roleClaim
            return issuer
        }
        try self.checkAdminKeySources(issuers, settingsPath: settingsPath)
        return try self.compile(platform: issuers, tree: [], settings: settings, settingsPath: settingsPath, treePath: nil).verifier
    }

    /// Admin tokens are checked with configured keys only: the admin API must keep working when
    /// an identity provider does not.
    static func checkAdminKeySources(_ issuers: [IssuerDefinition], settingsPath: String) throws(ConfigurationError) {
        if let fetched = issuers.first(where: { $0.keySource != .configured }) {
            throw ConfigurationError(source: settingsPath, issues: [ConfigurationIssue(
                path: fetched.path, line: fetched.line, message: "admin issuers take configured keys (keys), not jwksUri or discovery", file: settingsPath
            )])
        }
    }

    /// The key files the issuers were read from: a change to one is a configuration change.
    static func keyFiles(_ definitions: [IssuerDefinition]) -> [String] {
        definitions.flatMap { $0.keys.compactMap(\.file) }
    }
}

/// An issuer whose keys come from its identity provider, as the fetcher needs it.
public struct FetchedIssuer: Sendable, Hashable {
    public let issuer: String
    public let source: IssuerDefinition.KeySource
    /// The pinned algorithms: only keys for these are ever used.
    public let algorithms: Set<SigningAlgorithm>

    public init(issuer: String, source: IssuerDefinition.KeySource, algorithms: Set<SigningAlgorithm>) {
        self.issuer = issuer
        self.source = source
        self.algorithms = algorithms
    }
}

/// `GatewaySettings.Timeouts` in whole milliseconds (`Duration.milliseconds`).
public struct TimeoutMilliseconds: Sendable, Equatable {
    public let headerRead: Int64
    public let requestBodyIdle: Int64
    public let keepAliveIdle: Int64
    public let upstreamConnect: Int64
    public let upstreamResponse: Int64
    public let responseBodyIdle: Int64

    public init(_ timeouts: GatewaySettings.Timeouts) {
        self.headerRead = timeouts.headerRead.milliseconds
        self.requestBodyIdle = timeouts.requestBodyIdle.milliseconds
        self.keepAliveIdle = timeouts.keepAliveIdle.milliseconds
        self.upstreamConnect = timeouts.upstreamConnect.milliseconds
        self.upstreamResponse = timeouts.upstreamResponse.milliseconds
        self.responseBodyIdle = timeouts.responseBodyIdle.milliseconds
    }
}
