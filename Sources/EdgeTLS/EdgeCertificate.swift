import Certificates
import NIOSSL

/// One certificate the listener can present: its chain (leaf first) and key, parsed once, the
/// names it answers for, its validity and where it came from. Immutable and shared by every
/// handshake that picks it.
public final class EdgeCertificate: Sendable {
    /// Where a certificate came from; `label` is the metric's `source`.
    public enum Source: Sendable, Hashable {
        /// A file named by `listener.tls` (the chain's path).
        case file(String)
        /// Uploaded through the admin API for a portal domain of the node `node`.
        case uploaded(node: String)

        public var label: String {
            switch self {
            case .file: "file"
            case .uploaded: "uploaded"
            }
        }
    }

    /// The DNS names this certificate is chosen for, lowercased (`*.example.com` for a
    /// wildcard): every subjectAltName DNS entry for a file, the uploaded domain for an upload.
    public let names: [String]
    /// Every subjectAltName DNS entry of the leaf, whatever it is chosen for.
    public let coveredNames: [String]
    /// Validity of the leaf, in seconds since 1970.
    public let notValidBefore: Int64
    public let notValidAfter: Int64
    public let source: Source
    /// The metric's `name`: the first name it is chosen for, else the file's name.
    public let label: String
    /// What a handshake that picks it applies: the chain and the key.
    let override: NIOSSLContextConfigurationOverride
    let chain: [NIOSSLCertificate]
    let key: NIOSSLPrivateKey

    init(chain: [NIOSSLCertificate], key: NIOSSLPrivateKey, names: [String], coveredNames: [String], notValidBefore: Int64, notValidAfter: Int64, source: Source) {
        self.chain = chain
        self.key = key
        self.names = names
        self.coveredNames = coveredNames
        self.notValidBefore = notValidBefore
        self.notValidAfter = notValidAfter
        self.source = source
        switch source {
        case .file(let path):
            self.label = names.first ?? String(path.split(separator: "/").last ?? Substring(path))
        case .uploaded:
            self.label = names.first ?? ""
        }
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = chain.map { .certificate($0) }
        override.privateKey = .privateKey(key)
        self.override = override
    }

    /// Parses and checks a chain (leaf first) and its key: the key belongs to the leaf, each
    /// certificate is issued by the next, and BoringSSL (which serves it) reads both. For an
    /// upload, the leaf must cover `domain`, and only that name is served with it.
    ///
    /// The dates are not judged here: an expired certificate (or one not yet valid) is still
    /// loaded and served, and logged as such, because refusing it would refuse the whole
    /// configuration — every other name with it — at the next reload or restart. `erp-gateway
    /// check` reports it as an error.
    static func load(chainPEM: String, keyPEM: String, source: Source, domain: String? = nil) throws(CertificateProblem) -> EdgeCertificate {
        // libcrypto (the Certificates module) judges the pair; the validity window is set
        // aside by inspecting at the leaf's own start.
        let dates = try CertificateInspection.summary(chainPEM: chainPEM)
        let summary = try CertificateInspection.check(
            chainPEM: chainPEM, keyPEM: keyPEM, covering: domain.map { [$0] } ?? [], now: dates.notBefore
        )
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(chainPEM.utf8))
        } catch {
            throw .unreadableCertificate(position: 0)
        }
        do {
            key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        } catch {
            throw .unreadableKey
        }
        let names = domain.map { [$0.lowercased()] } ?? summary.names
        return EdgeCertificate(
            chain: chain, key: key, names: names, coveredNames: summary.names, notValidBefore: summary.notBefore,
            notValidAfter: summary.notAfter, source: source
        )
    }

    /// Seconds from `now` until the leaf expires (negative once expired).
    public func secondsLeft(now: Int64) -> Int64 { self.notValidAfter - now }
}
