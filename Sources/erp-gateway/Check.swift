import ArgumentParser
import Certificates
import EdgeTLS
import Foundation
import GatewayConfig

/// `erp-gateway check`: validates the settings file and the tenant tree it names the way
/// `nginx -t` does, printing every problem with its location, and exits non-zero if there is any.
/// With `listener.tls` (and `admin.listener.tls`), every certificate and key too: the key belongs to the leaf, the chain
/// is in order, the leaf is within its validity (a warning within 14 days of its end), and the
/// names each covers are listed.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate the configuration and print every error with its location.")

    @Option(name: .long, help: "Path of the settings file (YAML).")
    var config: String

    func run() throws {
        do {
            let configuration = try GatewayConfiguration.load(path: self.config)
            let settings = configuration.settings
            if let tls = settings.listener.tls { try self.checkCertificates(tls) }
            if let tls = settings.admin?.listener.tls { try self.checkCertificates(tls) }
            var summary = "\(self.config): ok (\(settings.cells.count) cells, listener \(settings.listener.address):\(settings.listener.port)"
            if let tls = settings.listener.tls {
                summary += " with TLS \(tls.minimumVersion.rawValue)+ and \(tls.allCertificates.count) certificate\(tls.allCertificates.count == 1 ? "" : "s")"
            }
            if let tenants = configuration.tenants {
                summary += ", \(tenants.nodeCount) tenant nodes, \(tenants.catalog.features.count) features, \(tenants.catalog.routes.all.count) routes"
            }
            print(summary + ")")
        } catch {
            printToStandardError(error.description)
            printToStandardError("\(error.source): \(error.issues.count) error\(error.issues.count == 1 ? "" : "s")")
            throw ExitCode(2)
        }
    }

    /// Prints what each certificate covers and any warning; throws every error as the
    /// settings' own are thrown.
    private func checkCertificates(_ tls: GatewaySettings.Listener.TLS) throws(ConfigurationError) {
        let reviews = CertificateReview.review(tls, now: Int64(Date().timeIntervalSince1970))
        var issues: [ConfigurationIssue] = []
        for review in reviews {
            if let end = review.notValidAfter {
                let names = review.names.isEmpty ? "no DNS name" : review.names.joined(separator: ", ")
                print("\(review.files.settingsKey): \(review.files.certificate): covers \(names); valid until \(CertificateSummary.utc(end))")
            }
            for warning in review.warnings {
                printToStandardError("warning: \(self.config):\(review.files.line.map { "\($0):1: " } ?? "")\(review.files.settingsKey): \(warning)")
            }
            issues += review.errors.map { ConfigurationIssue(path: review.files.settingsKey, line: review.files.line, message: $0) }
        }
        if !issues.isEmpty { throw ConfigurationError(source: self.config, issues: issues) }
    }
}
