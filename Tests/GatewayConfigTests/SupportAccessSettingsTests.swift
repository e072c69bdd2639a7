import Foundation
import Hierarchy
import TokenAuth
import XCTest

@testable import GatewayConfig

/// `supportAccess` in the settings (the signing key read and its public key derived at load) and
/// `supportAccess` in the tenant tree (a cap and approvers, inherited and only narrowing).
final class SupportAccessSettingsTests: XCTestCase {
    private static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static let admin = """
        tenantTree: tenants.yaml
        redis: { url: "redis://127.0.0.1:6379/0" }
        admin:
          listener: { address: 127.0.0.1, port: 8081 }
          issuers:
            - iss: https://admin.test
              audience: erp-admin
              allowHMAC: true
              keys: [{ kid: a1, alg: HS256, secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= }]

        """

    var keyDirectory: String { Self.packageRoot.appendingPathComponent("deploy/examples").path }

    func document(_ section: String, admin: Bool = true) -> String {
        minimalSettingsYAML + "\n" + upstreamContextYAML + "\n" + (admin ? Self.admin : "") + section
    }

    func testTheSigningKeyIsReadAndItsVerificationKeyDerived() throws {
        let settings = try SettingsLoader.parse(
            self.document("supportAccess:\n  signingKey: keys/support-1.private.pem\n  algorithm: ES256\n  maxDuration: 4h\n"), baseDirectory: self.keyDirectory
        )
        let support = try XCTUnwrap(settings.supportAccess)
        XCTAssertEqual(support.maxDuration, .seconds(4 * 3600))
        XCTAssertEqual(support.issuer, "erp-gateway-support")
        XCTAssertTrue(support.verificationKeyPEM.hasPrefix("-----BEGIN PUBLIC KEY-----"), support.verificationKeyPEM)
        XCTAssertEqual(settings.dataPlaneIssuers.map(\.issuer), ["erp-gateway-support"], "verified as a built-in issuer")
        XCTAssertTrue(settings.secretFiles.contains(support.signingKeyFile), "the key file is watched")
        XCTAssertFalse("\(settings)".contains("PRIVATE KEY"), "printing the settings never shows the key")
        // What the gateway signs with the key, its own verifier accepts.
        let token = try TokenMinter.mint(
            claims: ["iss": "erp-gateway-support", "aud": "erp-gateway-support", "sub": "eng", "tenant": "c1", "exp": .integer(Int64(Date().timeIntervalSince1970) + 60)],
            algorithm: .ES256, kid: support.keyID, privateKeyPEM: support.signingKeyPEM
        )
        let verifier = try AuthenticationConfiguration.compile(
            platform: settings.dataPlaneIssuers, tree: [], settings: settings.authentication, settingsPath: "test.yaml", treePath: nil
        ).verifier
        XCTAssertEqual(try verifier.verify(Substring(token), now: Int64(Date().timeIntervalSince1970)).get().tenant, "c1")
    }

    func testHowLongARequestWaitsAndAnEndedGrantIsKeptDefaultAndAreBounded() throws {
        let key = "supportAccess:\n  signingKey: keys/support-1.private.pem\n  algorithm: ES256\n"
        let defaults = try XCTUnwrap(try SettingsLoader.parse(self.document(key), baseDirectory: self.keyDirectory).supportAccess)
        XCTAssertEqual(defaults.answerWithin, .seconds(24 * 3600))
        XCTAssertEqual(defaults.keepEnded, .seconds(30 * 24 * 3600))
        let set = try XCTUnwrap(
            try SettingsLoader.parse(self.document(key + "  answerWithin: 2h\n  keepEnded: 168h\n"), baseDirectory: self.keyDirectory).supportAccess
        )
        XCTAssertEqual(set.answerWithin, .seconds(2 * 3600))
        XCTAssertEqual(set.keepEnded, .seconds(7 * 24 * 3600))
        let tooShort = rejectionIssues(of: self.document(key + "  answerWithin: 10s\n  keepEnded: 10m\n"), baseDirectory: self.keyDirectory)
        XCTAssertEqual(tooShort.filter { $0.message.contains("must be between") }.count, 2, "\(tooShort)")
    }

