import Certificates
import Foundation
import GatewayConfig

/// Every certificate the listener presents, as one immutable snapshot: the default, the other
/// configured files and the uploaded certificates, with the name table that picks one per
/// handshake (`ServerNameTable` has the rule). A new snapshot is built whole and replaces the
/// old one; a handshake reads whichever is current when it starts.
public final class EdgeCertificates: Sendable {
    /// The configured certificates: the default first, then `certificates` in order.
    public let files: [EdgeCertificate]
    /// Uploaded through the admin API, one per portal domain.
    public let uploaded: [EdgeCertificate]
    let table: ServerNameTable<EdgeCertificate>

    /// `files` must hold at least the default certificate, first.
    init(files: [EdgeCertificate], uploaded: [EdgeCertificate]) {
        precondition(!files.isEmpty, "the default certificate comes first")
        self.files = files
        self.uploaded = uploaded
        self.table = ServerNameTable(
            fallback: files[0],
            files: files.map { .init(names: $0.names, value: $0) },
            uploaded: uploaded.map { .init(names: $0.names, value: $0) }
        )
    }

    public var defaultCertificate: EdgeCertificate { self.files[0] }
    public var all: [EdgeCertificate] { self.files + self.uploaded }

    /// The certificate for the name a client asked for in its hello (nil: it asked none).
    public func certificate(forServerName serverName: String?) -> EdgeCertificate {
        self.table.lookup(serverName)
    }

    /// The same files with other uploads.
    func replacingUploaded(_ uploaded: [EdgeCertificate]) -> EdgeCertificates {
        EdgeCertificates(files: self.files, uploaded: uploaded)
    }

    /// The same uploads with other files.
    func replacingFiles(_ files: [EdgeCertificate]) -> EdgeCertificates {
        EdgeCertificates(files: files, uploaded: self.uploaded)
    }

    /// Reads and checks every file `tls` names, the default first. Every file that cannot be
    /// served is reported, where the settings name it.
    static func loadFiles(_ tls: GatewaySettings.Listener.TLS, source: String) throws(ConfigurationError) -> [EdgeCertificate] {
        var loaded: [EdgeCertificate] = []
        var issues: [ConfigurationIssue] = []
        for files in tls.allCertificates {
            do throws(FileProblem) {
                let certificate = try Self.load(files)
                if files != tls.defaultCertificate, certificate.names.isEmpty {
                    throw FileProblem.message("'\(files.certificate)' names no DNS name (subjectAltName): no client could ask for it")
                }
                loaded.append(certificate)
            } catch {
                issues.append(ConfigurationIssue(path: files.settingsKey, line: files.line, message: error.description))
            }
        }
        guard issues.isEmpty else { throw ConfigurationError(source: source, issues: issues) }
        return loaded
    }

    enum FileProblem: Error, CustomStringConvertible {
        case message(String)
        var description: String {
            switch self {
            case .message(let text): text
            }
        }
    }

    static func load(_ files: GatewaySettings.Listener.TLS.CertificateFiles) throws(FileProblem) -> EdgeCertificate {
        let chain: String, key: String
        do {
            chain = try String(contentsOfFile: files.certificate, encoding: .utf8)
        } catch {
            throw .message("cannot read '\(files.certificate)'")
        }
        do {
            key = try String(contentsOfFile: files.key, encoding: .utf8)
        } catch {
            throw .message("cannot read '\(files.key)'")
        }
        do {
            return try EdgeCertificate.load(chainPEM: chain, keyPEM: key, source: .file(files.certificate))
        } catch {
            let file = error.field == "key" ? files.key : files.certificate
            throw .message("'\(file)': \(error)")
        }
    }
}
