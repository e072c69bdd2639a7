import Certificates
import CoreMetrics
import Foundation
import GatewayConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// TLS at the data-plane listener: the current `EdgeCertificates` snapshot, the one
/// `NIOSSLContext` of the listener, and the ways a snapshot is replaced — the files again
/// (reload), the admin API's uploads (`install(uploaded:)`). Each replacement builds a new
/// snapshot beside the current one and swaps it whole; a handshake reads the snapshot once, when
/// the client's hello names the server it wants, so connections already open keep the
/// certificate they were made with and are never dropped by a swap.
public final class EdgeTLS: Sendable {
    /// The application protocols offered in ALPN, most preferred first: HTTP/2 when the
    /// listener speaks it (`listener.http2.enabled`).
    public static func applicationProtocols(http2: Bool) -> [String] { http2 ? ["h2", "http/1.1"] : ["http/1.1"] }
    /// TLS 1.2 suites: ECDHE key exchange (forward secrecy) with an AEAD cipher only — AES-GCM
    /// first (hardware AES is the norm), then ChaCha20-Poly1305 — for ECDSA and RSA
    /// certificates alike. No CBC, no static RSA key exchange, no finite-field DHE. TLS 1.3's
    /// three suites (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305) are BoringSSL's and not
    /// configurable. docs/configuration.md lists them.
    public static let cipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")
    /// A certificate this close to its end is logged at warning.
    public static let expiryWarningSeconds: Int64 = 14 * 86_400

    private let current: NIOLockedValueBox<EdgeCertificates>
    /// Fixed for the life of the listener: its `NIOSSLContext` is made once.
    public let minimumVersion: GatewaySettings.Listener.TLS.Version
    private let logger: Logger
    private let gauges: CertificateExpiryGauges?
    /// Wall-clock seconds since 1970, for expiry.
    private let now: @Sendable () -> Int64

