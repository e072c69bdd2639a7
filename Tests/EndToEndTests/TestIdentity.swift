import Foundation
import XCTest

/// Signing keys for the tests' issuers, made once per test run with the `openssl` command, and
/// tokens minted with the gateway's own `erp-gateway token mint`.
enum TestIdentity {
    struct KeyPair {
        let privateKey: String
        let publicKey: String
    }

    static let directory: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-keys-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    static let platform = Self.generate("platform", algorithm: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    static let acmeOld = Self.generate("acme-1", algorithm: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    static let acmeNew = Self.generate("acme-2", algorithm: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    static let globex = Self.generate("globex", algorithm: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
    static let partnerOne = Self.generate("p1", algorithm: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    /// The key partner P1 rotates to.
    static let partnerOneNew = Self.generate("p1-2", algorithm: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
    /// Ed25519 keys (EdDSA tokens).
    static let edOne = Self.generate("ed-1", algorithm: ["-algorithm", "ED25519"])
    /// The gateway's own support-token signing key (`supportAccess.signingKey`).
    static let support = Self.generate("support", algorithm: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
    /// The admin identity service's key (admin tokens).
    static let admin = Self.generate("admin", algorithm: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])

    /// A base64 HMAC secret file, for issuers that allow HMAC.
    static let sharedSecret: String = {
        let path = Self.directory.appendingPathComponent("shared.secret").path
        let secret = Data((0..<48).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }).base64EncodedString()
        try? secret.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }()

    static var sharedSecretBase64: String { (try? String(contentsOfFile: Self.sharedSecret, encoding: .utf8)) ?? "" }

    private static func generate(_ name: String, algorithm: [String]) -> KeyPair {
        let privateKey = Self.directory.appendingPathComponent("\(name).key.pem").path
        let publicKey = Self.directory.appendingPathComponent("\(name).pub.pem").path
        if !FileManager.default.fileExists(atPath: publicKey) {
            _ = try? runCommand(URL(fileURLWithPath: "/usr/bin/openssl"), ["genpkey"] + algorithm + ["-out", privateKey])
            _ = try? runCommand(URL(fileURLWithPath: "/usr/bin/openssl"), ["pkey", "-in", privateKey, "-pubout", "-out", publicKey])
        }
        return KeyPair(privateKey: privateKey, publicKey: publicKey)
    }

    /// Mints a token with `erp-gateway token mint`.
    static func mint(
        issuer: String, key: String, alg: String = "RS256", kid: String?, tenant: String, audience: String = "erp-gateway", ttl: Int = 600,
        claims: [String] = [], file: StaticString = #filePath, line: UInt = #line
    ) throws -> String {
        var arguments = ["token", "mint", "--issuer", issuer, "--key", key, "--alg", alg, "--tenant", tenant, "--audience", audience, "--ttl", "\(ttl)"]
        if let kid { arguments += ["--kid", kid] }
        for claim in claims { arguments += ["--claim", claim] }
        let (status, output) = try runCommand(GatewayProcess.binary, arguments)
        XCTAssertEqual(status, 0, output, file: file, line: line)
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The upstream-context signing settings every multi-tenant test gateway uses.
    static let contextKeyID = "ctx-test"
    static let contextSecretBase64 = Data((0..<32).map { UInt8($0) &+ 100 }).base64EncodedString()

    static var upstreamContextSettings: String {
        """
        upstreamContext:
          signingKeys:
            - id: \(Self.contextKeyID)
              secret: \(Self.contextSecretBase64)
          activeKey: \(Self.contextKeyID)

        """
    }
}