    func testAKeyThatCannotSignOrNoAdminAPIIsRefused() {
        let missing = rejectionIssues(of: self.document("supportAccess:\n  signingKey: keys/nothing.pem\n  algorithm: ES256\n"), baseDirectory: self.keyDirectory)
        XCTAssertTrue(missing.contains { $0.message.contains("cannot read the signing key file") }, "\(missing)")
        let publicKey = rejectionIssues(of: self.document("supportAccess:\n  signingKey: keys/platform-1.public.pem\n  algorithm: RS256\n"), baseDirectory: self.keyDirectory)
        XCTAssertTrue(publicKey.contains { $0.message.contains("holds no private key") }, "\(publicKey)")
        let wrongAlgorithm = rejectionIssues(of: self.document("supportAccess:\n  signingKey: keys/support-1.private.pem\n  algorithm: RS256\n"), baseDirectory: self.keyDirectory)
        XCTAssertTrue(wrongAlgorithm.contains { $0.message.contains("cannot sign RS256") }, "\(wrongAlgorithm)")
        let hmac = rejectionIssues(of: self.document("supportAccess:\n  signingKey: keys/support-1.private.pem\n  algorithm: HS256\n"), baseDirectory: self.keyDirectory)
        XCTAssertTrue(hmac.contains { $0.message.contains("HS algorithms are not accepted") }, "\(hmac)")
        let noAdmin = rejectionIssues(
            of: self.document("supportAccess:\n  signingKey: keys/support-1.private.pem\n  algorithm: ES256\n", admin: false), baseDirectory: self.keyDirectory
        )
        XCTAssertTrue(noAdmin.contains { $0.message.contains("'admin' is required") }, "\(noAdmin)")
    }

    // MARK: - The tree's policy

    static let tree = """
        catalog:
          features: [ledger]
          packages: { basic: [ledger] }
          routes: [{ path: /v1/ledger, feature: ledger }]
        tenants:
          - { id: acme, kind: oem, features: [ledger], placement: { tier: pooled, region: eu-west }, supportAccess: { maxDuration: 4h, approvers: [customer, partner] } }
          - { id: p1, kind: partner, parent: acme, supportAccess: { maxDuration: 1h, approvers: [customer] } }
          - { id: c1, kind: customer, parent: p1, package: basic }
          - { id: p2, kind: partner, parent: acme }
          - { id: c2, kind: customer, parent: p2, package: basic }

        """

    var cells: [GatewaySettings.Cell] { (try? SettingsLoader.parse(minimalSettingsYAML).cells) ?? [] }

    func testThePolicyIsInheritedAndOnlyNarrowsAndReadsBackFromTheWriter() throws {
        let document = try TenantTreeLoader.parseDocument(Self.tree, source: "tree", cells: self.cells)
        let snapshot = try TreeCompiler.compile(document.tree)
        let c1 = try XCTUnwrap(snapshot.customer(try NodeID("c1"))).supportAccess
        XCTAssertEqual(c1.maxDuration, 3600)
        XCTAssertEqual(c1.maxDurationSetBy, try NodeID("p1"))
        XCTAssertEqual(c1.approvers, [.customer])
        let c2 = try XCTUnwrap(snapshot.customer(try NodeID("c2"))).supportAccess
        XCTAssertEqual(c2.maxDuration, 4 * 3600, "inherited from the OEM")
        XCTAssertEqual(c2.approvers, [.customer, .partner])

        let written = TenantTreeWriter.yaml(document)
        XCTAssertTrue(written.contains("maxDuration: 4h"), written)
        let reread = try TenantTreeLoader.parseDocument(written, source: "written", cells: self.cells)
        XCTAssertEqual(reread.tree.nodes.map(\.supportAccess), document.tree.nodes.map(\.supportAccess))
        XCTAssertEqual(TenantTreeWriter.yaml(reread), written, "writing is a fixed point")
    }

    func testWideningAndACustomersOwnPolicyAreRefused() throws {
        let widening = Self.tree
            .replacingOccurrences(of: "supportAccess: { maxDuration: 1h, approvers: [customer] }", with: "supportAccess: { maxDuration: 8h, approvers: [customer, oem] }")
            .replacingOccurrences(of: "{ id: c2, kind: customer, parent: p2, package: basic }", with: "{ id: c2, kind: customer, parent: p2, supportAccess: { maxDuration: 1h } }")
        let document = try TenantTreeLoader.parseDocument(widening, source: "tree", cells: self.cells)
        XCTAssertThrowsError(try TreeCompiler.compile(document.tree)) { error in
            let messages = (error as? TreeValidationError)?.issues.map { "\($0.field): \($0.message)" } ?? ["\(error)"]
            XCTAssertTrue(messages.contains { $0.hasPrefix("supportAccess.maxDuration: may only shorten") }, "\(messages)")
            XCTAssertTrue(messages.contains { $0.hasPrefix("supportAccess.approvers: may only narrow") && $0.contains("oem") }, "\(messages)")
            XCTAssertTrue(messages.contains { $0.hasPrefix("supportAccess: support access is set on an OEM or a partner") }, "\(messages)")
        }
        XCTAssertThrowsError(try TenantTreeLoader.parseDocument(Self.tree.replacingOccurrences(of: "approvers: [customer]", with: "approvers: [auditor]"), source: "tree", cells: self.cells))
    }
}
