import NIOCore
import NIOSSL
import Synchronization

/// How a `rediss://` connection speaks TLS: the client context (trusted CAs, a client
/// certificate for Redis's `tls-auth-clients`) and the name the server's certificate must carry.
///
/// Certificates are always verified. Without a context the system's trust store is used; without
/// a server name the URL's host is checked — an IP address against the certificate's IP
/// addresses, since SNI cannot carry one. Equal when they share the context object and the name:
/// a context is built once (it reads files and, for the system store, hundreds of certificates),
/// never per connection.
public struct RedisTLS: Sendable, Hashable {
    /// `nil`: the system's trust store, no client certificate.
    public var context: NIOSSLContext?
    /// `nil`: the host the connection goes to.
    public var serverName: String?

    public init(context: NIOSSLContext? = nil, serverName: String? = nil) {
        self.context = context
        self.serverName = serverName
    }

    public static func == (lhs: RedisTLS, rhs: RedisTLS) -> Bool {
        lhs.context.map(ObjectIdentifier.init) == rhs.context.map(ObjectIdentifier.init) && lhs.serverName == rhs.serverName
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.context.map(ObjectIdentifier.init))
        hasher.combine(self.serverName)
    }

    /// The TLS handler for a connection to `host`: first in the channel's pipeline.
    func handler(connectingTo host: String) throws -> NIOSSLClientHandler {
        let context = try self.context ?? Self.systemContext()
        let name = self.serverName ?? ((try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil)
        return try NIOSSLClientHandler(context: context, serverHostname: name)
    }

    /// The system-trust context, built at first use and kept.
    private static let system = Mutex<NIOSSLContext?>(nil)

    private static func systemContext() throws -> NIOSSLContext {
        try self.system.withLock { cached in
            if let cached { return cached }
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .fullVerification
            configuration.trustRoots = .default
            let context = try NIOSSLContext(configuration: configuration)
            cached = context
            return context
        }
    }
}
