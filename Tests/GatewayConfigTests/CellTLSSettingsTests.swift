import Foundation
import TestCertificateAuthority
import XCTest

@testable import GatewayConfig

/// `https://` endpoints and a cell's `tls` block: what is read, what is refused and where, and
/// how the compiled contexts are reused across loads.
final class CellTLSSettingsTests: XCTestCase {
    /// One CA and its certificates for the whole class (openssl runs take a while).
    private static let material: Result<(authority: TestCertificateAuthority, client: TestCertificateAuthority.Issued, other: TestCertificateAuthority), any Error> = Result {
        let authority = try TestCertificateAuthority()
        return (authority, try authority.issueClient(commonName: "gateway-eu"), try TestCertificateAuthority(commonName: "another CA"))
    }

    private var directory: URL!

    override func setUpWithError() throws {
        let (authority, client, other) = try Self.material.get()
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-cell-tls-\(UUID().uuidString)")
        let tls = self.directory.appendingPathComponent("tls")
        try FileManager.default.createDirectory(at: tls, withIntermediateDirectories: true)
        try authority.certificatePEM.write(to: tls.appendingPathComponent("cells-ca.pem"), atomically: true, encoding: .utf8)
        try other.certificatePEM.write(to: tls.appendingPathComponent("other-ca.pem"), atomically: true, encoding: .utf8)
        try client.certificatePEM.write(to: tls.appendingPathComponent("gateway.pem"), atomically: true, encoding: .utf8)
        try client.keyPEM.write(to: tls.appendingPathComponent("gateway.key"), atomically: true, encoding: .utf8)
        try authority.unrelatedKey().pem.write(to: tls.appendingPathComponent("unrelated.key"), atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        if let directory { try FileManager.default.removeItem(at: directory) }
    }

    private func path(_ relative: String) -> String { self.directory.appendingPathComponent(relative).path }

    /// Settings with one cell whose endpoints and extra lines (a `tls` block) are given.
    private func document(endpoints: String, tls: String = "") -> String {
        """
        listener:
          port: 8080
        cells:
          - id: dedicated-acme
            kind: dedicated
            region: eu-west
            endpoints: \(endpoints)
        \(tls)defaultCell: dedicated-acme

        """
    }

    private func parse(_ yaml: String) throws -> GatewaySettings {
        try SettingsLoader.parse(yaml, baseDirectory: self.directory.path)
    }

    private func issues(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> [ConfigurationIssue] {
        rejectionIssues(of: yaml, baseDirectory: self.directory.path, file: file, line: line)
    }

    // MARK: - Endpoints

    func testHTTPSEndpointsAloneTrustTheSystemStoreAndEachEndpointsHost() throws {
        let cell = try self.parse(self.document(endpoints: "[https://cell-a.internal:8443, https://cell-b.internal, 'https://[fd00::7]']")).cells[0]
        XCTAssertEqual(cell.endpoints, [
            .init(host: "cell-a.internal", port: 8443), .init(host: "cell-b.internal", port: 443), .init(host: "fd00::7", port: 443),
        ])
        XCTAssertEqual(cell.tls, GatewaySettings.CellTLS())
        XCTAssertNil(cell.tls?.caBundle)
        XCTAssertNil(cell.tls?.serverName)
        XCTAssertNil(cell.tls?.clientIdentity)
        XCTAssertEqual(cell.tls?.minimumVersion, .tls12)
    }

    func testPlainEndpointsWithOrWithoutHTTPAreTheSame() throws {
        let cell = try self.parse(self.document(endpoints: "[http://127.0.0.1:9101, 127.0.0.1:9102, HTTP://backend.internal]")).cells[0]
        XCTAssertEqual(cell.endpoints, [.init(host: "127.0.0.1", port: 9101), .init(host: "127.0.0.1", port: 9102), .init(host: "backend.internal", port: 80)])
        XCTAssertNil(cell.tls)
    }

    func testEndpointURLsWithAPathABadPortOrNoHostAreRefused() {
        for endpoint in ["https://cell-a.internal:8443/api", "https://cell-a.internal:99999", "https://", "https://[fd00::7", "ftp://cell-a.internal:21"] {
            let found = self.issues(self.document(endpoints: "['\(endpoint)']"))
            XCTAssertEqual(found.count, 1, "\(endpoint): \(found)")
            assertIssue(found.first, path: "cells[0].endpoints[0]", line: 7, mentioning: "is not HOST:PORT, http://HOST:PORT or https://HOST[:PORT]")
        }
    }

    func testACellMixingHTTPSAndPlainEndpointsIsRefused() {
        let found = self.issues(self.document(endpoints: "[https://cell-a.internal:8443, 10.0.0.7:8080]"))
        XCTAssertEqual(found.count, 1, "\(found)")
        assertIssue(found.first, path: "cells[0].endpoints", line: 7, mentioning: "all https:// or all plain HTTP, not a mix")
    }

    func testATLSBlockOnPlainEndpointsIsRefused() {
        let found = self.issues(self.document(endpoints: "[10.0.0.7:8080]", tls: "    tls: { serverName: cell-a.internal }\n"))
        XCTAssertEqual(found.count, 1, "\(found)")
        assertIssue(found.first, path: "cells[0].tls", line: 8, mentioning: "tls applies to https:// endpoints")
    }

    // MARK: - The tls block

    func testEveryTLSKeyIsReadAndFilesAreRelativeToTheSettings() throws {
        let cell = try self.parse(self.document(endpoints: "[https://10.0.0.7:8443]", tls: """
                tls:
                  caBundle: tls/cells-ca.pem
                  serverName: acme.cells.internal
                  clientCertificate: tls/gateway.pem
                  clientKey: tls/gateway.key
                  minimumVersion: TLSv1.3

            """)).cells[0]
        let tls = try XCTUnwrap(cell.tls)
        XCTAssertEqual(tls.caBundle?.path, self.path("tls/cells-ca.pem"))
        XCTAssertEqual(tls.caBundle?.pem, try Self.material.get().authority.certificatePEM)
        XCTAssertEqual(tls.serverName, "acme.cells.internal")
        XCTAssertEqual(tls.clientIdentity?.certificate.path, self.path("tls/gateway.pem"))
        XCTAssertEqual(tls.clientIdentity?.key.path, self.path("tls/gateway.key"))
        XCTAssertEqual(tls.minimumVersion, .tls13)
        XCTAssertEqual(tls.files, [self.path("tls/cells-ca.pem"), self.path("tls/gateway.pem"), self.path("tls/gateway.key")])
    }

    func testSettingsNeverPrintTheClientKey() throws {
        let settings = try self.parse(self.document(endpoints: "[https://10.0.0.7:8443]", tls: """
                tls: { clientCertificate: tls/gateway.pem, clientKey: tls/gateway.key }

            """))
        for text in ["\(settings)", String(reflecting: settings), "\(settings.cells[0].tls!)"] {
            XCTAssertFalse(text.contains("PRIVATE KEY"), text)
            XCTAssertTrue(text.contains("gateway.key"), text)
        }
    }

    func testUnreadableOrWrongFilesAreReportedWhereTheyAreNamed() {
        let found = self.issues(self.document(endpoints: "[https://10.0.0.7:8443]", tls: """
                tls:
                  caBundle: tls/missing.pem
                  clientCertificate: tls/gateway.key
                  clientKey: tls/gateway.pem

            """))
        XCTAssertEqual(found.count, 3, "\(found)")
        assertIssue(found.first { $0.path.hasSuffix("caBundle") }, path: "cells[0].tls.caBundle", line: 9, mentioning: "cannot read '\(self.path("tls/missing.pem"))'")
        assertIssue(
            found.first { $0.path.hasSuffix("clientCertificate") }, path: "cells[0].tls.clientCertificate", line: 10, mentioning: "holds no PEM certificate"
        )
        assertIssue(found.first { $0.path.hasSuffix("clientKey") }, path: "cells[0].tls.clientKey", line: 11, mentioning: "holds no PEM private key")

        let notCertificates = self.issues(self.document(endpoints: "[https://10.0.0.7:8443]", tls: "    tls: { caBundle: tls/gateway.key }\n"))
        assertIssue(notCertificates.first, path: "cells[0].tls.caBundle", line: 8, mentioning: "'\(self.path("tls/gateway.key"))' holds no PEM certificate")
    }

    func testAKeyThatDoesNotBelongToTheCertificateIsRefused() {
        let found = self.issues(self.document(endpoints: "[https://10.0.0.7:8443]", tls: """
                tls:
                  clientCertificate: tls/gateway.pem
                  clientKey: tls/unrelated.key

            """))
        XCTAssertEqual(found.count, 1, "\(found)")
        assertIssue(
            found.first, path: "cells[0].tls.clientKey", line: 10,
            mentioning: "the key in '\(self.path("tls/unrelated.key"))' does not belong to the certificate in '\(self.path("tls/gateway.pem"))'"
        )
    }

    func testACertificateWithoutItsKeyOrAKeyWithoutItsCertificateIsRefused() {
        for half in ["clientCertificate: tls/gateway.pem", "clientKey: tls/gateway.key"] {
            let found = self.issues(self.document(endpoints: "[https://10.0.0.7:8443]", tls: "    tls: { \(half) }\n"))
            XCTAssertEqual(found.count, 1, "\(found)")
            assertIssue(found.first, path: "cells[0].tls", line: 8, mentioning: "clientCertificate and clientKey go together")
        }
    }

    func testServerNameIsADNSNameAndMinimumVersionOneOfTwo() {
        for name in ["'10.0.0.7'", "'fd00::7'", "'cell a.internal'", "''"] {
            let found = self.issues(self.document(endpoints: "[https://10.0.0.7:8443]", tls: "    tls: { serverName: \(name) }\n"))
            XCTAssertEqual(found.count, 1, "\(name): \(found)")
            assertIssue(found.first, path: "cells[0].tls.serverName", line: 8, mentioning: "is not a DNS name")
        }
        let version = self.issues(self.document(endpoints: "[https://10.0.0.7:8443]", tls: "    tls: { minimumVersion: TLSv1.1 }\n"))
        XCTAssertEqual(version.count, 1, "\(version)")
        assertIssue(version.first, path: "cells[0].tls.minimumVersion", line: 8, mentioning: "TLSv1.2")
        let unknown = self.issues(self.document(endpoints: "[https://10.0.0.7:8443]", tls: "    tls: { insecureSkipVerify: true }\n"))
        assertIssue(unknown.first, path: "cells[0].tls.insecureSkipVerify", line: 8, mentioning: "unknown key 'insecureSkipVerify'")
    }

    // MARK: - Compiled contexts

    func testTheNameVerifiedIsServerNameElseTheEndpointsHostAndNoneForAnAddress() throws {
        let named = try UpstreamTLSContext(settings: .init(serverName: "acme.cells.internal"))
        XCTAssertEqual(named.serverHostname(for: .init(host: "10.0.0.7", port: 8443)), "acme.cells.internal")
        let unnamed = try UpstreamTLSContext(settings: .init())
        XCTAssertEqual(unnamed.serverHostname(for: .init(host: "cell-a.internal", port: 8443)), "cell-a.internal")
        XCTAssertNil(unnamed.serverHostname(for: .init(host: "10.0.0.7", port: 8443)))
        XCTAssertNil(unnamed.serverHostname(for: .init(host: "fd00::7", port: 8443)))
    }

    func testALoadThatLeavesTLSAsItWasReusesItsContextAndAChangedFileMakesANewOne() throws {
        let settings = self.path("gateway.yaml")
        try self.document(endpoints: "[https://10.0.0.7:8443]", tls: """
                tls: { caBundle: tls/cells-ca.pem, clientCertificate: tls/gateway.pem, clientKey: tls/gateway.key }

            """).write(toFile: settings, atomically: true, encoding: .utf8)
        let first = try GatewayConfiguration.load(path: settings)
        let context = try XCTUnwrap(first.upstreamTLS["dedicated-acme"])
        XCTAssertTrue(first.files.contains(self.path("tls/cells-ca.pem")) && first.files.contains(self.path("tls/gateway.key")), "\(first.files)")

        let again = try GatewayConfiguration.load(path: settings)
        XCTAssertTrue(again.upstreamTLS["dedicated-acme"] === context, "the same settings compile to the same context")

        // A new CA bundle in the same file: new settings, a new context.
        try String(contentsOfFile: self.path("tls/other-ca.pem"), encoding: .utf8).write(toFile: self.path("tls/cells-ca.pem"), atomically: true, encoding: .utf8)
        let changed = try GatewayConfiguration.load(path: settings)
        let next = try XCTUnwrap(changed.upstreamTLS["dedicated-acme"])
        XCTAssertFalse(next === context)
        XCTAssertEqual(next.settings.caBundle?.pem, try Self.material.get().other.certificatePEM)
    }

    // MARK: - Documentation

    private static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func testEveryTLSKeyIsInTheConfigurationReference() throws {
        let reference = try String(contentsOf: Self.packageRoot.appendingPathComponent("docs/configuration.md"), encoding: .utf8)
        for key in YAMLReader.cellTLSKeys.sorted() {
            XCTAssertTrue(reference.contains("| `\(key)` |"), "docs/configuration.md has no row for tls.\(key)")
        }
        for version in GatewaySettings.CellTLS.MinimumVersion.allCases {
            XCTAssertTrue(reference.contains("`\(version.rawValue)`"), version.rawValue)
        }
    }

    /// The mutual TLS example of docs/operations.md loads, with its files in place.
    func testTheMutualTLSExampleOfTheOperationsGuideLoads() throws {
        let guide = try String(contentsOf: Self.packageRoot.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        let section = try XCTUnwrap(guide.components(separatedBy: "### Mutual TLS to a dedicated cell").dropFirst().first)
        let lines = section.components(separatedBy: "\n")
        let start = try XCTUnwrap(lines.firstIndex { $0.trimmingCharacters(in: .whitespaces) == "```yaml" })
        let end = try XCTUnwrap(lines[(start + 1)...].firstIndex { $0.trimmingCharacters(in: .whitespaces) == "```" })
        let indent = lines[start].prefix { $0 == " " }.count
        let example = lines[(start + 1)..<end].map { String($0.dropFirst(indent)) }.joined(separator: "\n")
        let client = try Self.material.get().client
        try FileManager.default.copyItem(atPath: self.path("tls/gateway.pem"), toPath: self.path("tls/gateway-eu.pem"))
        try client.keyPEM.write(toFile: self.path("tls/gateway-eu.key"), atomically: true, encoding: .utf8)
        let settings = try self.parse("listener:\n  port: 8080\n" + example + "\ndefaultCell: dedicated-acme\n")
        let tls = try XCTUnwrap(settings.cells.first?.tls)
        XCTAssertEqual(tls.serverName, "acme.cells.internal")
        XCTAssertNotNil(tls.clientIdentity)
        XCTAssertEqual(tls.caBundle?.path, self.path("tls/cells-ca.pem"))
    }

    func testAPlainCellHasNoContext() throws {
        let settings = self.path("gateway.yaml")
        try minimalSettingsYAML.write(toFile: settings, atomically: true, encoding: .utf8)
        XCTAssertTrue(try GatewayConfiguration.load(path: settings).upstreamTLS.isEmpty)
    }
}
