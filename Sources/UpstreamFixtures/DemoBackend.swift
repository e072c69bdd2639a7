import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS

/// A small HTTP/1.1 backend on loopback: the demo cells' endpoints, and the real upstream the
/// end-to-end tests put behind the gateway. It streams in both directions with backpressure, so a
/// gigabyte can pass through it without being held in memory.
///
/// Routes:
/// - `GET /bytes/N` — N bytes of a repeating pattern, Content-Length framed, written as the
///   client drains them.
/// - `GET /delay/MS` — answers after MS milliseconds.
/// - `GET /close` — answers with `Connection: close` and closes.
/// - `GET /stats` — connections accepted, TLS handshakes completed and requests served, as JSON.
/// - `…/status/N` (any prefix, so it can sit under a gateway route) — the request as seen, with
///   status N (100…599).
/// - anything else — the request as seen, with the status set by `answer(withStatus:)` (200
///   unless told otherwise, to play a failing backend that still accepts connections) (method, target, headers, body size, and whether the
///   body is the `BytePattern`) as JSON; the body is consumed as it streams, never buffered.
///   Over TLS with a client certificate, the JSON names it (`clientCertificate`: its common
///   name).
///
/// Any JSON answer also carries each `header=NAME:VALUE` of the request's query as a response
/// field, to play a backend that sets fields of its own (an `ETag`, its own CORS fields).
///
/// Started with `tls`, it speaks HTTPS only (a plain client fails its handshake).
public final class DemoBackend: Sendable {
    public struct Statistics: Sendable, Equatable {
        public var connectionsAccepted = 0
        /// TLS handshakes completed (TLS mode): one per connection that got as far as HTTP.
        public var tlsHandshakes = 0
        public var requests = 0
    }

    /// The backend's TLS server side, from PEM text (the fixture takes no position on where
    /// certificates come from).
    public struct TLS: Sendable {
        /// The server's certificate, then any intermediates.
        public var certificateChainPEM: String
        public var keyPEM: String
        /// When set, a client must present a certificate signed by one of these CAs, or the
        /// handshake fails (mutual TLS).
        public var requiredClientCAPEM: String?
        /// Offers TLS 1.2 only, to play a backend the gateway's `minimumVersion: TLSv1.3` refuses.
        public var tls12Only: Bool

        public init(certificateChainPEM: String, keyPEM: String, requiredClientCAPEM: String? = nil, tls12Only: Bool = false) {
            self.certificateChainPEM = certificateChainPEM
            self.keyPEM = keyPEM
            self.requiredClientCAPEM = requiredClientCAPEM
            self.tls12Only = tls12Only
        }

        func makeContext() throws -> NIOSSLContext {
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(self.certificateChainPEM.utf8)).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(bytes: Array(self.keyPEM.utf8), format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            if let clientCA = self.requiredClientCAPEM {
                // Verifies the client's chain; a client has no host name to check.
                configuration.certificateVerification = .noHostnameVerification
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(clientCA.utf8)))
            }
            if self.tls12Only { configuration.maximumTLSVersion = .tlsv12 }
            return try NIOSSLContext(configuration: configuration)
        }
    }

    public let name: String
    private let channel: any Channel
    private let counters: NIOLockedValueBox<Statistics>
    private let connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>
    private let status: NIOLockedValueBox<Int>

    public var port: Int { self.channel.localAddress?.port ?? 0 }
    public var statistics: Statistics { self.counters.withLockedValue { $0 } }
    /// Connections open now (the gateway's pooled and in-use ones to this backend).
    public var openConnections: Int { self.connections.withLockedValue { $0.count } }

    private init(
        name: String, channel: any Channel, counters: NIOLockedValueBox<Statistics>, connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>,
        status: NIOLockedValueBox<Int>
    ) {
        self.status = status
        self.name = name
        self.channel = channel
        self.counters = counters
        self.connections = connections
    }

    /// With `tls`, every connection is TLS (its context built once, here).
    public static func start(name: String, host: String = "127.0.0.1", port: Int = 0, group: any EventLoopGroup, tls: TLS? = nil) async throws -> DemoBackend {
        let counters = NIOLockedValueBox(Statistics())
        let connections = NIOLockedValueBox([ObjectIdentifier: any Channel]())
        let status = NIOLockedValueBox(200)
        let tlsContext = try tls?.makeContext()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                counters.withLockedValue { $0.connectionsAccepted += 1 }
                connections.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
                channel.closeFuture.whenComplete { _ in _ = connections.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) } }
                return channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext))
                        try channel.pipeline.syncOperations.addHandler(HandshakeCounter(counters: counters))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(BackendHandler(name: name, counters: counters, status: status))
                }
            }
            .bind(host: host, port: port)
            .get()
        return DemoBackend(name: name, channel: channel, counters: counters, connections: connections, status: status)
    }

    /// The status of every answer that describes a request from now on (health checks included).
    public func answer(withStatus code: Int) {
        self.status.withLockedValue { $0 = code }
    }

    /// Stops like a process exit would: the listener and every open connection close.
    public func stop() async {
        try? await self.channel.close()
        for connection in self.connections.withLockedValue({ Array($0.values) }) {
            try? await connection.close()
        }
    }
}

/// Counts completed TLS handshakes; a failed one is only a closed connection.
private final class HandshakeCounter: ChannelInboundHandler {
    typealias InboundIn = NIOAny
    private let counters: NIOLockedValueBox<DemoBackend.Statistics>

    init(counters: NIOLockedValueBox<DemoBackend.Statistics>) {
        self.counters = counters
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            self.counters.withLockedValue { $0.tlsHandshakes += 1 }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A refused handshake (untrusted or missing client certificate) closes the connection.
        context.close(promise: nil)
    }
}

