import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An identity provider's key endpoints on loopback over HTTPS, for the tests of fetched issuer
/// keys: `GET /jwks` answers the current JWKS document (with the `Cache-Control` set), `GET
/// /.well-known/openid-configuration` a discovery document naming `discoveryIssuer` and the
/// JWKS URL. Keys can be rotated, the provider taken down (every connection closed unanswered)
/// and brought back, and the fetches of each path are counted.
public final class IdentityProviderFixture: Sendable {
    public static let jwksPath = "/jwks"
    public static let discoveryPath = "/.well-known/openid-configuration"

    private struct State {
        var jwks = #"{"keys":[]}"#
        var cacheControl: String?
        var discoveryIssuer = ""
        var down = false
        var fetches: [String: Int] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let channel: any Channel
    public let port: Int

    /// `https://127.0.0.1:<port>`: the certificate must name 127.0.0.1.
    public var baseURL: String { "https://127.0.0.1:\(self.port)" }
    public var jwksURL: String { self.baseURL + Self.jwksPath }
    public var discoveryURL: String { self.baseURL + Self.discoveryPath }

    private init(channel: any Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    public static func start(certificateChainPEM: String, keyPEM: String, group: any EventLoopGroup) async throws -> IdentityProviderFixture {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificateChainPEM.utf8)).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        let context = try NIOSSLContext(configuration: TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
        let box = NIOLockedValueBox<IdentityProviderFixture?>(nil)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let fixture = box.withLockedValue({ $0 }), !fixture.isDown else {
                        throw ChannelError.ioOnClosedChannel
                    }
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(Handler(fixture: fixture))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let fixture = IdentityProviderFixture(channel: channel, port: channel.localAddress?.port ?? 0)
        box.withLockedValue { $0 = fixture }
        return fixture
    }

    /// The JWKS document served from now on, and its `Cache-Control` (nil: none).
    public func serve(jwks: String, cacheControl: String?) {
        self.state.withLockedValue {
            $0.jwks = jwks
            $0.cacheControl = cacheControl
        }
    }

    /// The `issuer` the discovery document names.
    public func serveDiscovery(issuer: String) {
        self.state.withLockedValue { $0.discoveryIssuer = issuer }
    }

    /// Down: new connections are closed before the TLS handshake; up again: served.
    public func setDown(_ down: Bool) {
        self.state.withLockedValue { $0.down = down }
    }

    var isDown: Bool { self.state.withLockedValue { $0.down } }

    /// Requests answered for `path` so far.
    public func fetches(_ path: String) -> Int {
        self.state.withLockedValue { $0.fetches[path] ?? 0 }
    }

    public func stop() async {
        try? await self.channel.close()
    }

    fileprivate func answer(_ path: String) -> (status: HTTPResponseStatus, body: String, cacheControl: String?) {
        self.state.withLockedValue { state in
            state.fetches[path, default: 0] += 1
            switch path {
            case Self.jwksPath:
                return (.ok, state.jwks, state.cacheControl)
            case Self.discoveryPath:
                let body = #"{"issuer":"\#(state.discoveryIssuer)","jwks_uri":"\#(self.jwksURL)","id_token_signing_alg_values_supported":["RS256"]}"#
                return (.ok, body, "max-age=3600")
            default:
                return (.notFound, "{}", nil)
            }
        }
    }

    private final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let fixture: IdentityProviderFixture

        init(fixture: IdentityProviderFixture) { self.fixture = fixture }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let head) = self.unwrapInboundIn(data) else { return }
            // A kept-alive connection from before the provider went down gets no answer either.
            if self.fixture.isDown {
                context.close(promise: nil)
                return
            }
            let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
            let (status, body, cacheControl) = self.fixture.answer(path)
            var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", "\(body.utf8.count)")])
            if let cacheControl { headers.add(name: "cache-control", value: cacheControl) }
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
