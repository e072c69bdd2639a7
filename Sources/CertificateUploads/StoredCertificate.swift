import Certificates
import Foundation

/// One uploaded certificate as the shared store keeps it, one per portal domain: the chain as
/// uploaded, the private key sealed with the key-encryption key and bound to its domain and
/// node, what the chain says about itself, who uploaded it and when, and its version.
///
/// Printing one shows its domain, node, fingerprint and version only: the sealed key never
/// reaches a log line by accident.
public struct StoredCertificate: Sendable, Hashable, CustomStringConvertible, CustomReflectable {
    public var domain: String
    /// The id of the node whose portal domain it was uploaded for.
    public var node: String
    /// PEM, leaf first, as uploaded.
    public var chainPEM: String
    /// `KeyEncryptionKey.seal`'s text of the private key's PEM, bound to `keyContext`.
    public var sealedKey: String
    public var summary: CertificateSummary
    /// Unix seconds.
    public var uploadedAt: Int64
    /// The admin token's `sub`.
    public var uploadedBy: String
    /// 1 for the domain's first upload, +1 for every replacement or deletion after it; the
    /// store's compare-and-set turns on it.
    public var version: Int64

    public init(
        domain: String, node: String, chainPEM: String, sealedKey: String, summary: CertificateSummary, uploadedAt: Int64, uploadedBy: String,
        version: Int64
    ) {
        self.domain = domain
        self.node = node
        self.chainPEM = chainPEM
        self.sealedKey = sealedKey
        self.summary = summary
        self.uploadedAt = uploadedAt
        self.uploadedBy = uploadedBy
        self.version = version
    }

    /// What a sealed key is bound to: its domain and its node. A sealed key copied into another
    /// domain's or node's record does not open there.
    public static func keyContext(domain: String, node: String) -> String {
        "\(domain)|\(node)"
    }

    /// A record whose key is sealed here, under `keyEncryptionKey`, for `domain` and `node`.
    public static func sealing(
        keyPEM: String, with keyEncryptionKey: KeyEncryptionKey, domain: String, node: String, chainPEM: String, summary: CertificateSummary,
        uploadedAt: Int64, uploadedBy: String, version: Int64
    ) -> StoredCertificate {
        let sealed = keyEncryptionKey.seal(Array(keyPEM.utf8), context: Self.keyContext(domain: domain, node: node))
        return StoredCertificate(
            domain: domain, node: node, chainPEM: chainPEM, sealedKey: sealed, summary: summary, uploadedAt: uploadedAt, uploadedBy: uploadedBy,
            version: version
        )
    }

    /// The private key's PEM, opened with `keyEncryptionKey` under this record's own context.
    public func openKey(with keyEncryptionKey: KeyEncryptionKey) throws(KeyEncryptionKey.OpenFailure) -> String {
        String(decoding: try keyEncryptionKey.open(self.sealedKey, context: Self.keyContext(domain: self.domain, node: self.node)), as: UTF8.self)
    }

    public var description: String {
        "certificate for \(self.domain) of node \(self.node), fingerprint \(self.summary.fingerprint), version \(self.version)"
    }

    public var customMirror: Mirror {
        Mirror(self, children: ["domain": self.domain, "node": self.node, "fingerprint": self.summary.fingerprint, "version": self.version])
    }

    // MARK: - As stored

    /// The stored JSON: flat, every field named.
    private struct Stored: Codable {
        var domain: String
        var node: String
        var chain: String
        var sealedKey: String
        var names: [String]
        var subject: String
        var issuer: String
        var notBefore: Int64
        var notAfter: Int64
        var chainLength: Int
        var fingerprint: String
        var uploadedAt: Int64
        var uploadedBy: String
        var version: Int64
    }

    /// The text the store holds.
    public var storedText: String {
        let stored = Stored(
            domain: self.domain, node: self.node, chain: self.chainPEM, sealedKey: self.sealedKey, names: self.summary.names,
            subject: self.summary.subject, issuer: self.summary.issuer, notBefore: self.summary.notBefore, notAfter: self.summary.notAfter,
            chainLength: self.summary.chainLength, fingerprint: self.summary.fingerprint, uploadedAt: self.uploadedAt, uploadedBy: self.uploadedBy,
            version: self.version
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings and integers only: encoding cannot fail.
        return String(decoding: try! encoder.encode(stored), as: UTF8.self)
    }

    /// Reads a stored text back; nil for anything that is not one.
    public init?(storedText: String) {
        guard let stored = try? JSONDecoder().decode(Stored.self, from: Data(storedText.utf8)) else { return nil }
        self.init(
            domain: stored.domain, node: stored.node, chainPEM: stored.chain, sealedKey: stored.sealedKey,
            summary: CertificateSummary(
                names: stored.names, subject: stored.subject, issuer: stored.issuer, notBefore: stored.notBefore, notAfter: stored.notAfter,
                chainLength: stored.chainLength, fingerprint: stored.fingerprint
            ),
            uploadedAt: stored.uploadedAt, uploadedBy: stored.uploadedBy, version: stored.version
        )
    }
}
