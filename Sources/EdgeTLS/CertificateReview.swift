import Certificates
import Foundation
import GatewayConfig

/// What `erp-gateway check` says about one configured certificate: the names it covers, when
/// it ends, and what is wrong with it. The same loading as the listener's, plus the dates,
/// which the listener does not refuse (see `EdgeCertificate.load`) but a deploy should.
public struct CertificateReview: Sendable {
    public var files: GatewaySettings.Listener.TLS.CertificateFiles
    /// The leaf's subjectAltName DNS entries; empty when it could not be read.
    public var names: [String]
    public var notValidAfter: Int64?
    /// Each makes the configuration unfit to deploy.
    public var errors: [String]
    /// Worth knowing: the end is near.
    public var warnings: [String]

    /// Every certificate `tls` names, the default first, judged at `now` (seconds since 1970).
    public static func review(_ tls: GatewaySettings.Listener.TLS, now: Int64) -> [CertificateReview] {
        tls.allCertificates.map { files in
            var review = CertificateReview(files: files, names: [], notValidAfter: nil, errors: [], warnings: [])
            let certificate: EdgeCertificate
            do throws(EdgeCertificates.FileProblem) {
                certificate = try EdgeCertificates.load(files)
            } catch {
                review.errors.append(error.description)
                return review
            }
            review.names = certificate.coveredNames
            review.notValidAfter = certificate.notValidAfter
            let file = "'\(files.certificate)'"
            if files != tls.defaultCertificate, certificate.names.isEmpty {
                review.errors.append("\(file) names no DNS name (subjectAltName): no client could ask for it")
            }
            if now < certificate.notValidBefore {
                review.errors.append("\(file) is not valid before \(CertificateSummary.utc(certificate.notValidBefore))")
            } else if certificate.secondsLeft(now: now) <= 0 {
                review.errors.append("\(file) expired at \(CertificateSummary.utc(certificate.notValidAfter))")
            } else if certificate.secondsLeft(now: now) <= EdgeTLS.expiryWarningSeconds {
                review.warnings.append("\(file) expires in \(certificate.secondsLeft(now: now) / 86_400) days, at \(CertificateSummary.utc(certificate.notValidAfter))")
            }
            return review
        }
    }
}
