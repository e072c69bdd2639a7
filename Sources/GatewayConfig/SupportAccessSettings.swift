import Foundation
import TokenAuth

extension GatewaySettings {
    /// `supportAccess`: just-in-time access of support engineers to one customer at a time
    /// (docs/support-access.md). The gateway mints each approved grant's token itself with
    /// `signingKey`, and verifies those tokens as a built-in issuer whose public key is derived
    /// from that same key: no other issuer can mint a support token the data plane honours.
    public struct SupportAccess: Sendable, Hashable, CustomStringConvertible, CustomReflectable {
        /// `iss` of support tokens; an issuer of `platformIssuers` may not use it.
        public var issuer: String = "erp-gateway-support"
        /// `aud` of support tokens.
        public var audience: String = "erp-gateway-support"
        /// The key file, resolved against the settings file's directory; watched for changes.
        public var signingKeyFile: String
        /// The private key PEM (read at load, never printed).
        public var signingKeyPEM: String
        /// Derived from the private key at load.
        public var verificationKeyPEM: String
        public var algorithm: SigningAlgorithm
        public var keyID: String = "support-1"
        /// The longest grant anyone may ask for, whatever the tree's policies say (they only
        /// ever shorten it); also the longest lifetime the verifier accepts for a support token.
        public var maxDuration: Duration = .seconds(8 * 3600)
        /// Session records waiting to be written to the shared store, per process; beyond it
        /// records are dropped and counted.
        public var sessionBuffer: Int = 10_000
        /// How long a requested grant waits for an approval or a refusal; unanswered by then it
        /// is expired, so that nobody approves it days later, when the need has passed.
        public var answerWithin: Duration = .seconds(24 * 3600)
        /// How long a grant that ended (refused, revoked, expired) stays listed and stored; the
        /// audit stream keeps its history after that. Bounds what a customer's grants take up.
        public var keepEnded: Duration = .seconds(30 * 24 * 3600)

        public init(signingKeyFile: String, signingKeyPEM: String, verificationKeyPEM: String, algorithm: SigningAlgorithm) {
            self.signingKeyFile = signingKeyFile
            self.signingKeyPEM = signingKeyPEM
            self.verificationKeyPEM = verificationKeyPEM
            self.algorithm = algorithm
        }

        /// The built-in issuer that verifies support tokens on the data plane. Platform-wide,
        /// like a platform issuer: which customer a token may act for is the grant's, checked
        /// by the data plane against the token's claims. No clock skew: the same gateway (or
        /// its peers, on one store) mints and checks, and a grant must end when it says.
        public var issuerDefinition: IssuerDefinition {
            IssuerDefinition(
                issuer: self.issuer, audience: self.audience, maxLifetime: self.maxDuration, clockSkew: .zero, tenantClaim: "tenant",
                keys: [IssuerDefinition.KeyDefinition(
                    kid: self.keyID, algorithm: self.algorithm.rawValue, material: .publicKeyPEM(self.verificationKeyPEM), path: "supportAccess.signingKey",
                    file: self.signingKeyFile
                )],
                node: nil, path: "supportAccess"
            )
        }

        /// Printing or dumping the settings never shows the private key.
        public var customMirror: Mirror {
            Mirror(self, children: [
                "issuer": self.issuer, "audience": self.audience, "signingKeyFile": self.signingKeyFile, "algorithm": self.algorithm.rawValue,
                "keyID": self.keyID, "maxDuration": self.maxDuration, "sessionBuffer": self.sessionBuffer,
                "answerWithin": self.answerWithin, "keepEnded": self.keepEnded,
            ])
        }

        public var description: String {
            "supportAccess(\(self.issuer), key \(self.signingKeyFile) \(self.algorithm.rawValue) \(self.keyID), maxDuration \(self.maxDuration))"
        }
    }

    /// The issuers the data plane verifies: the platform's, and the gateway's own support
    /// issuer when support access is on.
    public var dataPlaneIssuers: [IssuerDefinition] {
        self.platformIssuers + (self.supportAccess.map { [$0.issuerDefinition] } ?? [])
    }
}

extension SettingsLoader {
    static let supportAccessKeys: Set<String> = ["issuer", "audience", "signingKey", "algorithm", "keyId", "maxDuration", "sessionBuffer", "answerWithin", "keepEnded"]

    /// The key file is read, and its public key derived, here: a missing or unreadable key stops
    /// `check`, the start and a reload alike instead of failing the first approved grant.
    static func supportAccess(_ cursor: YAMLReader.Cursor, baseDirectory: String?, _ reader: inout YAMLReader) -> GatewaySettings.SupportAccess? {
        guard let map = reader.mapping(cursor, allowedKeys: Self.supportAccessKeys) else { return nil }
        guard let keyCursor = map["signingKey"] else {
            reader.report(cursor, "missing required key 'signingKey' (a private key PEM file: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)")
            return nil
        }
        guard let algorithmCursor = map["algorithm"] else {
            reader.report(cursor, "missing required key 'algorithm' (ES256, ES384, RS256, PS256, EdDSA, …: the signing key's)")
            return nil
        }
        guard let path = reader.presentString(keyCursor), let algorithm = reader.choice(algorithmCursor, among: SigningAlgorithm.allCases) else { return nil }
        if algorithm.rawValue.hasPrefix("HS") {
            reader.report(algorithmCursor, "support tokens are signed with a private key: HS algorithms are not accepted")
            return nil
        }
        let resolved = Self.resolve(path, against: baseDirectory)
        guard let data = FileManager.default.contents(atPath: resolved), let pem = String(data: data, encoding: .utf8) else {
            reader.report(keyCursor, "cannot read the signing key file '\(path)'")
            return nil
        }
        guard let publicPEM = SigningKeyPair.publicKeyPEM(ofPrivateKeyPEM: pem) else {
            reader.report(keyCursor, "'\(path)' holds no private key in PEM")
            return nil
        }
        var settings = GatewaySettings.SupportAccess(signingKeyFile: resolved, signingKeyPEM: pem, verificationKeyPEM: publicPEM, algorithm: algorithm)
        do {
            // Signing once now proves the key fits the algorithm.
            _ = try TokenMinter.mint(claims: ["sub": "check"], algorithm: algorithm, kid: nil, privateKeyPEM: pem)
        } catch {
            reader.report(algorithmCursor, "the signing key cannot sign \(algorithm.rawValue): \(error)")
            return nil
        }
        if let c = map["issuer"], let text = reader.presentString(c) {
            if text.isEmpty { reader.report(c, "must not be empty") } else { settings.issuer = text }
        }
        if let c = map["audience"], let text = reader.presentString(c) {
            if text.isEmpty { reader.report(c, "must not be empty") } else { settings.audience = text }
        }
        if let c = map["keyId"], let text = reader.presentString(c) {
            if text.isEmpty { reader.report(c, "must not be empty") } else { settings.keyID = text }
        }
        if let c = map["maxDuration"], let value = reader.duration(c, in: .seconds(1) ... .seconds(7 * 24 * 3600)) { settings.maxDuration = value }
        if let c = map["sessionBuffer"], let value = reader.integer(c, in: 1...1_000_000) { settings.sessionBuffer = value }
        if let c = map["answerWithin"], let value = reader.duration(c, in: .seconds(60) ... .seconds(7 * 24 * 3600)) { settings.answerWithin = value }
        if let c = map["keepEnded"], let value = reader.duration(c, in: .seconds(3600) ... .seconds(366 * 24 * 3600)) { settings.keepEnded = value }
        return settings
    }
}
