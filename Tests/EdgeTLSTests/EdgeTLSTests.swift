import Foundation
import GatewayConfig
import LogCapture
import Logging
import Prometheus
import TestCertificateAuthority
import XCTest
@testable import EdgeTLS

/// EdgeTLS with real certificates from a test CA: what files and uploads load into the
/// snapshot, what is refused and how it is reported, what a swap keeps, and what expiry logs
/// and exports. Handshakes are the real binary's (`TLSListenerTests`).
final class EdgeTLSTests: XCTestCase {
    static let authority = try! TestCertificateAuthority()
    static let gateway = try! authority.issueServer(domains: ["gateway.test"])
    static let northwind = try! authority.issueServer(domains: ["erp.northwind.test"])
    static let wildcard = try! authority.issueServer(domains: ["*.erp-cloud.test", "app.erp-cloud.test"], key: .rsa2048)

    private let logs = CapturedLog()
    private var logger: Logger { self.logs.logger("edge-tls-test") }

    private func files(_ pairs: [TestCertificateAuthority.Issued], keys: [String?] = []) -> GatewaySettings.Listener.TLS {
        let all = pairs.enumerated().map { index, issued in
            GatewaySettings.Listener.TLS.CertificateFiles(
                certificate: issued.chainPath, key: (keys.indices.contains(index) ? keys[index] : nil) ?? issued.keyPath,
                settingsKey: index == 0 ? "listener.tls" : "listener.tls.certificates[\(index - 1)]", line: 10 + index
            )
        }
        return GatewaySettings.Listener.TLS(defaultCertificate: all[0], certificates: Array(all.dropFirst()))
    }

    // MARK: - Files

    func testFilesAreChosenByTheirSubjectAltNames() throws {
        let tls = try EdgeTLS(settings: self.files([Self.gateway, Self.northwind, Self.wildcard]), source: "gateway.yaml", logger: self.logger)
        let certificates = tls.certificates
        XCTAssertEqual(certificates.certificate(forServerName: "erp.northwind.test").names, ["erp.northwind.test"])
        XCTAssertEqual(certificates.certificate(forServerName: "stark.erp-cloud.test").label, "*.erp-cloud.test")
        XCTAssertEqual(certificates.certificate(forServerName: "app.erp-cloud.test").label, "*.erp-cloud.test")
        XCTAssertEqual(certificates.certificate(forServerName: "elsewhere.test").label, "gateway.test")
        XCTAssertEqual(certificates.certificate(forServerName: nil).label, "gateway.test")
        XCTAssertEqual(certificates.certificate(forServerName: "erp.northwind.test").chain.count, 2, "leaf and CA, as the file holds them")
    }

