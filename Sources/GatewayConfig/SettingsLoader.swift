import Certificates
import Foundation
import RedisClient
import Yams

/// Turns a settings document into `GatewaySettings`, or a `ConfigurationError` listing every
/// problem with its key path and line. This is the one place that knows the file's shape;
/// `docs/configuration.md` documents it key by key.
public enum SettingsLoader {
    /// Reads the settings file at `path`. A relative `tenantTree` is resolved against the
    /// directory of that file, so the pair can be moved together.
    public static func load(path: String) throws(ConfigurationError) -> GatewaySettings {
        let text = try YAMLReader.readFile(path: path)
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try self.parse(text, source: path, baseDirectory: directory)
    }

    /// `baseDirectory` is where a relative `tenantTree` path is resolved; without one the path
    /// is kept as written (relative to the process's working directory).
    public static func parse(_ text: String, source: String = "<settings>", baseDirectory: String? = nil) throws(ConfigurationError) -> GatewaySettings {
        try YAMLReader.readDocument(text, source: source) { root, reader in
            Self.read(root: root, baseDirectory: baseDirectory, with: &reader)
        }
    }

    // MARK: - Sections

    private static func read(root: YAMLReader.Cursor, baseDirectory: String?, with reader: inout YAMLReader) -> GatewaySettings? {
        let keys: Set<String> = [
            "listener", "limits", "timeouts", "upstreamPool", "forwarding", "cells", "defaultCell", "tenantTree", "platformIssuers",
            "authentication", "upstreamContext", "redis", "quotas", "retries", "outlierDetection", "admin", "tenantHealth",
            "ops", "accessLog", "tracing", "certificateUploads", "cors", "webSockets", "supportAccess", "masking",
        ]
        guard let top = reader.mapping(root, allowedKeys: keys) else {
            return nil
        }
        var listener: GatewaySettings.Listener?
        if let listenerCursor = top["listener"] {
            listener = Self.listener(listenerCursor, dataPlane: true, baseDirectory: baseDirectory, &reader)
        } else {
            // Reported, and the rest is still checked: one run lists every problem.
            reader.report(root, "missing required section 'listener'")
        }
        let limits = top["limits"].map { Self.limits($0, &reader) } ?? Self.defaultLimits
        let timeouts = top["timeouts"].map { Self.timeouts($0, &reader) } ?? Self.defaultTimeouts
        let pool = top["upstreamPool"].map { Self.upstreamPool($0, &reader) } ?? Self.defaultPool
        let forwarding = top["forwarding"].map { Self.forwarding($0, &reader) } ?? Self.defaultForwarding
        var cells: [GatewaySettings.Cell] = []
        if let cellsCursor = top["cells"] {
            cells = Self.cells(cellsCursor, baseDirectory: baseDirectory, &reader)
        } else {
            reader.report(root, "missing required section 'cells'")
        }
        var defaultCell = ""
        if let cursor = top["defaultCell"] {
            defaultCell = reader.string(cursor) ?? ""
            if defaultCell.isEmpty {
                reader.report(cursor, "must name one of the cells")
            } else if !cells.contains(where: { $0.id == defaultCell }) {
                reader.report(cursor, "names cell '\(defaultCell)', which is not defined in 'cells'")
            }
        } else {
            reader.report(root, "missing required key 'defaultCell'")
        }
        var tenantTreePath: String?
        if let cursor = top["tenantTree"], let path = reader.presentString(cursor) {
            if path.isEmpty {
                reader.report(cursor, "must be the path of the tenant-tree file")
            } else {
                tenantTreePath = Self.resolve(path, against: baseDirectory)
            }
        }
        let platformIssuers = top["platformIssuers"].map { reader.issuers($0, node: nil, baseDirectory: baseDirectory) } ?? []
        let authentication = top["authentication"].map { Self.authentication($0, limits: limits, baseDirectory: baseDirectory, &reader) } ?? Self.defaultAuthentication
        let upstreamContext = top["upstreamContext"].flatMap { Self.upstreamContext($0, baseDirectory: baseDirectory, &reader) }
        let redis = top["redis"].flatMap { Self.redis($0, baseDirectory: baseDirectory, &reader) }
        var failModes: [GatewaySettings.Cell.Kind: GatewaySettings.QuotaFailMode] = [.pooled: .open, .dedicated: .open]
        var retentionDays = 400
        var leases = GatewaySettings.QuotaLeases()
        if let cursor = top["quotas"], let map = reader.mapping(cursor, allowedKeys: ["failMode", "usageRetentionDays", "leases"]) {
            if let modes = map["failMode"], let tiers = reader.mapping(modes, allowedKeys: ["pooled", "dedicated"]) {
                for (tier, kind) in [("pooled", GatewaySettings.Cell.Kind.pooled), ("dedicated", .dedicated)] {
                    if let c = tiers[tier], let mode = reader.choice(c, among: GatewaySettings.QuotaFailMode.allCases) { failModes[kind] = mode }
                }
            }
            if let c = map["usageRetentionDays"], let days = reader.integer(c, in: 1...3660) { retentionDays = days }
            if let c = map["leases"], let lease = reader.mapping(c, allowedKeys: ["refreshInterval", "maxUnits", "maxLeases"]) {
                if let c = lease["refreshInterval"], let interval = reader.duration(c, in: .zero ... .seconds(10)) { leases.refreshInterval = interval }
                if let c = lease["maxUnits"], let units = reader.integer(c, in: 1...1_000_000) { leases.maxUnits = units }
                if let c = lease["maxLeases"], let count = reader.integer(c, in: 0...10_000_000) { leases.maxLeases = count }
            }
        }
        let retries = top["retries"].map { Self.retries($0, &reader) } ?? Self.defaultRetries
        let outlierDetection = top["outlierDetection"].map { Self.outlierDetection($0, &reader) } ?? Self.defaultOutlierDetection
        var admin: GatewaySettings.Admin?
        if let cursor = top["admin"] {
            admin = Self.admin(cursor, baseDirectory: baseDirectory, &reader)
            if top["redis"] == nil { reader.report(cursor, "the admin API keeps the tenant tree in the shared store: 'redis' is required") }
            if tenantTreePath == nil { reader.report(cursor, "the admin API administers a tenant tree: 'tenantTree' is required (it seeds the store)") }
        }
        var tenantHealth = GatewaySettings.TenantHealth()
        if let cursor = top["tenantHealth"], let map = reader.mapping(cursor, allowedKeys: ["publishInterval", "retentionMinutes"]) {
            if let c = map["publishInterval"], let interval = reader.duration(c, in: .milliseconds(100) ... .seconds(60)) { tenantHealth.publishInterval = interval }
            if let c = map["retentionMinutes"], let minutes = reader.integer(c, in: 1...1440) { tenantHealth.retentionMinutes = minutes }
        }
        let ops = top["ops"].flatMap { Self.ops($0, &reader) }
        var certificateUploads: GatewaySettings.CertificateUploads?
        if let cursor = top["certificateUploads"] {
            certificateUploads = Self.certificateUploads(cursor, baseDirectory: baseDirectory, &reader)
            if top["redis"] == nil { reader.report(cursor, "uploaded certificates are kept in the shared store: 'redis' is required") }
        }
        if tenantTreePath != nil, top["upstreamContext"] == nil {
            reader.report(root, "with a tenantTree, 'upstreamContext' is required: backends need the signing key to trust the tenant context")
        }
        let webSockets = top["webSockets"].map { Self.webSockets($0, &reader) } ?? GatewaySettings.WebSockets()
        guard let listener else { return nil }
        var settings = GatewaySettings(
            listener: listener, limits: limits, timeouts: timeouts, upstreamPool: pool,
            forwarding: forwarding, cells: cells, defaultCell: defaultCell, tenantTreePath: tenantTreePath,
            platformIssuers: platformIssuers, authentication: authentication, upstreamContext: upstreamContext, redis: redis,
            quotaFailModes: failModes, usageRetentionDays: retentionDays, quotaLeases: leases, retries: retries, outlierDetection: outlierDetection, admin: admin,
            tenantHealth: tenantHealth, ops: ops,
            accessLog: top["accessLog"].map { Self.accessLog($0, &reader) } ?? .off, tracing: top["tracing"].flatMap { Self.tracing($0, &reader) },
            certificateUploads: certificateUploads
        )
        if let cursor = top["cors"] { settings.cors = Self.cors(cursor, &reader) }
        settings.webSockets = webSockets
        if let cursor = top["supportAccess"] {
            settings.supportAccess = Self.supportAccess(cursor, baseDirectory: baseDirectory, &reader)
            if top["admin"] == nil { reader.report(cursor, "support grants are requested and approved through the admin API: 'admin' is required") }
        }
        if let cursor = top["masking"], let map = reader.mapping(cursor, allowedKeys: ["maxBodyBytes"]) {
            if let c = map["maxBodyBytes"], let v = reader.byteSize(c, in: GatewaySettings.Masking.maxBodyBytesRange) { settings.masking.maxBodyBytes = v }
        }
        return settings
    }

