import NIOSSL

extension GatewaySettings.CellTLS {
    /// The TLS client configuration these settings describe, for a cell's endpoints and for a
    /// `rediss://` Redis alike: trusted CAs, a client certificate when the server asks for one,
    /// the oldest version offered. Certificates and names are always verified; nothing in the
    /// settings can lower this.
    public func clientConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .fullVerification
        configuration.minimumTLSVersion = self.minimumVersion == .tls13 ? .tlsv13 : .tlsv12
        if let bundle = self.caBundle {
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(bundle.pem.utf8)))
        } else {
            configuration.trustRoots = .default
        }
        if let identity = self.clientIdentity {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificate.pem.utf8)).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(identity.key.pem.utf8), format: .pem))
        }
        return configuration
    }

    /// The client context of a `rediss://` Redis, from `redis.tls` (the keys of a cell's `tls`).
    /// Unlike a cell's context it offers no ALPN: Redis negotiates none.
    public func makeRedisClientContext() throws -> NIOSSLContext {
        try NIOSSLContext(configuration: self.clientConfiguration())
    }
}
