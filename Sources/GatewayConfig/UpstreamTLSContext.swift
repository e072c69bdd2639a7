import Foundation
import NIOSSL

/// A cell's `tls` settings compiled into the one TLS client context every connection to its
/// endpoints is made with: trust roots, client identity and protocol versions are parsed once
/// (building a context reads files and, for the system's trust store, hundreds of
/// certificates), never per connection and never on an event loop.
///
/// The object's identity stands for its settings: a reload that leaves a cell's `tls` as it was
/// hands out the same object (`cache`), so upstream connections pooled under it stay usable,
/// and one that changes them hands out a new object, under which no old connection is pooled.
public final class UpstreamTLSContext: Sendable {
    public let settings: GatewaySettings.CellTLS
    public let sslContext: NIOSSLContext

    public init(settings: GatewaySettings.CellTLS) throws {
        var configuration = try settings.clientConfiguration()
        // The data plane speaks HTTP/1.1 upstream; a backend that offers HTTP/2 by ALPN must
        // not pick it for this connection.
        configuration.applicationProtocols = ["http/1.1"]
        self.settings = settings
        self.sslContext = try NIOSSLContext(configuration: configuration)
    }

    /// The name checked in `endpoint`'s certificate and sent as SNI: `serverName` when the cell
    /// sets one, else the endpoint's host. An endpoint addressed by IP without `serverName` has
    /// none (SNI carries no addresses): its certificate must then list that address, which is
    /// checked against the address connected to.
    public func serverHostname(for endpoint: GatewaySettings.Endpoint) -> String? {
        if let name = self.settings.serverName { return name }
        return TLSNames.isIPAddress(endpoint.host) ? nil : endpoint.host
    }

    /// The contexts of the configurations this process compiled last, by their settings.
    public static let cache = Cache()

    /// Contexts by the settings they were compiled from. It keeps what the latest compile used,
    /// so memory stays bounded by the cells configured; contexts in use by an older
    /// configuration live on as long as that configuration does.
    public final class Cache: @unchecked Sendable {
        // Guards `contexts`; compiles are rare (start, reload, a new tenant tree) and short.
        private let lock = NSLock()
        private var contexts: [GatewaySettings.CellTLS: UpstreamTLSContext] = [:]

        public init() {}

        /// The context of every `https` cell of `cells`, by cell id: the cached one for settings
        /// compiled before, a new one otherwise.
        public func contexts(for cells: [GatewaySettings.Cell], settingsPath: String) throws(ConfigurationError) -> [String: UpstreamTLSContext] {
            self.lock.lock()
            defer { self.lock.unlock() }
            var compiled: [String: UpstreamTLSContext] = [:]
            var kept: [GatewaySettings.CellTLS: UpstreamTLSContext] = [:]
            var issues: [ConfigurationIssue] = []
            for (index, cell) in cells.enumerated() {
                guard let tls = cell.tls else { continue }
                if let context = kept[tls] ?? self.contexts[tls] {
                    compiled[cell.id] = context
                    kept[tls] = context
                    continue
                }
                do {
                    let context = try UpstreamTLSContext(settings: tls)
                    compiled[cell.id] = context
                    kept[tls] = context
                } catch {
                    // The loader checked each file; what is left is the system trust store or
                    // something only BoringSSL can tell, verbatim for the operator.
                    issues.append(ConfigurationIssue(path: "cells[\(index)].tls", message: "cannot build the TLS client context: \(error)"))
                }
            }
            guard issues.isEmpty else { throw ConfigurationError(source: settingsPath, issues: issues) }
            self.contexts = kept
            return compiled
        }
    }
}
