import Foundation

/// A token issuer as configured: who it is (`iss`), what its tokens must look like, and the keys
/// that verify them. Platform issuers come from the settings file and may speak for any customer;
/// an OEM's or partner's come from its node in the tenant tree and may speak only for that
/// node's subtree. Keys are parsed into OpenSSL keys when the configuration is compiled.
public struct IssuerDefinition: Sendable, Hashable {
    public var issuer: String
    public var audience: String
    public var maxLifetime: Duration
    public var clockSkew: Duration
    public var tenantClaim: String
    /// HMAC keys are accepted only on an issuer that says so (development and tests).
    public var allowHMAC: Bool
    public var keys: [KeyDefinition]
    /// Where the keys come from: `keys` above, or the issuer's identity provider.
    public var keySource: KeySource
    /// With fetched keys: the algorithms the issuer's tokens may use (a published key's `alg`
    /// may narrow these, never widen them).
    public var algorithms: [String]
    /// The node the issuer is registered on; nil for a platform issuer.
    public var node: String?
    /// Key path in the document, for messages (`tenants[2].issuers[0]`).
    public var path: String
    public var line: Int?

    /// An issuer built outside a document (the admin API); `path` names it in messages.
    public init(
        issuer: String, audience: String, maxLifetime: Duration, clockSkew: Duration, tenantClaim: String, allowHMAC: Bool = false,
        keys: [KeyDefinition], keySource: KeySource = .configured, algorithms: [String] = [], node: String?, path: String, line: Int? = nil
    ) {
        self.issuer = issuer
        self.audience = audience
        self.maxLifetime = maxLifetime
        self.clockSkew = clockSkew
        self.tenantClaim = tenantClaim
        self.allowHMAC = allowHMAC
        self.keys = keys
        self.keySource = keySource
        self.algorithms = algorithms
        self.node = node
        self.path = path
        self.line = line
    }

    public enum KeySource: Sendable, Hashable {
        case configured
        /// The JWKS document's HTTPS URL.
        case jwks(String)
        /// The OpenID configuration's HTTPS URL; its `issuer` must equal `iss`, its `jwks_uri`
        /// names the JWKS document.
        case discovery(String)

        /// The URL to fetch first; nil for configured keys.
        public var url: String? {
            switch self {
            case .configured: nil
            case .jwks(let url), .discovery(let url): url
            }
        }
    }

    /// Whether `text` is an absolute `https` URL with a host: providers' keys are fetched over
    /// TLS only.
    public static func isHTTPSURL(_ text: String) -> Bool {
        guard let url = URL(string: text), url.scheme?.lowercased() == "https", let host = url.host, !host.isEmpty else { return false }
        return true
    }

    public struct KeyDefinition: Sendable, Hashable {
        public var kid: String
        public var algorithm: String
        /// A PEM public key (RS*, ES*) or the secret bytes (HS*).
        public var material: Material
        public var path: String
        public var line: Int?
        /// The file the material was read from (`pemFile`, `secretFile`): watched for changes.
        public var file: String?

        public enum Material: Sendable, Hashable {
            case publicKeyPEM(String)
            case secret([UInt8])
        }

        public init(kid: String, algorithm: String, material: Material, path: String, line: Int? = nil, file: String? = nil) {
            self.kid = kid
            self.algorithm = algorithm
            self.material = material
            self.path = path
            self.line = line
            self.file = file
        }
    }
}

extension YAMLReader {
    static let issuerKeys: Set<String> = [
        "iss", "audience", "maxLifetime", "clockSkew", "tenantClaim", "allowHMAC", "keys", "jwksUri", "discovery", "algorithms",
    ]
    static let keyKeys: Set<String> = ["kid", "alg", "pem", "pemFile", "secret", "secretFile"]

    /// Reads a list of issuers. Files named by `pemFile`/`secretFile` are relative to
    /// `baseDirectory` and read now, so a missing key file is a configuration error, not a
    /// runtime surprise.
    mutating func issuers(_ cursor: Cursor, node: String?, baseDirectory: String?) -> [IssuerDefinition] {
        guard let items = self.sequence(cursor) else { return [] }
        return items.compactMap { self.issuer($0, node: node, baseDirectory: baseDirectory) }
    }

