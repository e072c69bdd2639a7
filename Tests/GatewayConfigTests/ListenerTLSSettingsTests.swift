import Foundation
import XCTest
@testable import GatewayConfig

/// `listener.tls`: which files, which version; the files' contents are EdgeTLS's to judge.
final class ListenerTLSSettingsTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-tls-settings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory.appendingPathComponent("tls"), withIntermediateDirectories: true)
        for name in ["default.pem", "default.key", "north.pem", "north.key"] {
            try "placeholder".write(to: self.directory.appendingPathComponent("tls/\(name)"), atomically: true, encoding: .utf8)
        }
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: self.directory)
    }

    private func document(_ tls: String) -> String {
        minimalSettingsYAML.replacingOccurrences(of: "  port: 8080\n", with: "  port: 8080\n  tls:\n" + tls)
    }

    private func path(_ name: String) -> String { self.directory.appendingPathComponent(name).path }

    func testTheDefaultTheOthersAndTheVersion() throws {
        let settings = try SettingsLoader.parse(self.document("""
                certificate: tls/default.pem
                key: tls/default.key
                certificates:
                  - certificate: tls/north.pem
                    key: \(self.path("tls/north.key"))
                minimumVersion: "1.3"

            """), baseDirectory: self.directory.path)
        let tls = try XCTUnwrap(settings.listener.tls)
        XCTAssertEqual(tls.defaultCertificate, .init(certificate: self.path("tls/default.pem"), key: self.path("tls/default.key"), settingsKey: "listener.tls", line: 3))
        XCTAssertEqual(tls.certificates, [.init(certificate: self.path("tls/north.pem"), key: self.path("tls/north.key"), settingsKey: "listener.tls.certificates[0]", line: 7)])
        XCTAssertEqual(tls.minimumVersion, .tls13)
        XCTAssertEqual(tls.files, ["default.pem", "default.key", "north.pem", "north.key"].map { self.path("tls/\($0)") })
    }

    func testWithoutTLSTheListenerIsPlainAndTheVersionDefaultsTo12() throws {
        XCTAssertNil(try SettingsLoader.parse(minimalSettingsYAML).listener.tls)
        let settings = try SettingsLoader.parse(self.document("    certificate: tls/default.pem\n    key: tls/default.key\n"), baseDirectory: self.directory.path)
        XCTAssertEqual(settings.listener.tls?.minimumVersion, .tls12)
        XCTAssertEqual(settings.listener.tls?.certificates, [])
    }

    func testAMissingOrUnreadableFileIsReportedWhereItIsNamed() {
        let issues = rejectionIssues(of: self.document("""
                certificate: tls/default.pem
                certificates:
                  - { certificate: tls/north.pem, key: tls/missing.key }

            """), baseDirectory: self.directory.path)
        XCTAssertEqual(issues.count, 2, "\(issues)")
        assertIssue(issues.first { $0.message.contains("'key'") }, path: "listener.tls", line: 4, mentioning: "missing required key 'key'")
        assertIssue(issues.first { $0.message.contains("cannot read") }, path: "listener.tls.certificates[0].key", line: 6, mentioning: "cannot read 'tls/missing.key'")
    }

    func testNothingOlderThanTLS12AndOnlyKnownVersions() {
        let old = singleIssue(of: self.document("    certificate: \(self.path("tls/default.pem"))\n    key: \(self.path("tls/default.key"))\n    minimumVersion: \"1.1\"\n"))
        assertIssue(old, path: "listener.tls.minimumVersion", line: 6, mentioning: "TLS 1.1 is never accepted")
        let unknown = singleIssue(of: self.document("    certificate: \(self.path("tls/default.pem"))\n    key: \(self.path("tls/default.key"))\n    minimumVersion: \"1.4\"\n"))
        assertIssue(unknown, path: "listener.tls.minimumVersion", line: 6, mentioning: "must be one of '1.2', '1.3'")
    }

    func testAFileNamedTwiceAndUnknownKeys() {
        let twice = singleIssue(of: self.document("""
                certificate: \(self.path("tls/default.pem"))
                key: \(self.path("tls/default.key"))
                certificates:
                  - { certificate: \(self.path("tls/default.pem")), key: \(self.path("tls/default.key")) }

            """))
        assertIssue(twice, path: "listener.tls.certificates[0]", line: nil, mentioning: "is named twice")
        let unknown = singleIssue(of: self.document("    certificate: \(self.path("tls/default.pem"))\n    key: \(self.path("tls/default.key"))\n    ciphers: all\n"))
        assertIssue(unknown, path: "listener.tls.ciphers", line: 6, mentioning: "unknown key 'ciphers'")
    }

    func testOnlyTheDataPlaneListenerSpeaksTLS() {
        let issues = rejectionIssues(of: minimalSettingsYAML + "\nops:\n  port: 9090\n  tls: { certificate: a, key: b }\n")
        XCTAssertFalse(issues.isEmpty)
        for issue in issues { assertIssue(issue, path: "ops.tls", line: 12, mentioning: "unknown key 'tls'") }
    }

    func testTheCertificateFilesAreWatchedForChanges() throws {
        let settingsFile = self.path("gateway.yaml")
        try self.document("    certificate: tls/default.pem\n    key: tls/default.key\n").write(toFile: settingsFile, atomically: true, encoding: .utf8)
        let configuration = try GatewayConfiguration.load(path: settingsFile)
        XCTAssertTrue(configuration.files.contains(self.path("tls/default.pem")))
        XCTAssertTrue(configuration.files.contains(self.path("tls/default.key")))
    }
}
