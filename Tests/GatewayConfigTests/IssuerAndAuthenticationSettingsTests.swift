import Foundation
import Hierarchy
import XCTest
@testable import GatewayConfig

/// Token issuers (`platformIssuers` in the settings, `issuers` on tree nodes), `authentication`
/// and `upstreamContext`: what the loaders read, every shape they reject with its key path and
/// line, and the keys `GatewayConfiguration.load` parses into the token verifier.
///
/// Keys are the public demo keys of deploy/examples/keys, copied into a fresh directory per test
/// so relative key files can be laid out next to the files that name them.
final class IssuerAndAuthenticationSettingsTests: XCTestCase {
    private static var packageRoot: URL {
        URL(fileURLWithPath: #filePath)  // Tests/GatewayConfigTests/IssuerAndAuthenticationSettingsTests.swift
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    private static func demoKey(_ name: String) -> URL {
        Self.packageRoot.appendingPathComponent("deploy/examples/keys/\(name)")
    }

    /// Base64 of the 32 bytes "0123456789abcdef0123456789abcdef": long enough for HS256 and for
    /// an upstream context key.
    private static let secret32 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    private static let secret32Bytes = Array("0123456789abcdef0123456789abcdef".utf8)
    /// Base64 of 31 bytes: one short of every minimum.
    private static let secret31 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZQ=="

    /// A fresh directory holding `keys/` with: an RSA-2048 public key, an EC P-256 public key, an
    /// RSA private key, a PEM block that holds no key, and a base64 secret file.
    private var directory: URL!

    override func setUpWithError() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-issuers-\(UUID().uuidString)")
        let keys = directory.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.demoKey("platform-1.public.pem"), to: keys.appendingPathComponent("rsa.public.pem"))
        try FileManager.default.copyItem(at: Self.demoKey("erp-cloud-1.public.pem"), to: keys.appendingPathComponent("ec.public.pem"))
        try FileManager.default.copyItem(at: Self.demoKey("platform-1.private.pem"), to: keys.appendingPathComponent("rsa.private.pem"))
        try "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"
            .write(to: keys.appendingPathComponent("not-a-key.pem"), atomically: true, encoding: .utf8)
        try "\(Self.secret32)\n".write(to: keys.appendingPathComponent("hmac.secret"), atomically: true, encoding: .utf8)
        self.directory = directory
    }

    override func tearDownWithError() throws {
        if let directory { try FileManager.default.removeItem(at: directory) }
    }

    private func file(_ relativePath: String) -> String {
        self.directory.appendingPathComponent(relativePath).path
    }

    private func contents(_ relativePath: String) throws -> String {
        try String(contentsOfFile: self.file(relativePath), encoding: .utf8)
    }

    // MARK: - Issuer mappings

    func testPlatformIssuerReadsEveryField() throws {
        let ecPEM = try self.contents("keys/ec.public.pem")
        let yaml = minimalSettingsYAML + """

            platformIssuers:
              - iss: https://id.platform.test
                audience: erp-api
                maxLifetime: 15m
                clockSkew: 5s
                tenantClaim: customer
                allowHMAC: true
                keys:
                  - { kid: rsa-1, alg: RS256, pemFile: keys/rsa.public.pem }
                  - kid: ec-1
                    alg: ES256
                    pem: |
            \(Self.indented(ecPEM, by: 10))
                  - { kid: hs-1, alg: HS512, secretFile: keys/hmac.secret }
                  - { kid: hs-2, alg: HS256, secret: \(Self.secret32) }
            """
        let settings = try SettingsLoader.parse(yaml, baseDirectory: self.directory.path)

        XCTAssertEqual(settings.platformIssuers.count, 1)
        let issuer = try XCTUnwrap(settings.platformIssuers.first)
        XCTAssertEqual(issuer.issuer, "https://id.platform.test")
        XCTAssertEqual(issuer.audience, "erp-api")
        XCTAssertEqual(issuer.maxLifetime, .seconds(15 * 60))
        XCTAssertEqual(issuer.clockSkew, .seconds(5))
        XCTAssertEqual(issuer.tenantClaim, "customer")
        XCTAssertTrue(issuer.allowHMAC)
        XCTAssertNil(issuer.node, "a platform issuer belongs to no node")
        XCTAssertEqual(issuer.path, "platformIssuers[0]")
        XCTAssertEqual(issuer.line, 11)

        XCTAssertEqual(issuer.keys.map(\.kid), ["rsa-1", "ec-1", "hs-1", "hs-2"])
        XCTAssertEqual(issuer.keys.map(\.algorithm), ["RS256", "ES256", "HS512", "HS256"])
        XCTAssertEqual(issuer.keys.map(\.path), (0..<4).map { "platformIssuers[0].keys[\($0)]" })
        XCTAssertEqual(issuer.keys.prefix(2).map(\.line), [18, 19])
        // Key files are read at load time; a secret file's surrounding whitespace is not part of it.
        XCTAssertEqual(issuer.keys[0].material, .publicKeyPEM(try self.contents("keys/rsa.public.pem")))
        XCTAssertEqual(issuer.keys[1].material, .publicKeyPEM(ecPEM))
        XCTAssertEqual(issuer.keys[2].material, .secret(Self.secret32Bytes))
        XCTAssertEqual(issuer.keys[3].material, .secret(Self.secret32Bytes))
    }

