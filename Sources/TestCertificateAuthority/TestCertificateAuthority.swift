import Foundation

/// A certificate authority made at test time with the `openssl` command line tool: a CA, then
/// server certificates for given domains (current, expired or not yet valid), client
/// certificates for mutual TLS, and keys that belong to none of them. Shared by every test
/// target that needs certificates, so no test depends on a file checked into the repository
/// (which would expire).
public final class TestCertificateAuthority: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// A key and the certificate issued for it, as files and as PEM text. `chainPEM` is the leaf
    /// followed by the CA certificate, as a server presents it.
    public struct Issued: Sendable {
        public let certificatePath: String
        public let keyPath: String
        public let chainPath: String
        public let certificatePEM: String
        public let keyPEM: String
        public let chainPEM: String
    }

    public enum KeyKind: Sendable {
        case ecdsaP256
        case rsa2048
    }

    public let directory: URL
    public let certificatePath: String
    public let keyPath: String
    public var certificatePEM: String { (try? String(contentsOfFile: self.certificatePath, encoding: .utf8)) ?? "" }
    private var serial = 0x1000
    private let lock = NSLock()

    public static let openssl = "/usr/bin/openssl"

    /// A new CA in a directory of its own under the temporary directory.
    public init(commonName: String = "erp-gateway test CA") throws {
        guard FileManager.default.isExecutableFile(atPath: Self.openssl) else {
            throw Failure(description: "\(Self.openssl) is missing: install Debian's openssl (scripts/install-deps.sh)")
        }
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-test-ca-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        self.certificatePath = self.directory.appendingPathComponent("ca.pem").path
        self.keyPath = self.directory.appendingPathComponent("ca.key").path
        try Self.run([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650",
            "-subj", "/CN=\(commonName)", "-keyout", self.keyPath, "-out", self.certificatePath,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
    }

    deinit {
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// A server certificate whose subject alternative names are `domains` (wildcards such as
    /// `*.example.test` allowed; an IP address is written as one), valid from `validFrom` to
    /// `validUntil` (defaults: an hour ago to 30 days on).
    public func issueServer(
        domains: [String], validFrom: Date = Date(timeIntervalSinceNow: -3600), validUntil: Date = Date(timeIntervalSinceNow: 30 * 86400),
        key: KeyKind = .ecdsaP256
    ) throws -> Issued {
        let names = domains.map { Self.isIPAddress($0) ? "IP:\($0)" : "DNS:\($0)" }.joined(separator: ",")
        let extensions = """
            basicConstraints=critical,CA:FALSE
            keyUsage=critical,digitalSignature,keyEncipherment
            extendedKeyUsage=serverAuth
            subjectAltName=\(names)
            """
        return try self.issue(commonName: domains.first ?? "server", extensions: extensions, validFrom: validFrom, validUntil: validUntil, key: key)
    }

    /// A client certificate (for mutual TLS) with the given common name.
    public func issueClient(commonName: String, validUntil: Date = Date(timeIntervalSinceNow: 30 * 86400)) throws -> Issued {
        let extensions = """
            basicConstraints=critical,CA:FALSE
            keyUsage=critical,digitalSignature
            extendedKeyUsage=clientAuth
            """
        return try self.issue(commonName: commonName, extensions: extensions, validFrom: Date(timeIntervalSinceNow: -3600), validUntil: validUntil, key: .ecdsaP256)
    }

    /// A private key that belongs to no certificate, as a PEM file; returns its path and text.
    public func unrelatedKey(_ key: KeyKind = .ecdsaP256) throws -> (path: String, pem: String) {
        let path = self.nextPath("unrelated.key")
        try Self.run(Self.keyArguments(key) + ["-out", path])
        return (path, try String(contentsOfFile: path, encoding: .utf8))
    }

    private func issue(commonName: String, extensions: String, validFrom: Date, validUntil: Date, key: KeyKind) throws -> Issued {
        let base = self.nextPath(commonName.replacingOccurrences(of: "*", with: "wildcard"))
        let keyPath = base + ".key", csrPath = base + ".csr", certificatePath = base + ".pem", chainPath = base + ".chain.pem"
        let extensionsPath = base + ".ext", configPath = base + ".cnf", serialPath = base + ".serial", serial = self.nextSerial()
        try extensions.write(toFile: extensionsPath, atomically: true, encoding: .utf8)
        // `openssl ca` is the only 3.0 command that takes explicit start and end dates (an expired
        // certificate, one not yet valid); it wants a database of issued certificates.
        let database = self.directory.appendingPathComponent("index.txt").path
        if !FileManager.default.fileExists(atPath: database) { FileManager.default.createFile(atPath: database, contents: Data()) }
        let config = """
            [ca]
            default_ca = test_ca
            [test_ca]
            database = \(database)
            serial = \(serialPath)
            new_certs_dir = \(self.directory.path)
            certificate = \(self.certificatePath)
            private_key = \(self.keyPath)
            default_md = sha256
            policy = anything
            unique_subject = no
            copy_extensions = none
            [anything]
            commonName = supplied
            """
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        try String(format: "%04X\n", serial).write(toFile: serialPath, atomically: true, encoding: .utf8)
        try Self.run(Self.keyArguments(key) + ["-out", keyPath])
        try Self.run(["req", "-new", "-key", keyPath, "-subj", "/CN=\(commonName)", "-out", csrPath])
        try Self.run([
            "ca", "-batch", "-notext", "-config", configPath, "-extfile", extensionsPath, "-in", csrPath, "-out", certificatePath,
            "-startdate", Self.asn1Time(validFrom), "-enddate", Self.asn1Time(validUntil),
        ])
        let certificate = try String(contentsOfFile: certificatePath, encoding: .utf8)
        let chain = certificate + self.certificatePEM
        try chain.write(toFile: chainPath, atomically: true, encoding: .utf8)
        return Issued(
            certificatePath: certificatePath, keyPath: keyPath, chainPath: chainPath, certificatePEM: certificate,
            keyPEM: try String(contentsOfFile: keyPath, encoding: .utf8), chainPEM: chain
        )
    }

    private func nextSerial() -> Int {
        self.lock.lock()
        defer { self.lock.unlock() }
        self.serial += 1
        return self.serial
    }

    private func nextPath(_ name: String) -> String {
        self.directory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))").path
    }

    private static func keyArguments(_ key: KeyKind) -> [String] {
        switch key {
        case .ecdsaP256: ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
        case .rsa2048: ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
        }
    }

    private static func isIPAddress(_ text: String) -> Bool {
        !text.isEmpty && (text.allSatisfy { $0.isNumber || $0 == "." } || text.contains(":"))
    }

    /// `YYYYMMDDHHMMSSZ`, in UTC.
    private static func asn1Time(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02d%02d%02d%02dZ", parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!, parts.second!)
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let (status, text) = try Self.openssl(arguments)
        guard status == 0 else {
            throw Failure(description: "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(text)")
        }
        return text
    }

    /// Runs the openssl tool; its exit status and what it printed (stdout and stderr).
    public static func openssl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.openssl)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
