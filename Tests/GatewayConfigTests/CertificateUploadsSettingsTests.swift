import Foundation
import GatewayConfig
import XCTest

/// `certificateUploads`: the key-encryption key file is read and checked when the settings load.
final class CertificateUploadsSettingsTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-kek-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: self.directory)
    }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let url = self.directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    func document(_ section: String, redis: Bool = true) -> String {
        minimalSettingsYAML + "\n" + (redis ? "redis: { url: \"redis://127.0.0.1:6379/0\" }\n" : "") + section
    }

    static let key = (0..<32).map { UInt8($0 * 7 % 256) }

    func testAKeyFileOf32BytesRawBase64OrHexLoads() throws {
        let texts: [(String, [UInt8])] = [
            ("raw", Self.key),
            ("base64", Array((Data(Self.key).base64EncodedString() + "\n").utf8)),
            ("hex", Array(Self.key.map { String(format: "%02x", $0) }.joined().utf8)),
        ]
        var identifiers: Set<String> = []
        for (name, bytes) in texts {
            _ = try self.write(name, bytes)
            let settings = try SettingsLoader.parse(self.document("certificateUploads:\n  keyEncryptionKeyFile: \(name)\n"), baseDirectory: self.directory.path)
            let uploads = try XCTUnwrap(settings.certificateUploads, name)
            XCTAssertEqual(uploads.keyEncryptionKeyFile, self.directory.appendingPathComponent(name).path, "resolved next to the settings")
            identifiers.insert(uploads.keyEncryptionKey.identifier)
            // Printing the settings shows the file and the key's identifier, never the key.
            for text in ["\(settings)", String(reflecting: settings), "\(uploads)"] {
                XCTAssertTrue(text.contains(uploads.keyEncryptionKey.identifier), text)
                XCTAssertFalse(text.contains(Data(Self.key).base64EncodedString()), text)
                XCTAssertFalse(text.contains("0, 7, 14, 21"), text)
            }
        }
        XCTAssertEqual(identifiers.count, 1, "the same 32 bytes, however written")
        XCTAssertNil(try SettingsLoader.parse(self.document(""), baseDirectory: self.directory.path).certificateUploads, "absent: uploads are off")
    }

    func testAMissingUnreadableOrWrongLengthKeyIsAnIssueAtLoad() throws {
        _ = try self.write("short", Array("c2hvcnQ=\n".utf8))
        let cases: [(String, String, String)] = [
            ("keyEncryptionKeyFile: missing-kek", "certificateUploads.keyEncryptionKeyFile", "cannot read the key-encryption key file 'missing-kek'"),
            ("keyEncryptionKeyFile: short", "certificateUploads.keyEncryptionKeyFile", "a key-encryption key is 32 bytes: raw, base64 or hex (read 9 bytes)"),
            ("keyEncryptionKeyFile: .", "certificateUploads.keyEncryptionKeyFile", "cannot read the key-encryption key file '.'"),
            ("{}", "certificateUploads", "missing required key 'keyEncryptionKeyFile'"),
            ("keyEncryptionKey: abc", "certificateUploads.keyEncryptionKey", "unknown key 'keyEncryptionKey'"),
        ]
        for (section, path, message) in cases {
            let issues = rejectionIssues(of: self.document("certificateUploads:\n  \(section)\n"), baseDirectory: self.directory.path)
            XCTAssertTrue(issues.contains { $0.path == path && $0.message.contains(message) }, "\(section): \(issues)")
        }
    }

    func testTheCertificatesLiveInRedisSoItIsRequired() throws {
        _ = try self.write("kek", Self.key)
        let issue = singleIssue(of: self.document("certificateUploads: { keyEncryptionKeyFile: \(self.directory.path)/kek }\n", redis: false))
        XCTAssertEqual(issue?.path, "certificateUploads")
        XCTAssertTrue(issue?.message.contains("'redis' is required") ?? false, "\(String(describing: issue))")
    }

    func testTheKeyFileIsWatchedLikeTheSettings() throws {
        let kek = try self.write("kek", Self.key)
        let settings = self.directory.appendingPathComponent("gateway.yaml")
        try self.document("certificateUploads: { keyEncryptionKeyFile: kek }\n").write(to: settings, atomically: true, encoding: .utf8)
        XCTAssertEqual(try GatewayConfiguration.load(path: settings.path).files, [settings.path, kek])
    }
}