    func testIssuerFieldsTakeTheirDefaults() throws {
        let yaml = minimalSettingsYAML + """

            platformIssuers:
              - iss: https://id.platform.test
                audience: erp-gateway
                keys: [{ kid: k1, alg: RS256, pemFile: keys/rsa.public.pem }]
            """
        let issuer = try XCTUnwrap(SettingsLoader.parse(yaml, baseDirectory: self.directory.path).platformIssuers.first)

        XCTAssertEqual(issuer.maxLifetime, .seconds(3600))
        XCTAssertEqual(issuer.clockSkew, .seconds(30))
        XCTAssertEqual(issuer.tenantClaim, "tenant")
        XCTAssertFalse(issuer.allowHMAC)
    }

    func testNewSectionsAreOptionalWithoutATenantTree() throws {
        let settings = try SettingsLoader.parse(minimalSettingsYAML)

        XCTAssertEqual(settings.platformIssuers, [])
        XCTAssertEqual(settings.authentication, GatewaySettings.Authentication(maxTokenBytes: 8192, tokenCacheEntries: 10_000))
        XCTAssertNil(settings.upstreamContext)
    }

    func testTreeIssuersAreReadWithTheNodeTheyAreRegisteredOn() throws {
        let yaml = """
            catalog:
              features: [ledger]
            tenants:
              - id: acme
                kind: oem
                issuers:
                  - iss: https://id.acme.test
                    audience: erp-gateway
                    keys: [{ kid: acme-1, alg: RS256, pemFile: keys/rsa.public.pem }]
                  - iss: https://id2.acme.test
                    audience: erp-portal
                    maxLifetime: 5m
                    keys: [{ kid: acme-ec, alg: ES256, pemFile: keys/ec.public.pem }]
              - id: northwind
                kind: partner
                parent: acme
                issuers:
                  - iss: https://login.northwind.test
                    audience: erp-gateway
                    tenantClaim: org
                    keys: [{ kid: nw-1, alg: RS256, pemFile: keys/rsa.public.pem }]
              - id: contoso
                kind: customer
                parent: northwind
            """
        let document = try TenantTreeLoader.parseDocument(yaml, cells: [], baseDirectory: self.directory.path)

        // The tree keeps the `iss` strings (the compiler checks their scope and uniqueness) …
        XCTAssertEqual(document.tree.nodes.map(\.issuers), [["https://id.acme.test", "https://id2.acme.test"], ["https://login.northwind.test"], []])
        XCTAssertEqual(document.tree.nodes[0].fieldLocations["issuers"]?.line, 6)
        // … and the document the whole definitions, for the token verifier.
        let issuers = document.issuers
        XCTAssertEqual(issuers.map(\.issuer), ["https://id.acme.test", "https://id2.acme.test", "https://login.northwind.test"])
        XCTAssertEqual(issuers.map(\.node), ["acme", "acme", "northwind"])
        XCTAssertEqual(issuers.map(\.path), ["tenants[0].issuers[0]", "tenants[0].issuers[1]", "tenants[1].issuers[0]"])
        XCTAssertEqual(issuers.map(\.line), [7, 10, 18])
        XCTAssertEqual(issuers.map(\.audience), ["erp-gateway", "erp-portal", "erp-gateway"])
        XCTAssertEqual(issuers.map(\.maxLifetime), [.seconds(3600), .seconds(300), .seconds(3600)])
        XCTAssertEqual(issuers.map(\.tenantClaim), ["tenant", "tenant", "org"])
        XCTAssertEqual(issuers.flatMap(\.keys).map(\.path), ["tenants[0].issuers[0].keys[0]", "tenants[0].issuers[1].keys[0]", "tenants[1].issuers[0].keys[0]"])
        XCTAssertEqual(issuers[1].keys.first?.material, .publicKeyPEM(try self.contents("keys/ec.public.pem")))
    }