    private mutating func issuer(_ item: Cursor, node: String?, baseDirectory: String?) -> IssuerDefinition? {
        guard let map = self.mapping(item, allowedKeys: Self.issuerKeys) else { return nil }
        var complete = true
        func required(_ key: String) -> Cursor? {
            if let cursor = map[key] { return cursor }
            self.report(item, "missing required key '\(key)'")
            complete = false
            return nil
        }
        let issuer = required("iss").flatMap { self.presentString($0) }
        let audience = required("audience").flatMap { self.presentString($0) }
        let lifetime = map["maxLifetime"].flatMap { self.wholeSeconds($0, in: Duration.seconds(1)...Duration.seconds(30 * 24 * 3600)) } ?? .seconds(3600)
        let skew = map["clockSkew"].flatMap { self.wholeSeconds($0, in: Duration.zero...Duration.seconds(600)) } ?? .seconds(30)
        let claim = map["tenantClaim"].flatMap { self.presentString($0) } ?? "tenant"
        let allowHMAC = map["allowHMAC"].flatMap { self.bool($0) } ?? false
        var keys: [IssuerDefinition.KeyDefinition] = []
        var keySource = IssuerDefinition.KeySource.configured
        var algorithms: [String] = []
        let sources = ["keys", "jwksUri", "discovery"].filter { map[$0] != nil }
        if sources.count > 1 {
            self.report(item, "give one of keys, jwksUri or discovery")
            complete = false
        } else if let fetched = sources.first, fetched != "keys", let cursor = map[fetched] {
            if let url = self.presentString(cursor) {
                if IssuerDefinition.isHTTPSURL(url) {
                    keySource = fetched == "jwksUri" ? .jwks(url) : .discovery(url)
                } else {
                    self.report(cursor, "must be an https:// URL")
                }
            }
            if let algorithmsCursor = required("algorithms"), let list = self.stringList(algorithmsCursor) {
                if list.isEmpty { self.report(algorithmsCursor, "an issuer with fetched keys needs at least one algorithm") }
                algorithms = list
            }
        } else if let keysCursor = required("keys"), let list = self.sequence(keysCursor) {
            if list.isEmpty { self.report(keysCursor, "an issuer needs at least one key") }
            keys = list.compactMap { self.key($0, allowHMAC: allowHMAC, baseDirectory: baseDirectory) }
            if let algorithmsCursor = map["algorithms"] {
                self.report(algorithmsCursor, "algorithms belong to issuers with jwksUri or discovery; a configured key names its own alg")
            }
        }
        guard complete, let issuer, let audience else { return nil }
        return IssuerDefinition(
            issuer: issuer, audience: audience, maxLifetime: lifetime, clockSkew: skew, tenantClaim: claim, allowHMAC: allowHMAC,
            keys: keys, keySource: keySource, algorithms: algorithms, node: node, path: item.path, line: item.node.mark?.line
        )
    }

    private mutating func key(_ item: Cursor, allowHMAC: Bool, baseDirectory: String?) -> IssuerDefinition.KeyDefinition? {
        guard let map = self.mapping(item, allowedKeys: Self.keyKeys) else { return nil }
        guard let kidCursor = map["kid"], let kid = self.presentString(kidCursor) else {
            if map["kid"] == nil { self.report(item, "missing required key 'kid'") }
            return nil
        }
        guard let algCursor = map["alg"], let algorithm = self.presentString(algCursor) else {
            if map["alg"] == nil { self.report(item, "missing required key 'alg'") }
            return nil
        }
        let hmac = algorithm.hasPrefix("HS")
        let sources = ["pem", "pemFile", "secret", "secretFile"].filter { map[$0] != nil }
        guard sources.count == 1 else {
            self.report(item, "give exactly one of \(hmac ? "secret or secretFile" : "pem or pemFile")")
            return nil
        }
        if hmac, !allowHMAC {
            self.report(algCursor, "HMAC keys are refused unless the issuer sets allowHMAC: true (development and tests only)")
            return nil
        }
        let source = sources[0]
        let cursor = map[source]!
        guard let value = self.presentString(cursor) else { return nil }
        switch (hmac, source) {
        case (false, "pem"):
            return .init(kid: kid, algorithm: algorithm, material: .publicKeyPEM(value), path: item.path, line: item.node.mark?.line)
        case (false, "pemFile"):
            guard let (text, file) = self.readKeyFile(value, cursor: cursor, baseDirectory: baseDirectory) else { return nil }
            return .init(kid: kid, algorithm: algorithm, material: .publicKeyPEM(text), path: item.path, line: item.node.mark?.line, file: file)
        case (true, "secret"):
            guard let bytes = Data(base64Encoded: value) else {
                self.report(cursor, "a secret is base64")
                return nil
            }
            return .init(kid: kid, algorithm: algorithm, material: .secret(Array(bytes)), path: item.path, line: item.node.mark?.line)
        case (true, "secretFile"):
            guard let (text, file) = self.readKeyFile(value, cursor: cursor, baseDirectory: baseDirectory) else { return nil }
            guard let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                self.report(cursor, "the secret file must hold base64")
                return nil
            }
            return .init(kid: kid, algorithm: algorithm, material: .secret(Array(bytes)), path: item.path, line: item.node.mark?.line, file: file)
        default:
            self.report(cursor, hmac ? "an \(algorithm) key is a secret (secret or secretFile)" : "an \(algorithm) key is a public key (pem or pemFile)")
            return nil
        }
    }

    private mutating func readKeyFile(_ path: String, cursor: Cursor, baseDirectory: String?) -> (String, String)? {
        let resolved = SettingsLoader.resolve(path, against: baseDirectory)
        guard let text = try? String(contentsOfFile: resolved, encoding: .utf8) else {
            self.report(cursor, "cannot read key file '\(resolved)'")
            return nil
        }
        return (text, resolved)
    }

    /// Token times are whole seconds; a fraction would be silently cut off.
    private mutating func wholeSeconds(_ cursor: Cursor, in range: ClosedRange<Duration>) -> Duration? {
        guard let value = self.duration(cursor, in: range) else { return nil }
        guard value.components.attoseconds == 0 else {
            self.report(cursor, "must be a whole number of seconds")
            return nil
        }
        return value
    }
}