    /// Loads every file `settings` names; throws, with every file that cannot be served, where
    /// the settings file (`source`) names it.
    public convenience init(
        settings: GatewaySettings.Listener.TLS, source: String, logger: Logger, gauges: CertificateExpiryGauges? = nil,
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }
    ) throws(ConfigurationError) {
        self.init(files: try Self.loadFiles(settings, source: source), logger: logger, gauges: gauges, now: now)
    }

    /// Serves `files` (from `loadFiles`), with no uploads yet; logs what expires soon.
    public init(
        files: LoadedFiles, logger: Logger, gauges: CertificateExpiryGauges? = nil,
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }
    ) {
        self.current = NIOLockedValueBox(EdgeCertificates(files: files.certificates, uploaded: []))
        self.minimumVersion = files.minimumVersion
        self.logger = logger
        self.gauges = gauges
        self.now = now
        self.reviewExpiry()
    }

    /// The snapshot in force now.
    public var certificates: EdgeCertificates { self.current.withLockedValue { $0 } }

    // MARK: - The listener's context

    /// The listener's one TLS context: one context for every name, so a session resumes
    /// whichever certificate its first handshake used, and its session cache and ticket keys
    /// last as long as the listener. The certificate is chosen per handshake from the
    /// snapshot current when the client's hello arrives.
    ///
    /// Session resumption is BoringSSL's default for a server context: a session cache and
    /// session tickets (TLS 1.2 and 1.3) under ticket keys it makes and rotates itself.
    public func makeServerContext(applicationProtocols: [String]) throws -> NIOSSLContext {
        let fallback = self.certificates.defaultCertificate
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: fallback.chain.map { .certificate($0) }, privateKey: .privateKey(fallback.key)
        )
        configuration.minimumTLSVersion = self.minimumVersion == .tls13 ? .tlsv13 : .tlsv12
        configuration.maximumTLSVersion = .tlsv13
        configuration.cipherSuites = Self.cipherSuites
        configuration.applicationProtocols = applicationProtocols
        // A connection closes as nginx closes one: close_notify sent, then the socket closed,
        // without waiting for the client's own close_notify (TLS does not ask the closer to
        // wait). The gateway's connection handler reads nothing more once it closes, so the
        // answer could not be seen anyway: with NIOSSL's 5 s default each idle TLS connection
        // held a drain for 5 s (measured: 5.0 s against 0.05 s for plain HTTP).
        configuration.shutdownTimeout = .zero
        let current = self.current
        configuration.sslContextCallback = { hello, promise in
            // The lock guards one pointer copy; the handshake's signature costs far more.
            let certificates = current.withLockedValue { $0 }
            promise.succeed(certificates.certificate(forServerName: hello.serverHostname).override)
        }
        return try NIOSSLContext(configuration: configuration)
    }

    // MARK: - Replacing the snapshot

    /// The configured files, read and checked, not yet in force: a reload loads them next to
    /// the rest of the configuration and installs both or neither.
    public struct LoadedFiles: Sendable {
        let certificates: [EdgeCertificate]
        public let minimumVersion: GatewaySettings.Listener.TLS.Version
    }

    /// Reads every file `settings` names. Throws, with every file that cannot be served, and
    /// then nothing changes.
    public static func loadFiles(_ settings: GatewaySettings.Listener.TLS, source: String) throws(ConfigurationError) -> LoadedFiles {
        LoadedFiles(certificates: try EdgeCertificates.loadFiles(settings, source: source), minimumVersion: settings.minimumVersion)
    }

    /// Puts freshly loaded files in force, keeping the uploads. Handshakes from now on use
    /// them; connections already open are untouched. The minimum version stays the one the
    /// listener started with.
    public func install(_ files: LoadedFiles) {
        self.current.withLockedValue { $0 = $0.replacingFiles(files.certificates) }
        self.logger.notice("TLS certificates loaded", metadata: ["files": "\(files.certificates.count)"])
        self.reviewExpiry()
    }

    /// Replaces every uploaded certificate with `uploaded` (the admin store's current set),
    /// keeping the files. A certificate that cannot be served — unreadable, a key that does not
    /// belong to it, a leaf that does not cover its domain — is left out, logged and returned;
    /// the others are installed. The name rule (`ServerNameTable`): an uploaded certificate
    /// wins over a configured wildcard for its domain, a configured exact name wins over it.
    @discardableResult
    public func install(uploaded: [UploadedCertificate]) -> [UploadRejection] {
        var loaded: [EdgeCertificate] = []
        var rejections: [UploadRejection] = []
        for upload in uploaded {
            do {
                loaded.append(try EdgeCertificate.load(
                    chainPEM: upload.chainPEM, keyPEM: upload.keyPEM, source: .uploaded(node: upload.node), domain: upload.domain
                ))
            } catch {
                let rejection = UploadRejection(domain: upload.domain, node: upload.node, reason: error.description)
                self.logger.error("uploaded TLS certificate not installed", metadata: [
                    "domain": "\(rejection.domain)", "node": "\(rejection.node)", "reason": "\(rejection.reason)",
                ])
                rejections.append(rejection)
            }
        }
        self.current.withLockedValue { $0 = $0.replacingUploaded(loaded) }
        self.logger.notice("uploaded TLS certificates installed", metadata: ["installed": "\(loaded.count)", "rejected": "\(rejections.count)"])
        self.reviewExpiry()
        return rejections
    }

    // MARK: - Expiry

    /// Logs every certificate that expires within 14 days (warning) or is out of its validity
    /// (error), and records each one's expiry in the gauge. Runs at every load and install,
    /// and daily from `watchExpiry`.
    public func reviewExpiry() {
        let certificates = self.certificates.all
        let now = self.now()
        for certificate in certificates {
            var metadata: Logger.Metadata = [
                "name": "\(certificate.label)", "source": "\(certificate.source.label)",
                "not-valid-after": "\(CertificateSummary.utc(certificate.notValidAfter))",
            ]
            if case .uploaded(let node) = certificate.source { metadata["node"] = "\(node)" }
            if case .file(let path) = certificate.source { metadata["file"] = "\(path)" }
            let left = certificate.secondsLeft(now: now)
            if left <= 0 {
                self.logger.error("TLS certificate expired: clients refuse it", metadata: metadata)
            } else if now < certificate.notValidBefore {
                metadata["not-valid-before"] = "\(CertificateSummary.utc(certificate.notValidBefore))"
                self.logger.error("TLS certificate not valid yet: clients refuse it", metadata: metadata)
            } else if left <= Self.expiryWarningSeconds {
                metadata["days-left"] = "\(left / 86_400)"
                self.logger.warning("TLS certificate expires soon", metadata: metadata)
            }
        }
        self.gauges?.record(certificates)
    }

    /// Reviews expiry every `interval` (a day) on `loop`, from one interval on.
    public func watchExpiry(on loop: any EventLoop, every interval: TimeAmount = .hours(24)) -> RepeatedTask {
        loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in self.reviewExpiry() }
    }
}

/// `erp_gateway_tls_certificate_expiry_timestamp_seconds{name, source}`: one series per
/// certificate (its first name, `file` or `uploaded`), so bounded by the certificates
/// configured and uploaded; a certificate that goes away takes its series with it. Two
/// certificates under one name and source (an old and a new file during a rotation) show the
/// earlier expiry, so an alert never misses the one that runs out first.
public final class CertificateExpiryGauges: Sendable {
    private struct Series: Hashable {
        var name: String
        var source: String
    }

    private let factory: any MetricsFactory
    private let label: String
    private let gauges = NIOLockedValueBox<[Series: CoreMetrics.Gauge]>([:])

    /// `label` is the metric's name (the ProxyEngine module's `MetricCatalog` holds it).
    public init(factory: any MetricsFactory, label: String) {
        self.factory = factory
        self.label = label
    }

    func record(_ certificates: [EdgeCertificate]) {
        var earliest: [Series: Int64] = [:]
        for certificate in certificates {
            let series = Series(name: certificate.label, source: certificate.source.label)
            earliest[series] = min(earliest[series] ?? .max, certificate.notValidAfter)
        }
        self.gauges.withLockedValue { gauges in
            for (series, gauge) in gauges where earliest[series] == nil {
                gauge.destroy()
                gauges[series] = nil
            }
            for (series, expiry) in earliest {
                let gauge = gauges[series] ?? CoreMetrics.Gauge(
                    label: self.label, dimensions: [("name", series.name), ("source", series.source)], factory: self.factory
                )
                gauges[series] = gauge
                gauge.record(expiry)
            }
        }
    }
}