    func testExampleFilesRegisterTheirIssuersAndContextKey() throws {
        let settingsPath = Self.packageRoot.appendingPathComponent("deploy/examples/gateway.yaml").path
        let settings = try SettingsLoader.load(path: settingsPath)

        let platform = try XCTUnwrap(settings.platformIssuers.first)
        XCTAssertEqual(settings.platformIssuers.count, 1)
        XCTAssertEqual(platform.issuer, "https://id.platform.example")
        XCTAssertEqual(platform.audience, "erp-gateway")
        XCTAssertEqual(platform.maxLifetime, .seconds(3600))
        XCTAssertEqual(platform.keys.map(\.kid), ["platform-1"])
        XCTAssertEqual(platform.keys.first?.material, .publicKeyPEM(try String(contentsOf: Self.demoKey("platform-1.public.pem"), encoding: .utf8)))
        XCTAssertEqual(settings.authentication, GatewaySettings.Authentication(maxTokenBytes: 8192, tokenCacheEntries: 10_000))
        let context = try XCTUnwrap(settings.upstreamContext)
        XCTAssertEqual(context.signingKeys.map(\.id), ["ctx-demo-1"])
        XCTAssertEqual(context.active.id, "ctx-demo-1")
        let secretText = try String(contentsOf: Self.demoKey("upstream-context.secret"), encoding: .utf8)
        XCTAssertEqual(context.active.secret, Array(try XCTUnwrap(Data(base64Encoded: secretText.trimmingCharacters(in: .whitespacesAndNewlines)))))

        let document = try TenantTreeLoader.loadDocument(path: try XCTUnwrap(settings.tenantTreePath), cells: settings.cells)
        XCTAssertEqual(document.issuers.map(\.issuer), ["https://id.acme.example", "https://login.northwind.example", "https://id.erp-cloud.example"])
        XCTAssertEqual(document.issuers.map(\.node), ["acme-soft", "northwind-it", "direct"])
        XCTAssertEqual(document.issuers.map(\.keys.count), [2, 1, 1], "Acme is mid-rotation: two keys")
        XCTAssertEqual(document.issuers.map(\.maxLifetime), [.seconds(3600), .seconds(900), .seconds(3600)])
        XCTAssertEqual(document.issuers.map(\.tenantClaim), ["tenant", "tenant", "customer"])
        XCTAssertEqual(document.issuers.flatMap(\.keys).map(\.algorithm), ["RS256", "RS256", "RS256", "ES256"])
    }

    // MARK: - Issuer shape errors