    func testEveryFileThatCannotBeServedIsReportedWhereTheSettingsNameIt() throws {
        let unrelated = try Self.authority.unrelatedKey()
        let ipOnly = try Self.authority.issueServer(domains: ["127.0.0.1"])
        let garbage = FileManager.default.temporaryDirectory.appendingPathComponent("garbage-\(UUID().uuidString).pem").path
        try "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".write(toFile: garbage, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: garbage) }
        var settings = self.files([Self.gateway, Self.northwind, ipOnly, Self.wildcard], keys: [nil, unrelated.path])
        settings.certificates[2].certificate = garbage
        XCTAssertThrowsError(try EdgeTLS.loadFiles(settings, source: "gateway.yaml")) { error in
            let error = error as! ConfigurationError
            XCTAssertEqual(error.source, "gateway.yaml")
            XCTAssertEqual(error.issues.map(\.path), ["listener.tls.certificates[0]", "listener.tls.certificates[1]", "listener.tls.certificates[2]"])
            XCTAssertEqual(error.issues.map(\.line), [11, 12, 13])
            XCTAssertTrue(error.issues[0].message.contains("the key does not belong to the chain's first certificate"), "\(error.issues[0])")
            XCTAssertTrue(error.issues[0].message.contains(unrelated.path), "\(error.issues[0])")
            XCTAssertTrue(error.issues[1].message.contains("names no DNS name"), "\(error.issues[1])")
            XCTAssertTrue(error.issues[2].message.contains("is not a readable PEM X.509 certificate"), "\(error.issues[2])")
        }
    }

    func testAnExpiredCertificateIsStillServedAndSaidToBeExpired() throws {
        let expired = try Self.authority.issueServer(
            domains: ["old.test"], validFrom: Date(timeIntervalSinceNow: -20 * 86400), validUntil: Date(timeIntervalSinceNow: -86400)
        )
        let tls = try EdgeTLS(settings: self.files([Self.gateway, expired]), source: "gateway.yaml", logger: self.logger)
        XCTAssertEqual(tls.certificates.certificate(forServerName: "old.test").label, "old.test")
        XCTAssertEqual(self.logs.messages(.error), ["TLS certificate expired: clients refuse it"])
    }

    func testReloadedFilesReplaceTheFilesAndKeepTheUploads() throws {
        let tls = try EdgeTLS(settings: self.files([Self.gateway]), source: "gateway.yaml", logger: self.logger)
        let portal = try Self.authority.issueServer(domains: ["portal.partner.test"])
        tls.install(uploaded: [UploadedCertificate(domain: "portal.partner.test", chainPEM: portal.chainPEM, keyPEM: portal.keyPEM, node: "partner-1")])
        let before = tls.certificates
        tls.install(try EdgeTLS.loadFiles(self.files([Self.gateway, Self.northwind]), source: "gateway.yaml"))
        XCTAssertEqual(tls.certificates.certificate(forServerName: "erp.northwind.test").label, "erp.northwind.test")
        XCTAssertEqual(tls.certificates.certificate(forServerName: "portal.partner.test").source, .uploaded(node: "partner-1"))
        XCTAssertEqual(before.certificate(forServerName: "erp.northwind.test").label, "gateway.test", "a snapshot never changes: it is replaced")
    }

    // MARK: - Uploads

    func testAnUploadWinsOverAConfiguredWildcardAndLosesToAConfiguredExactName() throws {
        let tls = try EdgeTLS(settings: self.files([Self.gateway, Self.wildcard]), source: "gateway.yaml", logger: self.logger)
        let stark = try Self.authority.issueServer(domains: ["stark.erp-cloud.test"])
        let app = try Self.authority.issueServer(domains: ["app.erp-cloud.test"])
        let rejected = tls.install(uploaded: [
            UploadedCertificate(domain: "stark.erp-cloud.test", chainPEM: stark.chainPEM, keyPEM: stark.keyPEM, node: "stark-consulting"),
            UploadedCertificate(domain: "APP.erp-cloud.test", chainPEM: app.chainPEM, keyPEM: app.keyPEM, node: "direct-online"),
        ])
        XCTAssertEqual(rejected, [])
        let certificates = tls.certificates
        XCTAssertEqual(certificates.certificate(forServerName: "stark.erp-cloud.test").source, .uploaded(node: "stark-consulting"))
        XCTAssertEqual(certificates.certificate(forServerName: "app.erp-cloud.test").source, .file(Self.wildcard.chainPath), "named exactly by a file")
        XCTAssertEqual(certificates.certificate(forServerName: "other.erp-cloud.test").source, .file(Self.wildcard.chainPath))
    }

    func testAnUploadThatCannotBeServedIsLeftOutAndTheOthersAreInstalled() throws {
        let tls = try EdgeTLS(settings: self.files([Self.gateway]), source: "gateway.yaml", logger: self.logger)
        let good = try Self.authority.issueServer(domains: ["erp.good.test"])
        let other = try Self.authority.issueServer(domains: ["erp.other.test"])
        let rejected = tls.install(uploaded: [
            UploadedCertificate(domain: "erp.good.test", chainPEM: good.chainPEM, keyPEM: good.keyPEM, node: "good"),
            // A valid certificate, for another name than the domain it is uploaded for.
            UploadedCertificate(domain: "erp.victim.test", chainPEM: other.chainPEM, keyPEM: other.keyPEM, node: "sly"),
            UploadedCertificate(domain: "erp.other.test", chainPEM: other.chainPEM, keyPEM: good.keyPEM, node: "careless"),
        ])
        XCTAssertEqual(rejected.map(\.domain), ["erp.victim.test", "erp.other.test"])
        XCTAssertTrue(rejected[0].reason.contains("does not cover 'erp.victim.test'"), rejected[0].reason)
        XCTAssertTrue(rejected[1].reason.contains("the key does not belong"), rejected[1].reason)
        let certificates = tls.certificates
        XCTAssertEqual(certificates.uploaded.map(\.label), ["erp.good.test"])
        XCTAssertEqual(certificates.certificate(forServerName: "erp.other.test").label, "gateway.test", "an upload serves only its own domain")
        XCTAssertEqual(self.logs.messages(.error), ["uploaded TLS certificate not installed", "uploaded TLS certificate not installed"])

        // The next set replaces the whole set.
        tls.install(uploaded: [])
        XCTAssertEqual(tls.certificates.certificate(forServerName: "erp.good.test").label, "gateway.test")
    }

    // MARK: - Expiry

    func testCertificatesNearTheirEndAreLoggedAndEveryOneIsExported() throws {
        let registry = PrometheusCollectorRegistry()
        let gauges = CertificateExpiryGauges(factory: PrometheusMetricsFactory(registry: registry), label: "tls_expiry")
        // Judged at a fixed instant: 10 days and an hour before the end.
        let now = Int64(Date().timeIntervalSince1970)
        let ending = try Self.authority.issueServer(domains: ["erp.ending.test"], validUntil: Date(timeIntervalSince1970: TimeInterval(now + 10 * 86400 + 3600)))
        let tls = try EdgeTLS(settings: self.files([Self.gateway, ending]), source: "gateway.yaml", logger: self.logger, gauges: gauges, now: { now })
        XCTAssertEqual(self.logs.messages(.warning), ["TLS certificate expires soon"])
        XCTAssertEqual(self.logs.metadata(.warning, "name"), ["erp.ending.test"])
        XCTAssertEqual(self.logs.metadata(.warning, "days-left"), ["10"])

        let portal = try Self.authority.issueServer(domains: ["portal.partner.test"])
        tls.install(uploaded: [UploadedCertificate(domain: "portal.partner.test", chainPEM: portal.chainPEM, keyPEM: portal.keyPEM, node: "p")])
        let series = Self.exposition(registry).filter { $0.hasPrefix("tls_expiry{") }
        XCTAssertEqual(series.count, 3, "\(series)")
        let leaf = tls.certificates.certificate(forServerName: "erp.ending.test")
        XCTAssertTrue(series.contains("tls_expiry{name=\"erp.ending.test\",source=\"file\"} \(Double(leaf.notValidAfter))"), "\(series)")
        XCTAssertTrue(series.contains { $0.hasPrefix("tls_expiry{name=\"portal.partner.test\",source=\"uploaded\"}") }, "\(series)")

        // An upload withdrawn takes its series with it.
        tls.install(uploaded: [])
        XCTAssertFalse(Self.exposition(registry).contains { $0.contains("portal.partner.test") })

        // The daily review logs again.
        tls.reviewExpiry()
        XCTAssertEqual(self.logs.messages(.warning).count, 4, "at load, at both installs, and on review")
    }

    func testTwoCertificatesUnderOneNameShowTheEarlierExpiry() throws {
        let registry = PrometheusCollectorRegistry()
        let gauges = CertificateExpiryGauges(factory: PrometheusMetricsFactory(registry: registry), label: "tls_expiry")
        let sooner = try Self.authority.issueServer(domains: ["erp.northwind.test"], validUntil: Date(timeIntervalSinceNow: 20 * 86400))
        let tls = try EdgeTLS(settings: self.files([Self.gateway, Self.northwind, sooner]), source: "gateway.yaml", logger: self.logger, gauges: gauges)
        let northwind = Self.exposition(registry).filter { $0.hasPrefix("tls_expiry{name=\"erp.northwind.test\"") }
        XCTAssertEqual(northwind, ["tls_expiry{name=\"erp.northwind.test\",source=\"file\"} \(Double(tls.certificates.files[2].notValidAfter))"])
    }

    static func exposition(_ registry: PrometheusCollectorRegistry) -> [String] {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}