    private static func webSockets(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.WebSockets {
        var webSockets = GatewaySettings.WebSockets()
        guard let map = reader.mapping(cursor, allowedKeys: ["idleTimeout", "maxLifetime", "closeGrace", "maxFrameBytes"]) else { return webSockets }
        let range = Duration.milliseconds(100)...Duration.seconds(7 * 24 * 3600)
        if let c = map["idleTimeout"], let v = reader.duration(c, in: range) { webSockets.idleTimeout = v }
        if let c = map["maxLifetime"], let v = reader.duration(c, in: range) { webSockets.maxLifetime = v }
        if let c = map["closeGrace"], let v = reader.duration(c, in: .zero...Duration.seconds(600)) { webSockets.closeGrace = v }
        if let c = map["maxFrameBytes"], let v = reader.byteSize(c, in: 125...(64 << 20)) { webSockets.maxFrameBytes = v }
        return webSockets
    }

    /// The key file is read here, at load: a missing file or a key of the wrong length stops
    /// `check`, the start and a reload alike, instead of failing the first upload.
    private static func certificateUploads(
        _ cursor: YAMLReader.Cursor, baseDirectory: String?, _ reader: inout YAMLReader
    ) -> GatewaySettings.CertificateUploads? {
        guard let map = reader.mapping(cursor, allowedKeys: ["keyEncryptionKeyFile"]) else { return nil }
        guard let c = map["keyEncryptionKeyFile"] else {
            reader.report(cursor, "missing required key 'keyEncryptionKeyFile' (a file of 32 random bytes: openssl rand -base64 32 > certificate-kek)")
            return nil
        }
        guard let path = reader.presentString(c) else { return nil }
        guard !path.isEmpty else {
            reader.report(c, "must be the path of the key-encryption key file")
            return nil
        }
        let resolved = Self.resolve(path, against: baseDirectory)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isDirectory), !isDirectory.boolValue,
            let contents = FileManager.default.contents(atPath: resolved)
        else {
            reader.report(c, "cannot read the key-encryption key file '\(path)'")
            return nil
        }
        do {
            return GatewaySettings.CertificateUploads(keyEncryptionKeyFile: resolved, keyEncryptionKey: try KeyEncryptionKey(fileContents: Array(contents)))
        } catch {
            reader.report(c, "'\(path)': \(error)")
            return nil
        }
    }