private final class BackendHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let name: String
    private let counters: NIOLockedValueBox<DemoBackend.Statistics>
    private let status: NIOLockedValueBox<Int>
    private var head: HTTPRequestHead?
    private var bodyBytes = 0
    private var bodyIsPattern = true
    private var download: (remaining: Int, offset: Int)?

    init(name: String, counters: NIOLockedValueBox<DemoBackend.Statistics>, status: NIOLockedValueBox<Int>) {
        self.status = status
        self.name = name
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.bodyBytes = 0
            self.bodyIsPattern = true
        case .body(let buffer):
            if self.bodyIsPattern {
                self.bodyIsPattern = buffer.withUnsafeReadableBytes { BytePattern.matches($0, at: self.bodyBytes) }
            }
            self.bodyBytes += buffer.readableBytes
        case .end:
            guard let head = self.head else { return }
            self.counters.withLockedValue { $0.requests += 1 }
            self.respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let parts = path.split(separator: "/")
        if parts.count == 2, parts[0] == "bytes", let count = Int(parts[1]) {
            var headers = HTTPHeaders([("content-type", "application/octet-stream"), ("content-length", "\(count)")])
            headers.add(name: "x-backend", value: self.name)
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
            self.download = (count, 0)
            self.continueDownload(context: context)
            return
        }
        if parts.count == 2, parts[0] == "delay", let milliseconds = Int64(parts[1]) {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(milliseconds)) {
                let (handler, context) = loopBound.value
                handler.sendJSON(handler.describe(head, context: context), head: head, context: context, status: handler.status.withLockedValue { $0 })
            }
            return
        }
        if parts.count >= 2, parts[parts.count - 2] == "status", let status = Int(parts[parts.count - 1]), (100...599).contains(status) {
            self.sendJSON(self.describe(head, context: context), head: head, context: context, status: status)
            return
        }
        if parts.count == 2, parts[0] == "employees", let count = Int(parts[1]), count >= 0 {
            self.sendJSON(DemoBackend.employees(count), head: head, context: context)
            return
        }
        if path == "/close" {
            self.sendJSON("{\"closing\":true}", head: head, context: context, close: true)
            return
        }
        if path == "/stats" {
            let stats = self.counters.withLockedValue { $0 }
            self.sendJSON(
                "{\"connectionsAccepted\":\(stats.connectionsAccepted),\"tlsHandshakes\":\(stats.tlsHandshakes),\"requests\":\(stats.requests)}",
                head: head, context: context
            )
            return
        }
        self.sendJSON(self.describe(head, context: context), head: head, context: context, status: self.status.withLockedValue { $0 })
    }

    private func describe(_ head: HTTPRequestHead, context: ChannelHandlerContext) -> String {
        let headers = head.headers.map { "[\(Self.quote($0.name)),\(Self.quote($0.value))]" }.joined(separator: ",")
        var client = ""
        if let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate(),
            let name = certificate.subjectName.first(where: { $0.type == .commonName })
        {
            client = ",\"clientCertificate\":\(Self.quote(name.value))"
        }
        return "{\"backend\":\(Self.quote(self.name)),\"method\":\(Self.quote(head.method.rawValue)),\"uri\":\(Self.quote(head.uri)),"
            + "\"headers\":[\(headers)],\"bodyBytes\":\(self.bodyBytes),\"bodyIsPattern\":\(self.bodyIsPattern)\(client)}"
    }

    private func sendJSON(_ json: String, head: HTTPRequestHead, context: ChannelHandlerContext, close: Bool = false, status: Int = 200) {
        var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", "\(json.utf8.count)")])
        headers.add(name: "x-backend", value: self.name)
        for (name, value) in Self.requestedFields(head.uri) { headers.add(name: name, value: value) }
        if close { headers.add(name: "connection", value: "close") }
        let responseHead = HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: status), headers: headers)
        context.write(self.wrapOutboundOut(.head(responseHead)), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: json)))), promise: nil)
        let done = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if close {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { self.continueDownload(context: context) }
        context.fireChannelWritabilityChanged()
    }

    /// Writes the download while the client keeps up; resumes on writability.
    private func continueDownload(context: ChannelHandlerContext) {
        while var download = self.download, context.channel.isWritable {
            if download.remaining == 0 {
                self.download = nil
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            let size = min(download.remaining, 64 * 1024)
            var buffer = context.channel.allocator.buffer(capacity: size)
            BytePattern.withBytes(at: download.offset, count: size) { buffer.writeBytes($0) }
            download.remaining -= size
            download.offset += size
            self.download = download
            context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
    }

    /// `header=NAME:VALUE` pairs of a target's query, as sent (no percent-decoding).
    static func requestedFields(_ uri: String) -> [(String, String)] {
        guard let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return [] }
        return query.split(separator: "&").compactMap { pair in
            let field = pair.dropFirst(7)
            guard pair.hasPrefix("header="), let colon = field.firstIndex(of: ":") else { return nil }
            return (String(field[..<colon]), String(field[field.index(after: colon)...]))
        }
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension DemoBackend {
    /// `/employees/N`: a JSON employee list of N entries (nested objects, arrays, numbers,
    /// strings with escapes), about 150 bytes each: what field masking works on.
    public static func employees(_ count: Int) -> String {
        var text = #"{"company":"Contoso \"Distribution\"","employees":["#
        for index in 0..<count {
            if index > 0 { text += "," }
            text += #"{"id":\#(index),"name":"Employee \#(index)","salary":\#(40000 + index * 13).50,"active":true,"#
            text += #""bank":{"iban":"DE8937040044053201\#(index % 10000)","bic":"COBADEFFXXX"},"tags":["a","b"],"manager":null}"#
        }
        return text + "]}"
    }
}
