/// A certificate a partner uploaded through the admin API for one of its portal domains, as the
/// admin store hands it over: the domain it serves, the chain (leaf first) and the key as PEM
/// (the key decrypted by then), and the node that owns the domain.
public struct UploadedCertificate: Sendable, Hashable {
    /// The portal domain it is presented for (SNI); the leaf must cover it.
    public var domain: String
    public var chainPEM: String
    public var keyPEM: String
    /// The id of the tenant node that uploaded it (logs only; never a metric label).
    public var node: String

    public init(domain: String, chainPEM: String, keyPEM: String, node: String) {
        self.domain = domain
        self.chainPEM = chainPEM
        self.keyPEM = keyPEM
        self.node = node
    }
}

/// An uploaded certificate that was not installed, and why; the others were.
public struct UploadRejection: Sendable, Hashable, CustomStringConvertible {
    public var domain: String
    public var node: String
    public var reason: String

    public var description: String { "\(self.domain) (node \(self.node)): \(self.reason)" }
}
