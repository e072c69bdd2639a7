import Foundation
import NIOSSL

extension GatewaySettings {
    /// How the gateway speaks TLS to the endpoints of one cell: present exactly when the cell's
    /// endpoints are `https://` URLs. The certificate of every endpoint is verified against
    /// `caBundle` (or the system's trust store) and must name `serverName` (or the endpoint's
    /// host); there is no way to turn verification off.
    ///
    /// The files' contents are part of the value, so a reload that finds a file replaced sees
    /// different settings (and compiles a new context), and one that finds everything as it was
    /// keeps the context it had (`UpstreamTLSContext.cache`).
    public struct CellTLS: Sendable, Hashable {
        /// The oldest protocol version offered. TLS 1.0 and 1.1 are not offered at all.
        public enum MinimumVersion: String, Sendable, Hashable, CaseIterable {
            case tls12 = "TLSv1.2"
            case tls13 = "TLSv1.3"
        }

        /// A client certificate (the leaf first, then any intermediates) and its private key,
        /// presented to endpoints that ask for one (mutual TLS).
        public struct ClientIdentity: Sendable, Hashable {
            public var certificate: PEMFile
            public var key: PEMFile

            public init(certificate: PEMFile, key: PEMFile) {
                self.certificate = certificate
                self.key = key
            }
        }

        /// The certificates trusted to sign the endpoints' certificates; nil: the system's
        /// trust store.
        public var caBundle: PEMFile?
        /// The name each endpoint's certificate must carry, also sent as SNI; nil: the
        /// endpoint's own host (see `UpstreamTLSContext.serverHostname(for:)`).
        public var serverName: String?
        public var clientIdentity: ClientIdentity?
        public var minimumVersion: MinimumVersion

        public init(caBundle: PEMFile? = nil, serverName: String? = nil, clientIdentity: ClientIdentity? = nil, minimumVersion: MinimumVersion = .tls12) {
            self.caBundle = caBundle
            self.serverName = serverName
            self.clientIdentity = clientIdentity
            self.minimumVersion = minimumVersion
        }

        /// The files the settings were read from: a change to one is a configuration change.
        public var files: [String] {
            [self.caBundle?.path, self.clientIdentity?.certificate.path, self.clientIdentity?.key.path].compactMap { $0 }
        }
    }

    /// The text of a PEM file as it was read at load, with the file's absolute path. It prints
    /// as its path only: one of these holds a private key, and settings end up in logs and test
    /// failure messages.
    public struct PEMFile: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
        public var path: String
        public var pem: String

        public init(path: String, pem: String) {
            self.path = path
            self.pem = pem
        }

        public var description: String { self.path }
        public var debugDescription: String { "PEMFile(\(self.path))" }
        public var customMirror: Mirror { Mirror(self, children: ["path": self.path]) }
    }
}

extension YAMLReader {
    static let cellTLSKeys: Set<String> = ["caBundle", "serverName", "clientCertificate", "clientKey", "minimumVersion"]

    /// Reads a cell's `tls` block. Every file is read and parsed now — the CA bundle must hold
    /// certificates, the key must be a PEM private key that belongs to the client certificate —
    /// so a wrong file is a configuration error with its line, not a handshake failure at the
    /// first request.
    mutating func cellTLS(_ cursor: Cursor, baseDirectory: String?) -> GatewaySettings.CellTLS? {
        guard let map = self.mapping(cursor, allowedKeys: Self.cellTLSKeys) else { return nil }
        var tls = GatewaySettings.CellTLS()
        var valid = true
        if let c = map["caBundle"] {
            if let file = self.pemFile(c, baseDirectory: baseDirectory), self.certificates(in: file, at: c) != nil {
                tls.caBundle = file
            } else {
                valid = false
            }
        }
        if let c = map["serverName"], let name = self.presentString(c) {
            if TLSNames.isDNSName(name) {
                tls.serverName = name
            } else {
                self.report(
                    c, "'\(name)' is not a DNS name: serverName is the name the cell's certificates carry (for an endpoint addressed by IP, leave serverName out and put the address in the certificates)"
                )
                valid = false
            }
        }
        if let c = map["minimumVersion"] {
            if let version = self.choice(c, among: GatewaySettings.CellTLS.MinimumVersion.allCases) { tls.minimumVersion = version } else { valid = false }
        }
        switch (map["clientCertificate"], map["clientKey"]) {
        case (nil, nil):
            break
        case (let certificateCursor?, let keyCursor?):
            guard let certificate = self.pemFile(certificateCursor, baseDirectory: baseDirectory),
                let key = self.pemFile(keyCursor, baseDirectory: baseDirectory)
            else {
                valid = false
                break
            }
            let chain = self.certificates(in: certificate, at: certificateCursor)
            let privateKey: NIOSSLPrivateKey?
            do {
                privateKey = try NIOSSLPrivateKey(bytes: Array(key.pem.utf8), format: .pem)
            } catch {
                self.report(keyCursor, "'\(key.path)' holds no PEM private key (keys protected by a passphrase are not supported)")
                privateKey = nil
            }
            guard let chain, let privateKey else {
                valid = false
                break
            }
            if !TLSNames.belong(privateKey, to: chain) {
                self.report(keyCursor, "the key in '\(key.path)' does not belong to the certificate in '\(certificate.path)'")
                valid = false
                break
            }
            tls.clientIdentity = .init(certificate: certificate, key: key)
        default:
            self.report(cursor, "clientCertificate and clientKey go together: give both (mutual TLS) or neither")
            valid = false
        }
        return valid ? tls : nil
    }

    /// Reads the file a setting names, relative to the settings file's directory.
    private mutating func pemFile(_ cursor: Cursor, baseDirectory: String?) -> GatewaySettings.PEMFile? {
        guard let path = self.presentString(cursor) else { return nil }
        guard !path.isEmpty else {
            self.report(cursor, "must name a PEM file")
            return nil
        }
        let resolved = SettingsLoader.resolve(path, against: baseDirectory)
        guard let text = try? String(contentsOfFile: resolved, encoding: .utf8) else {
            self.report(cursor, "cannot read '\(resolved)'")
            return nil
        }
        return .init(path: resolved, pem: text)
    }

    private mutating func certificates(in file: GatewaySettings.PEMFile, at cursor: Cursor) -> [NIOSSLCertificate]? {
        guard let certificates = try? NIOSSLCertificate.fromPEMBytes(Array(file.pem.utf8)), !certificates.isEmpty else {
            self.report(cursor, "'\(file.path)' holds no PEM certificate")
            return nil
        }
        return certificates
    }
}

/// Name and key checks shared by the loader and the compiled contexts.
enum TLSNames {
    /// A host name as SNI carries it: letters, digits, `-` and `.`, at most 253 bytes, and not
    /// an IP address (RFC 6066 §3 forbids addresses in SNI).
    static func isDNSName(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253, !self.isIPAddress(text) else { return false }
        return text.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
        }
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return text.withCString { inet_pton(AF_INET, $0, &v4) == 1 || inet_pton(AF_INET6, $0, &v6) == 1 }
    }

    /// Whether `key` is the private key of the first certificate of `chain`. BoringSSL checks
    /// this when a context takes a certificate and key; a context that verifies nothing is the
    /// cheapest way to ask it (no trust store is loaded).
    static func belong(_ key: NIOSSLPrivateKey, to chain: [NIOSSLCertificate]) -> Bool {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        configuration.trustRoots = .certificates([])
        configuration.certificateChain = chain.map { .certificate($0) }
        configuration.privateKey = .privateKey(key)
        return (try? NIOSSLContext(configuration: configuration)) != nil
    }
}
