import CertificateUploads
import Certificates
import Foundation
import GatewayConfig
import Hierarchy
import TestCertificateAuthority

/// A small tree with portal domains, keys and certificates made at test time, and records as
/// the admin API stores them.
enum CertificateFixtures {
    static let treeYAML = """
        catalog:
          features: [ledger]
          packages: { basic: [ledger] }
          routes: [{ path: /v1/ledger, feature: ledger }]
        tenants:
          - { id: acme, kind: oem, placement: { tier: pooled, region: eu }, portalDomains: [erp.acme.test] }
          - { id: p1, kind: partner, parent: acme, portalDomains: [portal.p1.test] }
          - { id: p2, kind: partner, parent: acme, portalDomains: [portal.p2.test] }
          - { id: c1, kind: customer, parent: p1, package: basic }

        """

    static let cells = [GatewaySettings.Cell(id: "pooled-eu", kind: .pooled, region: "eu", endpoints: [.init(host: "127.0.0.1", port: 9)])]

    static func tree(_ text: String = treeYAML) throws -> TenantSnapshot {
        try TreeCompiler.compile(try TenantTreeLoader.parse(text, cells: cells))
    }

    static func keyEncryptionKey() throws -> KeyEncryptionKey {
        try KeyEncryptionKey(fileContents: (0..<32).map { _ in UInt8.random(in: .min ... .max) })
    }

    static func record(
        _ issued: TestCertificateAuthority.Issued, domain: String, node: String, with keyEncryptionKey: KeyEncryptionKey, version: Int64 = 1
    ) throws -> StoredCertificate {
        let now = Int64(Date().timeIntervalSince1970)
        let summary = try CertificateInspection.check(chainPEM: issued.chainPEM, keyPEM: issued.keyPEM, covering: [domain], now: now)
        return StoredCertificate.sealing(
            keyPEM: issued.keyPEM, with: keyEncryptionKey, domain: domain, node: node, chainPEM: issued.chainPEM, summary: summary, uploadedAt: now,
            uploadedBy: "jane@p1.test", version: version
        )
    }
}