    /// Each case is one platform issuer (at line 11 of the document) with exactly one problem.
    func testEveryIssuerShapeProblemIsReportedWithItsPathAndLine() {
        let rsa = "pemFile: keys/rsa.public.pem"
        let cases: [(issuer: String, path: String, line: Int, mentioning: String)] = [
            ("- audience: erp\n  keys: [{kid: k, alg: RS256, \(rsa)}]", "platformIssuers[0]", 11, "missing required key 'iss'"),
            ("- iss: https://i\n  keys: [{kid: k, alg: RS256, \(rsa)}]", "platformIssuers[0]", 11, "missing required key 'audience'"),
            ("- iss: https://i\n  audience: erp", "platformIssuers[0]", 11, "missing required key 'keys'"),
            ("- iss: https://i\n  audience: erp\n  keys: []", "platformIssuers[0].keys", 13, "an issuer needs at least one key"),
            ("- iss: https://i\n  audience: erp\n  keys: {kid: k}", "platformIssuers[0].keys", 13, "expected a list"),
            ("- iss:\n  audience: erp\n  keys: [{kid: k, alg: RS256, \(rsa)}]", "platformIssuers[0].iss", 11, "expected a value"),
            ("- iss: https://i\n  audience: erp\n  keys: [{alg: RS256, \(rsa)}]", "platformIssuers[0].keys[0]", 13, "missing required key 'kid'"),
            ("- iss: https://i\n  audience: erp\n  keys: [{kid: k, \(rsa)}]", "platformIssuers[0].keys[0]", 13, "missing required key 'alg'"),
            ("- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: RS256}]", "platformIssuers[0].keys[0]", 13, "give exactly one of pem or pemFile"),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: RS256, \(rsa), secret: \(Self.secret32)}]",
                "platformIssuers[0].keys[0]", 13, "give exactly one of pem or pemFile"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: HS256, secret: \(Self.secret32), secretFile: keys/hmac.secret}]\n  allowHMAC: true",
                "platformIssuers[0].keys[0]", 13, "give exactly one of secret or secretFile"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: HS256, secret: \(Self.secret32)}]",
                "platformIssuers[0].keys[0].alg", 13, "HMAC keys are refused unless the issuer sets allowHMAC: true"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: HS256, secret: \(Self.secret32)}]\n  allowHMAC: false",
                "platformIssuers[0].keys[0].alg", 13, "allowHMAC: true"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: HS256, \(rsa)}]\n  allowHMAC: true",
                "platformIssuers[0].keys[0].pemFile", 13, "an HS256 key is a secret (secret or secretFile)"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: RS256, secret: \(Self.secret32)}]",
                "platformIssuers[0].keys[0].secret", 13, "an RS256 key is a public key (pem or pemFile)"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: HS256, secret: \"not base64!\"}]\n  allowHMAC: true",
                "platformIssuers[0].keys[0].secret", 13, "a secret is base64"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: HS256, secretFile: keys/rsa.public.pem}]\n  allowHMAC: true",
                "platformIssuers[0].keys[0].secretFile", 13, "the secret file must hold base64"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: RS256, pemFile: keys/missing.pem}]",
                "platformIssuers[0].keys[0].pemFile", 13, "cannot read key file '\(self.file("keys/missing.pem"))'"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: RS256, \(rsa), use: sig}]",
                "platformIssuers[0].keys[0].use", 13, "unknown key 'use' (known here: alg, kid, pem, pemFile, secret, secretFile)"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: RS256, \(rsa)}]\n  scope: all",
                "platformIssuers[0].scope", 14,
                "unknown key 'scope' (known here: algorithms, allowHMAC, audience, clockSkew, discovery, iss, jwksUri, keys, maxLifetime, tenantClaim)"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: RS256, \(rsa)}]\n  maxLifetime: 0s",
                "platformIssuers[0].maxLifetime", 14, "must be between 1s and 2592000s, got 0s"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: RS256, \(rsa)}]\n  maxLifetime: 721h",
                "platformIssuers[0].maxLifetime", 14, "must be between 1s and 2592000s, got 721h"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: RS256, \(rsa)}]\n  clockSkew: 11m",
                "platformIssuers[0].clockSkew", 14, "must be between 0s and 600s, got 11m"
            ),
            (
                "- iss: https://i\n  audience: erp\n  keys: [{kid: k, alg: RS256, \(rsa)}]\n  allowHMAC: yes",
                "platformIssuers[0].allowHMAC", 14, "expected true or false, got 'yes'"
            ),
            // The shape before issuers had keys: a bare `iss`.
            ("- https://id.platform.test", "platformIssuers[0]", 11, "expected a mapping of keys to values"),
        ]
        for (issuer, path, line, mentioning) in cases {
            let yaml = minimalSettingsYAML + "\nplatformIssuers:\n" + Self.indented(issuer, by: 2)
            let issues = rejectionIssues(of: yaml, baseDirectory: self.directory.path)
            XCTAssertEqual(issues.count, 1, "\(issuer)\n\(issues.map(\.description).joined(separator: "\n"))")
            assertIssue(issues.first, path: path, line: line, mentioning: mentioning)
        }
    }

    func testPlatformIssuersMustBeAList() {
        let issue = singleIssue(of: minimalSettingsYAML + "\nplatformIssuers: https://id.platform.test")
        assertIssue(issue, path: "platformIssuers", line: 10, mentioning: "expected a list")
    }

    func testUnreadableSecretFileIsReportedAtTheKey() {
        let yaml = minimalSettingsYAML + """

            platformIssuers:
              - iss: https://i
                audience: erp
                allowHMAC: true
                keys: [{kid: k, alg: HS256, secretFile: keys/missing.secret}]
            """
        let issues = rejectionIssues(of: yaml, baseDirectory: self.directory.path)
        // Only this first issue is asserted: the loader follows it with a misleading second one
        // ("the secret file must hold base64") for the same key.
        assertIssue(issues.first, path: "platformIssuers[0].keys[0].secretFile", line: 14, mentioning: "cannot read key file '\(self.file("keys/missing.secret"))'")
    }

    func testIssuerProblemsInTheTreeAreLocatedUnderTheirNode() {
        let yaml = """
            catalog:
              features: [ledger]
            tenants:
              - id: acme
                kind: oem
                issuers:
                  - iss: https://id.acme.test
                    audience: erp-gateway
                    keys:
                      - { kid: acme-1, alg: HS256, secret: \(Self.secret32) }
                  - audience: erp-gateway
              - id: northwind
                kind: partner
                parent: acme
                issuers: [{ iss: https://login.northwind.test, audience: erp-gateway, keys: [{ kid: nw-1, alg: RS256, pem: x, pemFile: y }] }]
            """
        let issues: [ConfigurationIssue]
        do {
            let document = try TenantTreeLoader.parseDocument(yaml, source: "tenants.yaml", cells: [], baseDirectory: self.directory.path)
            XCTFail("expected the tree to be rejected, got \(document.issuers.count) issuers")
            return
        } catch {
            XCTAssertEqual(error.source, "tenants.yaml")
            issues = error.issues.sorted { ($0.line ?? 0, $0.column ?? 0, $0.message) < ($1.line ?? 0, $1.column ?? 0, $1.message) }
        }
        let expected: [(path: String, line: Int, mentioning: String)] = [
            ("tenants[0].issuers[0].keys[0].alg", 10, "allowHMAC: true"),
            ("tenants[0].issuers[1]", 11, "missing required key 'iss'"),
            ("tenants[0].issuers[1]", 11, "missing required key 'keys'"),
            ("tenants[1].issuers[0].keys[0]", 15, "give exactly one of pem or pemFile"),
        ]
        XCTAssertEqual(issues.count, expected.count, issues.map(\.description).joined(separator: "\n"))
        for (issue, want) in zip(issues, expected) {
            assertIssue(issue, path: want.path, line: want.line, mentioning: want.mentioning)
        }
    }

    // MARK: - Key files are relative to the file that names them

    func testRelativeKeyFilesAreReadNextToTheFileThatNamesThem() throws {
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: self.directory.appendingPathComponent("conf/keys"), withIntermediateDirectories: true)
        try fileManager.createDirectory(at: self.directory.appendingPathComponent("tree/keys"), withIntermediateDirectories: true)
        try fileManager.copyItem(atPath: self.file("keys/rsa.public.pem"), toPath: self.file("conf/keys/platform.pem"))
        try fileManager.copyItem(atPath: self.file("keys/ec.public.pem"), toPath: self.file("tree/keys/acme.pem"))
        try "\(Self.secret32)\n".write(toFile: self.file("conf/keys/context.secret"), atomically: true, encoding: .utf8)
        let settingsYAML = Self.settingsYAML
            .replacingOccurrences(of: "tenantTree: tenants.yaml", with: "tenantTree: ../tree/tenants.yaml")
            .replacingOccurrences(of: "pemFile: keys/rsa.public.pem", with: "pemFile: keys/platform.pem")
            .replacingOccurrences(of: "secret: \(Self.secret32)", with: "secretFile: keys/context.secret")
        try settingsYAML.write(toFile: self.file("conf/gateway.yaml"), atomically: true, encoding: .utf8)
        let treeYAML = Self.treeYAML.replacingOccurrences(of: Self.treeKey, with: "{ kid: acme-1, alg: ES256, pemFile: keys/acme.pem }")
        try treeYAML.write(toFile: self.file("tree/tenants.yaml"), atomically: true, encoding: .utf8)

        let configuration = try GatewayConfiguration.load(path: self.file("conf/gateway.yaml"))

        XCTAssertEqual(configuration.settings.platformIssuers.first?.keys.first?.material, .publicKeyPEM(try self.contents("keys/rsa.public.pem")))
        XCTAssertEqual(configuration.settings.upstreamContext?.active.secret, Self.secret32Bytes)
        // Key files are watched too: replacing one is a configuration change.
        XCTAssertEqual(configuration.files, [
            self.file("conf/gateway.yaml"), self.file("tree/tenants.yaml"), self.file("conf/keys/platform.pem"), self.file("tree/keys/acme.pem"),
        ])
        XCTAssertEqual(configuration.authentication?.platformIssuers, ["https://id.platform.test"])

        // The tree's key files are looked up next to the tree, not next to the settings.
        try Self.treeYAML.replacingOccurrences(of: "pemFile: keys/rsa.public.pem", with: "pemFile: keys/platform.pem")
            .write(toFile: self.file("tree/tenants.yaml"), atomically: true, encoding: .utf8)
        let error = try XCTUnwrap(Self.loadError(path: self.file("conf/gateway.yaml")))
        XCTAssertEqual(error.source, self.file("tree/tenants.yaml"))
        XCTAssertEqual(error.issues.count, 1, "\(error)")
        assertIssue(error.issues.first, path: "tenants[0].issuers[0].keys[0].pemFile", line: 10, mentioning: "cannot read key file '\(self.file("tree/keys/platform.pem"))'")
    }

    // MARK: - authentication

    func testAuthenticationValuesAndTheirBounds() throws {
        func authentication(_ section: String) throws -> GatewaySettings.Authentication {
            // A header limit that any token limit fits in (see the test below for one it does not).
            try SettingsLoader.parse(minimalSettingsYAML + "\nlimits:\n  maxHeaderBytes: 1MiB\nauthentication:\n" + Self.indented(section, by: 2)).authentication
        }
        XCTAssertEqual(try authentication("maxTokenBytes: 16KiB"), .init(maxTokenBytes: 16384, tokenCacheEntries: 10_000))
        XCTAssertEqual(try authentication("tokenCacheEntries: 0"), .init(maxTokenBytes: 8192, tokenCacheEntries: 0), "0 turns the cache off")
        XCTAssertEqual(try authentication("maxTokenBytes: 512\ntokenCacheEntries: 1"), .init(maxTokenBytes: 512, tokenCacheEntries: 1))
        XCTAssertEqual(try authentication("maxTokenBytes: 64KiB\ntokenCacheEntries: 10000000"), .init(maxTokenBytes: 65536, tokenCacheEntries: 10_000_000))

        let rejected: [(section: String, path: String, mentioning: String)] = [
            ("maxTokenBytes: 511", "authentication.maxTokenBytes", "must be between 512 and 65536 bytes, got 511"),
            ("maxTokenBytes: 65537", "authentication.maxTokenBytes", "must be between 512 and 65536 bytes, got 65537"),
            ("maxTokenBytes: 8KB", "authentication.maxTokenBytes", "expected a size in bytes"),
            ("tokenCacheEntries: -1", "authentication.tokenCacheEntries", "must be between 0 and 10000000, got -1"),
            ("tokenCacheEntries: 10000001", "authentication.tokenCacheEntries", "must be between 0 and 10000000, got 10000001"),
            ("tokenCacheEntries: many", "authentication.tokenCacheEntries", "expected a whole number"),
            ("maxTokenSize: 4KiB", "authentication.maxTokenSize", "known here: keyFetch, maxTokenBytes, tokenCacheEntries"),
        ]
        for (section, path, mentioning) in rejected {
            let issue = singleIssue(of: minimalSettingsYAML + "\nauthentication:\n" + Self.indented(section, by: 2))
            assertIssue(issue, path: path, line: 11, mentioning: mentioning)
        }
    }

    func testATokenLimitTheHeaderLimitCutsShortIsRefused() throws {
        // 8 KiB of token is an Authorization field of 8192 + 24 bytes: above a 8 KiB header limit.
        let tooSmall = minimalSettingsYAML + "\nlimits:\n  maxHeaderBytes: 8KiB\nauthentication:\n  maxTokenBytes: 8KiB"
        assertIssue(
            singleIssue(of: tooSmall), path: "authentication.maxTokenBytes", line: 13,
            mentioning: "a token of 8192 bytes makes an Authorization field of 8216 bytes, above limits.maxHeaderBytes (8192)"
        )
        // The default header limit (16 KiB) is the ceiling when limits are not written.
        assertIssue(
            singleIssue(of: minimalSettingsYAML + "\nauthentication:\n  maxTokenBytes: 16KiB"), path: "authentication.maxTokenBytes", line: 11,
            mentioning: "above limits.maxHeaderBytes (16384)"
        )
        // Exactly fitting is accepted.
        let exact = minimalSettingsYAML + "\nlimits:\n  maxHeaderBytes: 8216\nauthentication:\n  maxTokenBytes: 8KiB"
        XCTAssertEqual(try SettingsLoader.parse(exact).authentication.maxTokenBytes, 8192)
        // The default token limit yields to a smaller header limit instead of being an error.
        let defaultToken = minimalSettingsYAML + "\nlimits:\n  maxHeaderBytes: 4KiB"
        XCTAssertEqual(try SettingsLoader.parse(defaultToken).authentication.maxTokenBytes, 8192)
    }

    // MARK: - upstreamContext

    func testUpstreamContextReadsEveryKeyAndTheActiveOne() throws {
        let yaml = minimalSettingsYAML + """

            tenantTree: tenants.yaml
            upstreamContext:
              signingKeys:
                - id: ctx-2026-09
                  secret: \(Self.secret32)
                - id: ctx-2026-11
                  secretFile: keys/hmac.secret
              activeKey: ctx-2026-11
            """
        let settings = try SettingsLoader.parse(yaml, baseDirectory: self.directory.path)
        let context = try XCTUnwrap(settings.upstreamContext)

        XCTAssertEqual(context.signingKeys.map(\.id), ["ctx-2026-09", "ctx-2026-11"])
        XCTAssertEqual(context.signingKeys.map(\.secret), [Self.secret32Bytes, Self.secret32Bytes], "the file's trailing newline is not part of the secret")
        XCTAssertEqual(context.activeKey, "ctx-2026-11")
        XCTAssertEqual(context.active.id, "ctx-2026-11")
    }

    func testUpstreamContextIsRequiredWithATenantTree() {
        let issue = singleIssue(of: minimalSettingsYAML + "\ntenantTree: tenants.yaml")
        assertIssue(issue, path: "", line: 1, mentioning: "with a tenantTree, 'upstreamContext' is required")
    }

    /// Each case is an `upstreamContext` (line 10) with two keys at lines 12 and 14 and
    /// `activeKey` at line 16, with exactly one problem.
    func testEveryUpstreamContextProblemIsReportedWithItsPathAndLine() {
        func section(second: String = "- id: ctx-2\n  secret: \(Self.secret32)", active: String = "ctx-1") -> String {
            "upstreamContext:\n  signingKeys:\n    - id: ctx-1\n      secret: \(Self.secret32)\n" + Self.indented(second, by: 4) + "\n  activeKey: \(active)"
        }
        let cases: [(section: String, path: String, line: Int, mentioning: String)] = [
            (section(second: "- id: ctx-2\n  secret: \(Self.secret31)"), "upstreamContext.signingKeys[1]", 14, "the secret must be base64 of at least 32 bytes"),
            (section(second: "- id: ctx-2\n  secret: \"not base64!\""), "upstreamContext.signingKeys[1]", 14, "the secret must be base64 of at least 32 bytes"),
            (section(active: "ctx-9"), "upstreamContext.activeKey", 16, "names 'ctx-9', which is not among signingKeys"),
            (section(second: "- id: ctx-1\n  secret: \(Self.secret32)"), "upstreamContext.signingKeys[1].id", 14, "key 'ctx-1' is listed twice"),
            (section(second: "- id: Ctx_2\n  secret: \(Self.secret32)"), "upstreamContext.signingKeys[1].id", 14, "'Ctx_2' is not a valid key id"),
            (section(second: "- secret: \(Self.secret32)"), "upstreamContext.signingKeys[1]", 14, "missing required key 'id'"),
            (section(second: "- id: ctx-2"), "upstreamContext.signingKeys[1]", 14, "give secret (base64) or secretFile"),
            (section(second: "- id: ctx-2\n  secretFile: keys/missing.secret"), "upstreamContext.signingKeys[1].secretFile", 15, "cannot read 'keys/missing.secret'"),
            (section(second: "- id: ctx-2\n  secret: \(Self.secret32)\n  rotatedAt: never"), "upstreamContext.signingKeys[1].rotatedAt", 16, "unknown key 'rotatedAt'"),
            ("upstreamContext:\n  signingKeys:\n    - id: ctx-1\n      secret: \(Self.secret32)", "upstreamContext", 11, "missing required key 'activeKey'"),
            ("upstreamContext: ctx-1", "upstreamContext", 10, "expected a mapping"),
        ]
        for (section, path, line, mentioning) in cases {
            let issues = rejectionIssues(of: minimalSettingsYAML + "\n" + section, baseDirectory: self.directory.path)
            XCTAssertEqual(issues.count, 1, "\(section)\n\(issues.map(\.description).joined(separator: "\n"))")
            assertIssue(issues.first, path: path, line: line, mentioning: mentioning)
        }
    }

    func testUpstreamContextWithoutSigningKeys() {
        let issues = rejectionIssues(of: minimalSettingsYAML + "\nupstreamContext:\n  activeKey: ctx-1")
        XCTAssertTrue(issues.contains { $0.path == "upstreamContext" && $0.line == 11 && $0.message == "missing required key 'signingKeys'" }, "\(issues)")
        XCTAssertTrue(issues.contains { $0.path == "upstreamContext.activeKey" && $0.message.contains("not among signingKeys") }, "\(issues)")
        XCTAssertEqual(issues.count, 2, "\(issues)")
    }

    // MARK: - GatewayConfiguration.load: keys compiled into the verifier

    func testExampleConfigurationCompilesItsIssuers() throws {
        let settingsPath = Self.packageRoot.appendingPathComponent("deploy/examples/gateway.yaml").path
        let configuration = try GatewayConfiguration.load(path: settingsPath)

        let authentication = try XCTUnwrap(configuration.authentication)
        // The example turns support access on: the gateway's own support issuer is platform-wide.
        XCTAssertEqual(authentication.platformIssuers, ["https://id.platform.example", "erp-gateway-support"])
        XCTAssertEqual(authentication.cacheCapacity, 10_000)
        XCTAssertEqual(authentication.verifier.maxTokenBytes, 8192)
        XCTAssertNotNil(configuration.tenants)
    }

    func testAuthenticationSettingsReachTheVerifier() throws {
        let settings = Self.settingsYAML + "\nauthentication:\n  maxTokenBytes: 12KiB\n  tokenCacheEntries: 500"
        let path = try self.writeConfiguration(settings: settings)

        let authentication = try XCTUnwrap(try GatewayConfiguration.load(path: path).authentication)

        XCTAssertEqual(authentication.verifier.maxTokenBytes, 12288)
        XCTAssertEqual(authentication.cacheCapacity, 500)
        XCTAssertEqual(authentication.platformIssuers, ["https://id.platform.test"], "tree issuers are not platform issuers")
    }

    func testWithoutATenantTreeNoVerifierIsCompiled() throws {
        let path = self.file("gateway.yaml")
        try minimalSettingsYAML.write(toFile: path, atomically: true, encoding: .utf8)

        let configuration = try GatewayConfiguration.load(path: path)

        XCTAssertNil(configuration.tenants)
        XCTAssertNil(configuration.authentication)
        XCTAssertEqual(configuration.files, [path])
    }

    /// A key the loader accepts in shape but OpenSSL or the algorithm table refuses: reported
    /// against the file, key path and line of the key.
    func testKeysThatDoNotCompileAreReportedAtTheirKey() throws {
        let (platformKey, treeKey) = (Self.platformKey, Self.treeKey)
        let cases: [(settingsKey: String, treeKey: String, inTree: Bool, mentioning: String)] = [
            ("{ kid: platform-1, alg: RS256, pemFile: keys/not-a-key.pem }", treeKey, false, "key 'platform-1': key is not a PEM public key"),
            (
                "{ kid: platform-1, alg: RS256, pem: \"-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----\\n\" }", treeKey, false,
                "key 'platform-1': key is not a PEM public key"
            ),
            ("{ kid: platform-1, alg: RS1, pemFile: keys/rsa.public.pem }", treeKey, false, "unknown algorithm 'RS1' (one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, HS256, HS384, HS512)"),
            ("{ kid: platform-1, alg: RS256, pemFile: keys/rsa.private.pem }", treeKey, false, "key 'platform-1': key text contains a private key"),
            (platformKey, "{ kid: acme-1, alg: RS256, pemFile: keys/ec.public.pem }", true, "key 'acme-1': key type does not fit the declared algorithm"),
            (platformKey, "{ kid: acme-1, alg: ES256, pemFile: keys/rsa.public.pem }", true, "key 'acme-1': key type does not fit the declared algorithm"),
            (platformKey, "{ kid: acme-1, alg: ES384, pemFile: keys/ec.public.pem }", true, "key 'acme-1': EC key curve does not fit the declared algorithm"),
        ]
        for (settingsKey, treeKeyText, inTree, mentioning) in cases {
            let settings = Self.settingsYAML.replacingOccurrences(of: platformKey, with: settingsKey)
            let tree = Self.treeYAML.replacingOccurrences(of: treeKey, with: treeKeyText)
            let path = try self.writeConfiguration(settings: settings, tree: tree)
            guard let error = try Self.loadError(path: path) else { continue }

            XCTAssertEqual(error.source, self.file(inTree ? "tenants.yaml" : "gateway.yaml"), mentioning)
            XCTAssertEqual(error.issues.count, 1, "\(error)")
            let line = try Self.line(containing: inTree ? "kid: acme-1" : "kid: platform-1", in: inTree ? tree : settings)
            assertIssue(error.issues.first, path: inTree ? "tenants[0].issuers[0].keys[0]" : "platformIssuers[0].keys[0]", line: line, mentioning: mentioning)
        }
    }

    func testHMACKeysCompileOnlyWithALongEnoughSecret() throws {
        let accepted = Self.settingsYAML.replacingOccurrences(of: Self.platformKey, with: "{ kid: platform-1, alg: HS256, secret: \(Self.secret32) }\n    allowHMAC: true")
        XCTAssertNotNil(try GatewayConfiguration.load(path: try self.writeConfiguration(settings: accepted)).authentication)

        // HS512 needs a secret at least as long as its 64-byte hash output.
        let settings = accepted.replacingOccurrences(of: "alg: HS256", with: "alg: HS512")
        let error = try XCTUnwrap(try Self.loadError(path: try self.writeConfiguration(settings: settings)))
        XCTAssertEqual(error.source, self.file("gateway.yaml"))
        assertIssue(error.issues.first, path: "platformIssuers[0].keys[0]", line: 16, mentioning: "key 'platform-1': HMAC secret is shorter than the algorithm requires")
        XCTAssertEqual(error.issues.count, 1, "\(error)")
    }

    func testTwoKeysOfOneIssuerMayNotShareAKeyID() throws {
        let settings = Self.settingsYAML.replacingOccurrences(of: Self.platformKey, with: Self.platformKey + "\n      - " + Self.platformKey)
        let error = try XCTUnwrap(try Self.loadError(path: try self.writeConfiguration(settings: settings)))

        XCTAssertEqual(error.source, self.file("gateway.yaml"))
        XCTAssertEqual(error.issues.count, 1, "\(error)")
        assertIssue(error.issues.first, path: "platformIssuers[0]", line: 12, mentioning: "issuer 'https://id.platform.test': two keys of one issuer share a key id")
    }

    func testAnIssuerRegisteredInTheSettingsAndInTheTreeIsRejected() throws {
        let tree = Self.treeYAML.replacingOccurrences(of: "iss: https://id.acme.test", with: "iss: https://id.platform.test")
        let error = try XCTUnwrap(try Self.loadError(path: try self.writeConfiguration(tree: tree)))

        // Reported at its second registration, in the tree file, naming the iss and the first.
        XCTAssertEqual(error.issues.count, 1, "\(error)")
        let issue = try XCTUnwrap(error.issues.first)
        XCTAssertEqual(issue.path, "tenants[0].issuers[0]")
        XCTAssertNotNil(issue.line)
        XCTAssertTrue(issue.file?.hasSuffix("tenants.yaml") ?? false, "\(error)")
        XCTAssertTrue(issue.message.contains("issuer 'https://id.platform.test' is already registered in platformIssuers"), "\(error)")
    }

    // MARK: - Fixtures

    /// A settings file with a tenant tree, one platform issuer (issuer at line 12, its key at 16)
    /// and an upstream context; key files are relative to `directory`.
    private static let settingsYAML = minimalSettingsYAML + """

        tenantTree: tenants.yaml
        platformIssuers:
          - iss: https://id.platform.test
            audience: erp-gateway
            maxLifetime: 1h
            keys:
              - \(platformKey)
        \(upstreamContextYAML)
        """

    /// The platform issuer's key in `settingsYAML`, for tests to replace.
    private static let platformKey = "{ kid: platform-1, alg: RS256, pemFile: keys/rsa.public.pem }"

    /// A tree that compiles: one OEM with one issuer (its key at line 10).
    private static let treeYAML = """
        catalog:
          features: [ledger]
        tenants:
          - id: acme
            kind: oem
            issuers:
              - iss: https://id.acme.test
                audience: erp-gateway
                keys:
                  - \(treeKey)
        """

    /// The tree issuer's key in `treeYAML`, for tests to replace.
    private static let treeKey = "{ kid: acme-1, alg: RS256, pemFile: keys/rsa.public.pem }"

    /// Writes `gateway.yaml` and `tenants.yaml` into `directory`; returns the settings path.
    private func writeConfiguration(settings: String = IssuerAndAuthenticationSettingsTests.settingsYAML, tree: String = IssuerAndAuthenticationSettingsTests.treeYAML) throws -> String {
        try settings.write(toFile: self.file("gateway.yaml"), atomically: true, encoding: .utf8)
        try tree.write(toFile: self.file("tenants.yaml"), atomically: true, encoding: .utf8)
        return self.file("gateway.yaml")
    }

    /// The error `GatewayConfiguration.load` throws; fails the test when the files load.
    private static func loadError(path: String, file: StaticString = #filePath, line: UInt = #line) throws -> ConfigurationError? {
        do {
            _ = try GatewayConfiguration.load(path: path)
            XCTFail("expected the configuration to be rejected", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    private static func indented(_ text: String, by spaces: Int) -> String {
        let prefix = String(repeating: " ", count: spaces)
        return text.split(separator: "\n").map { prefix + $0 }.joined(separator: "\n")
    }

    /// The 1-based number of the first line of `text` containing `fragment`.
    private static func line(containing fragment: String, in text: String) throws -> Int {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return try XCTUnwrap(lines.firstIndex { $0.contains(fragment) }, "no line containing '\(fragment)'") + 1
    }
}
