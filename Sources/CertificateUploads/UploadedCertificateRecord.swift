import Certificates

/// One uploaded certificate ready to serve: what a node hands to TLS termination for the
/// domain. Its key is the opened PEM, so this value lives in memory only; printing it shows its
/// domain, node and fingerprint, never the key.
public struct UploadedCertificateRecord: Sendable, Hashable, CustomStringConvertible, CustomReflectable {
    /// The portal domain the certificate is served for (SNI name), lowercase.
    public let domain: String
    /// The id of the node whose portal domain it is.
    public let node: String
    /// PEM, leaf first, then its issuers, as uploaded.
    public let chainPEM: String
    /// The private key's PEM (unencrypted PKCS#8, RSA or EC), opened with the key-encryption key.
    public let keyPEM: String
    public let summary: CertificateSummary
    /// The stored record's version: a new upload for the domain has a higher one.
    public let version: Int64

    public init(domain: String, node: String, chainPEM: String, keyPEM: String, summary: CertificateSummary, version: Int64) {
        self.domain = domain
        self.node = node
        self.chainPEM = chainPEM
        self.keyPEM = keyPEM
        self.summary = summary
        self.version = version
    }

    public var description: String {
        "certificate for \(self.domain) of node \(self.node), fingerprint \(self.summary.fingerprint), version \(self.version)"
    }

    public var customMirror: Mirror {
        Mirror(self, children: ["domain": self.domain, "node": self.node, "fingerprint": self.summary.fingerprint, "version": self.version])
    }
}