    private static func ops(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.Ops? {
        guard reader.mapping(cursor, allowedKeys: ["address", "port"]) != nil, let listener = Self.listener(cursor, &reader) else { return nil }
        return GatewaySettings.Ops(address: listener.address, port: listener.port)
    }

    private static func accessLog(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.AccessLog {
        var accessLog = GatewaySettings.AccessLog.off
        guard let map = reader.mapping(cursor, allowedKeys: ["enabled", "sampling", "problemSampling"]) else { return accessLog }
        if let c = map["enabled"], let v = reader.bool(c) { accessLog.enabled = v }
        if let c = map["sampling"], let v = Self.ratio(c, &reader) { accessLog.sampling = v }
        if let c = map["problemSampling"], let v = Self.ratio(c, &reader) { accessLog.problemSampling = v }
        return accessLog
    }

    private static func tracing(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.Tracing? {
        let keys: Set<String> = ["endpoint", "sampling", "serviceName", "queueSize", "batchSize", "exportInterval", "exportTimeout"]
        guard let map = reader.mapping(cursor, allowedKeys: keys) else { return nil }
        guard let c = map["endpoint"] else {
            reader.report(cursor, "missing required key 'endpoint' (the collector's OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces)")
            return nil
        }
        guard let text = reader.presentString(c) else { return nil }
        guard let (endpoint, path) = Self.httpURL(text) else {
            reader.report(c, "'\(text)' is not an http://HOST:PORT/PATH URL (the OTLP/HTTP exporter speaks plain HTTP to a nearby collector)")
            return nil
        }
        var tracing = GatewaySettings.Tracing(endpoint: endpoint, path: path, sampling: 1)
        if let c = map["sampling"], let v = Self.ratio(c, &reader) { tracing.sampling = v }
        if let c = map["serviceName"], let v = reader.presentString(c) {
            if v.isEmpty { reader.report(c, "must name the service") } else { tracing.serviceName = v }
        }
        if let c = map["queueSize"], let v = reader.integer(c, in: 1...1_000_000) { tracing.queueSize = v }
        if let c = map["batchSize"], let v = reader.integer(c, in: 1...10_000) { tracing.batchSize = v }
        if let c = map["exportInterval"], let v = reader.duration(c, in: Duration.milliseconds(10)...Duration.seconds(60)) { tracing.exportInterval = v }
        if let c = map["exportTimeout"], let v = reader.duration(c, in: Duration.milliseconds(10)...Duration.seconds(60)) { tracing.exportTimeout = v }
        if tracing.batchSize > tracing.queueSize, let c = map["batchSize"] {
            reader.report(c, "must not be larger than queueSize")
        }
        return tracing
    }

    /// A share between 0 and 1, such as `0.05`.
    private static func ratio(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> Double? {
        guard let text = reader.string(cursor) else { return nil }
        guard let value = Double(text), value >= 0, value <= 1 else {
            reader.report(cursor, "must be a share between 0 and 1 (such as 0.05), got '\(text)'")
            return nil
        }
        return value
    }

    /// `http://host:port/path`; the path defaults to OTLP's `/v1/traces`.
    static func httpURL(_ text: String) -> (GatewaySettings.Endpoint, String)? {
        guard text.hasPrefix("http://") else { return nil }
        let rest = text.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        guard let endpoint = Self.endpoint(String(rest[..<slash])) else { return nil }
        let path = slash == rest.endIndex ? "/v1/traces" : String(rest[slash...])
        guard !path.contains(where: { $0.isWhitespace || $0 == "?" || $0 == "#" || $0.asciiValue == nil }) else { return nil }
        return (endpoint, path)
    }

    private static func admin(_ cursor: YAMLReader.Cursor, baseDirectory: String?, _ reader: inout YAMLReader) -> GatewaySettings.Admin? {
        guard let map = reader.mapping(cursor, allowedKeys: ["listener", "issuers", "roleClaim"]) else { return nil }
        var listener: GatewaySettings.Listener?
        if let c = map["listener"] {
            listener = Self.listener(c, acceptsTLS: true, baseDirectory: baseDirectory, &reader)
            if listener?.eventLoops != nil {
                // Admin traffic is small: one event loop serves it, one write at a time.
                reader.report(c, "the admin listener runs on one event loop; remove eventLoops")
            }
        } else {
            reader.report(cursor, "missing required key 'listener'")
        }
        var issuers: [IssuerDefinition] = []
        if let c = map["issuers"] {
            if case .sequence(let items) = c.node, items.isEmpty { reader.report(c, "at least one admin token issuer is required") }
            issuers = reader.issuers(c, node: nil, baseDirectory: baseDirectory)
        } else {
            reader.report(cursor, "missing required key 'issuers'")
        }
        var roleClaim = "role"
        if let c = map["roleClaim"], let value = reader.presentString(c) {
            if value.isEmpty { reader.report(c, "must name a claim") } else { roleClaim = value }
        }
        guard let listener else { return nil }
        return GatewaySettings.Admin(listener: listener, issuers: issuers, roleClaim: roleClaim)
    }

    private static func redis(_ cursor: YAMLReader.Cursor, baseDirectory: String?, _ reader: inout YAMLReader) -> GatewaySettings.Redis? {
        guard let map = reader.mapping(cursor, allowedKeys: ["url", "keyPrefix", "tls"]) else { return nil }
        guard let urlCursor = map["url"], let url = reader.presentString(urlCursor) else {
            if map["url"] == nil { reader.report(cursor, "missing required key 'url'") }
            return nil
        }
        // Parsed by the client's own grammar, so that `check` refuses every URL `serve` could not use.
        let tls: Bool
        do {
            tls = try RedisURL(url).tls != nil
        } catch {
            reader.report(urlCursor, "\(error)")
            return nil
        }
        var tlsSettings: GatewaySettings.CellTLS?
        if let c = map["tls"] {
            if tls {
                tlsSettings = reader.cellTLS(c, baseDirectory: baseDirectory)
            } else {
                reader.report(c, "TLS needs a rediss:// or rediss-sentinel:// URL")
            }
        }
        var prefix = "erp"
        if let c = map["keyPrefix"], let value = reader.presentString(c) {
            if Self.isValidIdentifier(value) { prefix = value } else { reader.report(c, "'\(value)' is not a valid key prefix (lowercase letters, digits and '-')") }
        }
        return GatewaySettings.Redis(url: url, keyPrefix: prefix, tls: tlsSettings)
    }

    static let defaultAuthentication = GatewaySettings.Authentication(maxTokenBytes: 8192, tokenCacheEntries: 10_000)

    /// Bytes the header limit counts for an `Authorization` field around a bearer token of n
    /// bytes, beyond n: the name, `Bearer `, and the 4 bytes `RequestHeadValidation.headerBytes`
    /// adds per field (": " and CRLF).
    static let authorizationFieldOverhead = "Authorization".utf8.count + "Bearer ".utf8.count + 4

    /// `limits` is the request limits already read: a token limit that the header limit would
    /// cut short (431 before the token is looked at) is refused when written explicitly. The
    /// default token limit simply yields to a smaller header limit.
    private static func authentication(
        _ cursor: YAMLReader.Cursor, limits: GatewaySettings.RequestLimits, baseDirectory: String?, _ reader: inout YAMLReader
    ) -> GatewaySettings.Authentication {
        var authentication = Self.defaultAuthentication
        guard let map = reader.mapping(cursor, allowedKeys: ["maxTokenBytes", "tokenCacheEntries", "keyFetch"]) else { return authentication }
        if let c = map["keyFetch"] { authentication.keyFetch = Self.keyFetch(c, baseDirectory: baseDirectory, &reader) }
        if let c = map["maxTokenBytes"], let v = reader.byteSize(c, in: 512...(64 << 10)) {
            authentication.maxTokenBytes = v
            let needed = v + Self.authorizationFieldOverhead
            if needed > limits.maxHeaderBytes {
                reader.report(
                    c,
                    "a token of \(v) bytes makes an Authorization field of \(needed) bytes, above limits.maxHeaderBytes (\(limits.maxHeaderBytes)): "
                        + "such a request gets 431 before its token is read; raise limits.maxHeaderBytes (leave room for the other fields) or lower maxTokenBytes"
                )
            }
        }
        if let c = map["tokenCacheEntries"], let v = reader.integer(c, in: 0...10_000_000) { authentication.tokenCacheEntries = v }
        return authentication
    }

    /// `authentication.keyFetch`. The CA file is read now, so a missing one is a configuration
    /// error rather than every fetch failing later.
    private static func keyFetch(_ cursor: YAMLReader.Cursor, baseDirectory: String?, _ reader: inout YAMLReader) -> GatewaySettings.Authentication.KeyFetch {
        var fetch = GatewaySettings.Authentication.KeyFetch()
        guard let map = reader.mapping(
            cursor, allowedKeys: ["caFile", "timeout", "defaultRefresh", "minimumRefresh", "maximumRefresh", "staleKeysFor", "allowedHosts"]
        ) else { return fetch }
        if let c = map["caFile"], let path = reader.presentString(c) {
            let resolved = Self.resolve(path, against: baseDirectory)
            if let text = try? String(contentsOfFile: resolved, encoding: .utf8), text.contains("-----BEGIN CERTIFICATE-----") {
                fetch.caFile = resolved
            } else {
                reader.report(c, "cannot read a PEM certificate bundle from '\(resolved)'")
            }
        }
        if let c = map["allowedHosts"], let list = reader.sequence(c) {
            var entries: [String] = []
            for item in list {
                guard let entry = reader.presentString(item) else { continue }
                do throws(ProviderHosts.EntryError) {
                    _ = try ProviderHosts([entry])
                    entries.append(entry)
                } catch {
                    let why = switch error {
                    case .empty: "an empty host"
                    case .misplacedWildcard: "'*' only as a whole first label ('*.example.com')"
                    case .notAHostName: "not a host name"
                    }
                    reader.report(item, "'\(entry)': \(why)")
                }
            }
            fetch.allowedHosts = try? ProviderHosts(entries)
        }
        let day = Duration.seconds(86_400)
        if let c = map["timeout"], let v = reader.duration(c, in: .milliseconds(100)...Duration.seconds(120)) { fetch.timeout = v }
        if let c = map["minimumRefresh"], let v = reader.duration(c, in: .seconds(1)...day) { fetch.minimumRefresh = v }
        if let c = map["maximumRefresh"], let v = reader.duration(c, in: .seconds(1)...(day * 7)) { fetch.maximumRefresh = v }
        if let c = map["defaultRefresh"], let v = reader.duration(c, in: .seconds(1)...(day * 7)) { fetch.defaultRefresh = v }
        if let c = map["staleKeysFor"], let v = reader.duration(c, in: .zero...(day * 7)) { fetch.staleKeysFor = v }
        if fetch.minimumRefresh > fetch.maximumRefresh {
            reader.report(cursor, "minimumRefresh must not be above maximumRefresh")
        } else if !(fetch.minimumRefresh...fetch.maximumRefresh).contains(fetch.defaultRefresh) {
            reader.report(cursor, "defaultRefresh must lie between minimumRefresh and maximumRefresh")
        }
        return fetch
    }

    private static func upstreamContext(
        _ cursor: YAMLReader.Cursor, baseDirectory: String?, _ reader: inout YAMLReader
    ) -> GatewaySettings.UpstreamContext? {
        guard let map = reader.mapping(cursor, allowedKeys: ["signingKeys", "activeKey"]) else { return nil }
        var keys: [GatewaySettings.UpstreamContext.SigningKey] = []
        if let list = map["signingKeys"].flatMap({ reader.sequence($0) }) {
            for item in list {
                guard let entry = reader.mapping(item, allowedKeys: ["id", "secret", "secretFile"]) else { continue }
                guard let idCursor = entry["id"] else {
                    reader.report(item, "missing required key 'id'")
                    continue
                }
                guard let id = reader.presentString(idCursor) else { continue }
                if entry["secret"] != nil, entry["secretFile"] != nil {
                    reader.report(item, "give exactly one of secret or secretFile")
                    continue
                }
                if !Self.isValidIdentifier(id) {
                    reader.report(idCursor, "'\(id)' is not a valid key id (lowercase letters, digits and '-')")
                }
                var text: String?
                if let c = entry["secret"] {
                    text = reader.presentString(c)
                } else if let c = entry["secretFile"], let path = reader.presentString(c) {
                    text = try? String(contentsOfFile: Self.resolve(path, against: baseDirectory), encoding: .utf8)
                    if text == nil { reader.report(c, "cannot read '\(path)'") }
                } else {
                    reader.report(item, "give secret (base64) or secretFile")
                }
                guard let text else { continue }
                guard let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count >= 32 else {
                    reader.report(item, "the secret must be base64 of at least 32 bytes")
                    continue
                }
                if keys.contains(where: { $0.id == id }) {
                    reader.report(idCursor, "key '\(id)' is listed twice")
                    continue
                }
                keys.append(.init(id: id, secret: Array(bytes)))
            }
        } else if map["signingKeys"] == nil {
            reader.report(cursor, "missing required key 'signingKeys'")
        }
        guard let activeCursor = map["activeKey"], let active = reader.presentString(activeCursor) else {
            if map["activeKey"] == nil { reader.report(cursor, "missing required key 'activeKey'") }
            return nil
        }
        guard keys.contains(where: { $0.id == active }) else {
            reader.report(activeCursor, "names '\(active)', which is not among signingKeys")
            return nil
        }
        return GatewaySettings.UpstreamContext(signingKeys: keys, activeKey: active)
    }

    /// - Parameters:
    ///   - dataPlane: the data plane's listener, which alone takes `http2` (and `tls`).
    ///   - acceptsTLS: another listener that may terminate TLS (the admin API's).
    private static func listener(
        _ cursor: YAMLReader.Cursor, dataPlane: Bool = false, acceptsTLS: Bool = false, baseDirectory: String? = nil, _ reader: inout YAMLReader
    ) -> GatewaySettings.Listener? {
        let keys = Set(["address", "port", "eventLoops"]).union(dataPlane || acceptsTLS ? ["tls"] : []).union(dataPlane ? ["http2"] : [])
        guard let map = reader.mapping(cursor, allowedKeys: keys) else {
            return nil
        }
        let tls = map["tls"].flatMap { Self.tls($0, baseDirectory: baseDirectory, &reader) }
        let http2 = map["http2"].map { Self.http2($0, &reader) } ?? GatewaySettings.Listener.HTTP2()
        let address = map["address"].flatMap { reader.string($0) } ?? "127.0.0.1"
        if let cursor = map["address"], !Self.isValidHost(address) {
            reader.report(cursor, "'\(address)' is not an IP address or host name")
        }
        guard let portCursor = map["port"] else {
            reader.report(cursor, "missing required key 'port'")
            return nil
        }
        let port = reader.integer(portCursor, in: 0...65535)
        let loops = map["eventLoops"].flatMap { reader.integer($0, in: 1...256) }
        guard let port else { return nil }
        return .init(address: address, port: port, eventLoops: loops, tls: tls, http2: http2)
    }

    /// `listener.tls`: the default certificate, the others, the oldest version accepted. Files
    /// must be readable here; what is in them is judged by EdgeTLS when it loads them.
    private static func tls(_ cursor: YAMLReader.Cursor, baseDirectory: String?, _ reader: inout YAMLReader) -> GatewaySettings.Listener.TLS? {
        guard let map = reader.mapping(cursor, allowedKeys: ["certificate", "key", "certificates", "minimumVersion"]) else { return nil }
        let defaultCertificate = Self.certificateFiles(cursor, map, baseDirectory: baseDirectory, &reader)
        var certificates: [GatewaySettings.Listener.TLS.CertificateFiles] = []
        if let c = map["certificates"], let items = reader.sequence(c) {
            for item in items {
                guard let entry = reader.mapping(item, allowedKeys: ["certificate", "key"]) else { continue }
                if let files = Self.certificateFiles(item, entry, baseDirectory: baseDirectory, &reader) { certificates.append(files) }
            }
        }
        var minimumVersion = GatewaySettings.Listener.TLS.Version.tls12
        if let c = map["minimumVersion"] {
            if let text = reader.string(c), ["1.0", "1.1", "1", "1.00", "1.10"].contains(text) {
                reader.report(c, "TLS \(text) is never accepted: the oldest version is '1.2'")
            } else if let version = reader.choice(c, among: GatewaySettings.Listener.TLS.Version.allCases) {
                minimumVersion = version
            }
        }
        guard let defaultCertificate else { return nil }
        let all = [defaultCertificate] + certificates
        for (index, files) in all.enumerated() where all[..<index].contains(where: { $0.certificate == files.certificate }) {
            reader.report(path: files.settingsKey, node: nil, "'\(files.certificate)' is named twice")
        }
        return GatewaySettings.Listener.TLS(defaultCertificate: defaultCertificate, certificates: certificates, minimumVersion: minimumVersion)
    }

    /// A `certificate` and `key` pair of files, both required and readable.
    private static func certificateFiles(
        _ cursor: YAMLReader.Cursor, _ map: [String: YAMLReader.Cursor], baseDirectory: String?, _ reader: inout YAMLReader
    ) -> GatewaySettings.Listener.TLS.CertificateFiles? {
        var paths: [String] = []
        for key in ["certificate", "key"] {
            guard let c = map[key] else {
                reader.report(cursor, "missing required key '\(key)' (a PEM file)")
                continue
            }
            guard let path = reader.presentString(c) else { continue }
            let resolved = Self.resolve(path, against: baseDirectory)
            guard FileManager.default.isReadableFile(atPath: resolved) else {
                reader.report(c, "cannot read '\(path)'")
                continue
            }
            paths.append(resolved)
        }
        guard paths.count == 2 else { return nil }
        return .init(certificate: paths[0], key: paths[1], settingsKey: cursor.path, line: cursor.mark.map { $0.line })
    }


    private static func http2(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.Listener.HTTP2 {
        var http2 = GatewaySettings.Listener.HTTP2()
        let keys: Set<String> = [
            "enabled", "cleartext", "maxConcurrentStreams", "maxHeaderListSize", "initialWindowSize", "maxContinuationFrames",
            "maxBufferedControlFrames", "maxGlitches", "resetFrames", "controlFrames", "streamErrors",
        ]
        guard let map = reader.mapping(cursor, allowedKeys: keys) else { return http2 }
        if let c = map["enabled"], let v = reader.bool(c) { http2.enabled = v }
        if let c = map["cleartext"], let v = reader.bool(c) {
            http2.cleartext = v
            if v, !http2.enabled { reader.report(c, "h2c needs HTTP/2: 'enabled' is false") }
        }
        if let c = map["maxConcurrentStreams"], let v = reader.integer(c, in: 1...10_000) { http2.maxConcurrentStreams = v }
        if let c = map["maxHeaderListSize"], let v = reader.byteSize(c, in: 1024...(16 << 20)) { http2.maxHeaderListSize = v }
        // RFC 9113 §6.5.2: at most 2^31 - 1.
        if let c = map["initialWindowSize"], let v = reader.byteSize(c, in: 1024...Int(Int32.max)) { http2.initialWindowSize = v }
        if let c = map["maxContinuationFrames"], let v = reader.integer(c, in: 0...1000) { http2.maxContinuationFrames = v }
        if let c = map["maxBufferedControlFrames"], let v = reader.integer(c, in: 1...1_000_000) { http2.maxBufferedControlFrames = v }
        if let c = map["maxGlitches"], let v = reader.integer(c, in: 1...1_000_000) { http2.maxGlitches = v }
        if let c = map["resetFrames"], let v = Self.rate(c, &reader) { http2.resetFrames = v }
        if let c = map["controlFrames"], let v = Self.rate(c, &reader) { http2.controlFrames = v }
        if let c = map["streamErrors"], let v = Self.rate(c, &reader) { http2.streamErrors = v }
        return http2
    }

    /// `{ max: N, per: DURATION }`, both required.
    private static func rate(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.Listener.HTTP2.Rate? {
        guard let map = reader.mapping(cursor, allowedKeys: ["max", "per"]) else { return nil }
        guard let maxCursor = map["max"], let perCursor = map["per"] else {
            reader.report(cursor, "needs both 'max' and 'per'")
            return nil
        }
        let max = reader.integer(maxCursor, in: 1...1_000_000)
        let per = reader.duration(perCursor, in: Duration.milliseconds(100)...Duration.seconds(3600))
        guard let max, let per else { return nil }
        return .init(max: max, per: per)
    }

    static let defaultLimits = GatewaySettings.RequestLimits(
        maxHeaderBytes: 16 << 10, maxURIBytes: 8 << 10, maxRequestBodyBytes: 10 << 20
    )

    private static func limits(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.RequestLimits {
        var limits = Self.defaultLimits
        guard let map = reader.mapping(cursor, allowedKeys: ["maxHeaderBytes", "maxURIBytes", "maxRequestBodyBytes"]) else { return limits }
        if let c = map["maxHeaderBytes"], let v = reader.byteSize(c, in: 1024...(1 << 20)) { limits.maxHeaderBytes = v }
        if let c = map["maxURIBytes"], let v = reader.byteSize(c, in: 256...(1 << 20)) { limits.maxURIBytes = v }
        if let c = map["maxRequestBodyBytes"], let v = reader.byteSize(c, in: 0...(1 << 42)) { limits.maxRequestBodyBytes = v }
        return limits
    }

    static let defaultTimeouts = GatewaySettings.Timeouts(
        headerRead: .seconds(10), requestBodyIdle: .seconds(30), keepAliveIdle: .seconds(60), upstreamConnect: .seconds(2),
        upstreamResponse: .seconds(30), shutdownGrace: .seconds(20)
    )

    private static func timeouts(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.Timeouts {
        var timeouts = Self.defaultTimeouts
        let keys = ["headerRead", "requestBodyIdle", "keepAliveIdle", "upstreamConnect", "upstreamResponse", "shutdownGrace", "responseBodyIdle"]
        guard let map = reader.mapping(cursor, allowedKeys: Set(keys)) else { return timeouts }
        let range = Duration.milliseconds(1)...Duration.seconds(24 * 3600)
        if let c = map["headerRead"], let v = reader.duration(c, in: range) { timeouts.headerRead = v }
        if let c = map["requestBodyIdle"], let v = reader.duration(c, in: range) { timeouts.requestBodyIdle = v }
        if let c = map["keepAliveIdle"], let v = reader.duration(c, in: range) { timeouts.keepAliveIdle = v }
        if let c = map["upstreamConnect"], let v = reader.duration(c, in: range) { timeouts.upstreamConnect = v }
        if let c = map["upstreamResponse"], let v = reader.duration(c, in: range) { timeouts.upstreamResponse = v }
        if let c = map["shutdownGrace"], let v = reader.duration(c, in: .zero...Duration.seconds(3600)) { timeouts.shutdownGrace = v }
        if let c = map["responseBodyIdle"], let v = reader.duration(c, in: range) { timeouts.responseBodyIdle = v }
        return timeouts
    }

    static let defaultPool = GatewaySettings.UpstreamPool(maxConnectionsPerEndpoint: 64, idleTimeout: .seconds(30))

    private static func upstreamPool(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.UpstreamPool {
        var pool = Self.defaultPool
        guard let map = reader.mapping(cursor, allowedKeys: ["maxConnectionsPerEndpoint", "idleTimeout"]) else { return pool }
        if let c = map["maxConnectionsPerEndpoint"], let v = reader.integer(c, in: 1...10_000) { pool.maxConnectionsPerEndpoint = v }
        if let c = map["idleTimeout"], let v = reader.duration(c, in: Duration.milliseconds(100)...Duration.seconds(3600)) { pool.idleTimeout = v }
        return pool
    }

    static let defaultForwarding = GatewaySettings.Forwarding(trustClientForwardedHeaders: false)

    private static func forwarding(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.Forwarding {
        var forwarding = Self.defaultForwarding
        guard let map = reader.mapping(cursor, allowedKeys: ["trustClientForwardedHeaders"]) else { return forwarding }
        if let c = map["trustClientForwardedHeaders"], let v = reader.bool(c) { forwarding.trustClientForwardedHeaders = v }
        return forwarding
    }

    private static func cells(_ cursor: YAMLReader.Cursor, baseDirectory: String?, _ reader: inout YAMLReader) -> [GatewaySettings.Cell] {
        guard let items = reader.sequence(cursor) else { return [] }
        if items.isEmpty { reader.report(cursor, "at least one cell is required") }
        var cells: [GatewaySettings.Cell] = []
        var fallbackCursors: [String: [YAMLReader.Cursor]] = [:]
        var seen: Set<String> = []
        let keys: Set<String> = ["id", "kind", "region", "endpoints", "healthCheck", "limits", "timeouts", "fallback", "tls"]
        for item in items {
            guard let map = reader.mapping(item, allowedKeys: keys) else { continue }
            var complete = true
            func required(_ key: String) -> YAMLReader.Cursor? {
                if let c = map[key] { return c }
                reader.report(item, "missing required key '\(key)'")
                complete = false
                return nil
            }
            var id = ""
            if let c = required("id"), let value = reader.string(c) {
                id = value
                if !Self.isValidIdentifier(value) {
                    reader.report(c, "'\(value)' is not a valid cell id (lowercase letters, digits and '-', starting with a letter, at most 63)")
                } else if !seen.insert(value).inserted {
                    reader.report(c, "cell id '\(value)' is defined twice")
                }
            }
            var kind = GatewaySettings.Cell.Kind.pooled
            if let c = required("kind"), let value = reader.string(c) {
                if let parsed = GatewaySettings.Cell.Kind(rawValue: value) {
                    kind = parsed
                } else {
                    reader.report(c, "kind must be 'pooled' or 'dedicated', got '\(value)'")
                }
            }
            var region = ""
            if let c = required("region"), let value = reader.string(c) {
                region = value
                if !Self.isValidIdentifier(value) { reader.report(c, "'\(value)' is not a valid region name") }
            }
            var endpoints: [GatewaySettings.Endpoint] = []
            var schemes: Set<CellEndpointScheme> = []
            if let c = required("endpoints"), let list = reader.sequence(c) {
                if list.isEmpty { reader.report(c, "a cell needs at least one endpoint") }
                for entry in list {
                    guard let text = reader.string(entry) else { continue }
                    if let (endpoint, scheme) = Self.cellEndpoint(text) {
                        schemes.insert(scheme)
                        if endpoints.contains(endpoint) {
                            reader.report(entry, "endpoint '\(text)' is listed twice")
                        } else {
                            endpoints.append(endpoint)
                        }
                    } else {
                        reader.report(entry, "'\(text)' is not HOST:PORT, http://HOST:PORT or https://HOST[:PORT]")
                    }
                }
                if schemes.count > 1 {
                    // A cell is one trust domain: a mix would send some of its requests in clear.
                    reader.report(c, "endpoints of one cell are all https:// or all plain HTTP, not a mix")
                }
            }
            var cell = GatewaySettings.Cell(id: id, kind: kind, region: region, endpoints: endpoints)
            let https = schemes == [.https]
            if let c = map["tls"] {
                if https {
                    // A block with errors is reported; the cell stays, so that nothing naming it
                    // is reported as well.
                    cell.tls = reader.cellTLS(c, baseDirectory: baseDirectory) ?? GatewaySettings.CellTLS()
                } else if schemes == [.http] {
                    // (A mix is reported above.)
                    reader.report(c, "tls applies to https:// endpoints; write this cell's endpoints as https://HOST:PORT")
                }
            } else if https {
                // https:// alone: the system's trust store and each endpoint's own host name.
                cell.tls = GatewaySettings.CellTLS()
            }
            if let c = map["healthCheck"] { cell.healthCheck = Self.healthCheck(c, &reader) }
            if let c = map["limits"] { cell.limits = Self.cellLimits(c, &reader) }
            if let c = map["timeouts"], let timeouts = reader.mapping(c, allowedKeys: ["connect", "response"]) {
                let range = Duration.milliseconds(1)...Duration.seconds(24 * 3600)
                if let t = timeouts["connect"] { cell.connectTimeout = reader.duration(t, in: range) }
                if let t = timeouts["response"] { cell.responseTimeout = reader.duration(t, in: range) }
            }
            if let c = map["fallback"], let list = reader.sequence(c) {
                for entry in list {
                    guard let name = reader.string(entry) else { continue }
                    cell.fallback.append(name)
                    fallbackCursors[id, default: []].append(entry)
                }
            }
            if complete { cells.append(cell) }
        }
        // Fallbacks name cells defined anywhere in the list, so they are checked once all are read.
        let byID = Dictionary(cells.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for cell in cells {
            for (name, entry) in zip(cell.fallback, fallbackCursors[cell.id] ?? []) {
                if name == cell.id {
                    reader.report(entry, "a cell cannot be its own fallback")
                } else if let target = byID[name] {
                    if target.kind == .dedicated {
                        reader.report(entry, "'\(name)' is a dedicated cell: it serves only its own customer and cannot be a fallback")
                    }
                } else {
                    reader.report(entry, "names cell '\(name)', which is not defined in 'cells'")
                }
            }
            if Set(cell.fallback).count != cell.fallback.count, let entry = fallbackCursors[cell.id]?.first {
                reader.report(entry, "a fallback cell is listed twice")
            }
        }
        return cells
    }

    private static func healthCheck(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.HealthCheck? {
        let keys: Set<String> = ["path", "interval", "timeout", "healthyThreshold", "unhealthyThreshold"]
        guard let map = reader.mapping(cursor, allowedKeys: keys) else { return nil }
        var check = GatewaySettings.HealthCheck(path: "/healthz", interval: .seconds(5), timeout: .seconds(1), healthyThreshold: 2, unhealthyThreshold: 3)
        if let c = map["path"], let path = reader.presentString(c) {
            if path.hasPrefix("/"), !path.contains(where: { $0.isWhitespace || $0.asciiValue == nil || $0.asciiValue! < 0x20 }) {
                check.path = path
            } else {
                reader.report(c, "must be an absolute path such as /healthz, without spaces")
            }
        }
        if let c = map["interval"], let v = reader.duration(c, in: Duration.milliseconds(50)...Duration.seconds(3600)) { check.interval = v }
        if let c = map["timeout"], let v = reader.duration(c, in: Duration.milliseconds(10)...Duration.seconds(600)) { check.timeout = v }
        if let c = map["healthyThreshold"], let v = reader.integer(c, in: 1...100) { check.healthyThreshold = v }
        if let c = map["unhealthyThreshold"], let v = reader.integer(c, in: 1...100) { check.unhealthyThreshold = v }
        if check.timeout > check.interval, let c = map["timeout"] {
            reader.report(c, "must not be longer than the interval: a probe ends before the next is due")
        }
        return check
    }

    private static func cellLimits(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.CellLimits {
        var limits = GatewaySettings.CellLimits.default
        guard let map = reader.mapping(cursor, allowedKeys: ["maxPending", "maxInFlight", "retryAfter"]) else { return limits }
        if let c = map["maxPending"], let v = reader.integer(c, in: 1...1_000_000) { limits.maxPending = v }
        if let c = map["maxInFlight"], let v = reader.integer(c, in: 1...1_000_000) { limits.maxInFlight = v }
        if let c = map["retryAfter"], let v = reader.duration(c, in: Duration.seconds(1)...Duration.seconds(3600)) { limits.retryAfter = v }
        return limits
    }

    public static let defaultRetries = GatewaySettings.Retries(maxAttempts: 3, budgetPercent: 20, minRetriesInFlight: 3)

    private static func retries(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.Retries {
        var retries = Self.defaultRetries
        guard let map = reader.mapping(cursor, allowedKeys: ["maxAttempts", "budgetPercent", "minRetriesInFlight"]) else { return retries }
        if let c = map["maxAttempts"], let v = reader.integer(c, in: 1...10) { retries.maxAttempts = v }
        if let c = map["budgetPercent"], let v = reader.integer(c, in: 0...100) { retries.budgetPercent = v }
        if let c = map["minRetriesInFlight"], let v = reader.integer(c, in: 0...10_000) { retries.minRetriesInFlight = v }
        return retries
    }

    public static let defaultOutlierDetection = GatewaySettings.OutlierDetection(
        consecutiveFailures: 5, baseEjection: .seconds(10), maxEjection: .seconds(300), maxEjectedPercent: 50
    )

    private static func outlierDetection(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> GatewaySettings.OutlierDetection {
        var detection = Self.defaultOutlierDetection
        let keys: Set<String> = ["consecutiveFailures", "baseEjection", "maxEjection", "maxEjectedPercent"]
        guard let map = reader.mapping(cursor, allowedKeys: keys) else { return detection }
        let range = Duration.milliseconds(10)...Duration.seconds(24 * 3600)
        if let c = map["consecutiveFailures"], let v = reader.integer(c, in: 1...1000) { detection.consecutiveFailures = v }
        if let c = map["baseEjection"], let v = reader.duration(c, in: range) { detection.baseEjection = v }
        if let c = map["maxEjection"], let v = reader.duration(c, in: range) { detection.maxEjection = v }
        if let c = map["maxEjectedPercent"], let v = reader.integer(c, in: 0...100) { detection.maxEjectedPercent = v }
        if detection.maxEjection < detection.baseEjection, let c = map["maxEjection"] ?? map["baseEjection"] {
            reader.report(c, "maxEjection must not be shorter than baseEjection")
        }
        return detection
    }

    // MARK: - Syntax

    /// An absolute path stays where it points (normalized); a relative one is joined to
    /// `baseDirectory` when there is one, and kept as written otherwise.
    static func resolve(_ path: String, against baseDirectory: String?) -> String {
        if path.hasPrefix("/") {
            return URL(fileURLWithPath: path).standardizedFileURL.path
        }
        guard let baseDirectory else { return path }
        let base = URL(fileURLWithPath: baseDirectory, isDirectory: true)
        return URL(fileURLWithPath: path, relativeTo: base).standardizedFileURL.path
    }

    /// `host:port`, `a.b.c.d:port` or `[ipv6]:port`; an IPv6 address must be bracketed so the
    /// port is never ambiguous.
    static func endpoint(_ text: String) -> GatewaySettings.Endpoint? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            guard host.contains(":") else { return nil }
        } else if host.contains(":") {
            return nil
        }
        let portText = text[text.index(after: colon)...]
        guard portText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let port = Int(portText),
            (1...65535).contains(port), Self.isValidHost(host)
        else {
            return nil
        }
        return .init(host: host, port: port)
    }

    /// How a cell's endpoint is written: `host:port` and `http://host:port` are plain HTTP.
    enum CellEndpointScheme: Hashable { case http, https }

    /// A cell's endpoint: `host:port` (as `endpoint`), `http://host:port`, or
    /// `https://host[:port]` (port 443 when left out). Nothing may follow the port: the request's
    /// own target is forwarded as it is.
    static func cellEndpoint(_ text: String) -> (GatewaySettings.Endpoint, CellEndpointScheme)? {
        for (prefix, scheme, defaultPort) in [("https://", CellEndpointScheme.https, 443), ("http://", .http, 80)] {
            guard text.lowercased().hasPrefix(prefix) else { continue }
            let authority = String(text.dropFirst(prefix.count))
            if let endpoint = Self.endpoint(authority) { return (endpoint, scheme) }
            // No port: a bare host or a bracketed IPv6 address.
            let host = authority.hasPrefix("[") && authority.hasSuffix("]") ? String(authority.dropFirst().dropLast()) : authority
            guard !host.isEmpty, authority.hasPrefix("[") == host.contains(":"), Self.isValidHost(host) else { return nil }
            return (.init(host: host, port: defaultPort), scheme)
        }
        return Self.endpoint(text).map { ($0, .http) }
    }

    static func isValidHost(_ host: String) -> Bool {
        guard !host.isEmpty, host.utf8.count <= 253 else { return false }
        return host.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ":")
        }
    }

    static func isValidIdentifier(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard (1...63).contains(bytes.count), let first = bytes.first, first >= UInt8(ascii: "a"), first <= UInt8(ascii: "z"),
            bytes.last != UInt8(ascii: "-")
        else { return false }
        return bytes.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") }
    }
}
