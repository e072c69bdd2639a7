import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

@testable import GatewayConfig
@testable import ProxyEngine

/// An HTTP/1.1 client connection's responses, written by the connection handler itself
/// (`ClientResponseWriter` behind `ClientConnectionHandler.send`), come out byte for byte as
/// SwiftNIO's `HTTPResponseEncoder` (paired with its request decoder, so it knows each request's
/// method) and `NIOHTTPResponseHeadersValidator` wrote them; what the validator refused is refused.
final class ClientResponseWriterTests: XCTestCase {
    /// Responses on one connection, each with the method of the request it answers.
    struct Exchange {
        var method: HTTPMethod = .GET
        var parts: [HTTPServerResponsePart]
    }

    static func head(_ status: HTTPResponseStatus, _ fields: [(String, String)], version: HTTPVersion = .http1_1) -> HTTPServerResponsePart {
        .head(HTTPResponseHead(version: version, status: status, headers: HTTPHeaders(fields)))
    }

    static func body(_ text: String) -> HTTPServerResponsePart { .body(.byteBuffer(ByteBuffer(string: text))) }

    static let connections: [[Exchange]] = [
        [Exchange(parts: [head(.ok, [("Content-Length", "5"), ("Content-Type", "text/plain")]), body("hello"), .end(nil)])],
        // No length on HTTP/1.1: chunked, each part a chunk, an empty part none.
        [Exchange(parts: [head(.ok, [("Server", "cell")]), body("hello"), body(""), body(", world"), .end(nil)])],
        // Already chunked: the field is replaced (it moves last), the body chunked once.
        [Exchange(parts: [head(.ok, [("Transfer-Encoding", "chunked"), ("X-A", "1")]), body("abc"), .end(nil)])],
        // Both lengths: Content-Length wins.
        [Exchange(parts: [head(.ok, [("Transfer-Encoding", "chunked"), ("Content-Length", "2")]), body("ok"), .end(nil)])],
        [Exchange(parts: [head(.ok, [("X-Sum", "1")]), body("0123456789"), .end(HTTPHeaders([("X-Sum", "45"), ("X-Other", "a b")]))])],
        // HEAD: the head says what a GET would (a length, or chunked), no body follows.
        [Exchange(method: .HEAD, parts: [head(.ok, [("Content-Length", "1234")]), body("dropped"), .end(nil)])],
        [Exchange(method: .HEAD, parts: [head(.ok, [("ETag", "\"x\"")]), body("dropped"), .end(nil)])],
        // No body by status: the lengths go.
        [Exchange(parts: [head(.noContent, [("Content-Length", "10"), ("X-A", "b")]), .end(nil)])],
        [Exchange(parts: [head(.notModified, [("Transfer-Encoding", "chunked"), ("ETag", "\"x\"")]), .end(nil)])],
        // CONNECT: no framing at all, no body.
        [Exchange(method: .CONNECT, parts: [head(.ok, [("Content-Length", "3")]), body("abc"), .end(nil)])],
        // An interim answer does not answer the request: the HEAD's final head does.
        [Exchange(method: .HEAD, parts: [head(.continue, []), head(.ok, [("Content-Length", "3")]), body("abc"), .end(nil)])],
        [Exchange(method: .POST, parts: [head(.continue, [("Content-Length", "7")]), head(.created, [("Location", "/x")]), body("!"), .end(nil)])],
        // HTTP/1.0: no chunked, the body ends with the connection.
        [Exchange(parts: [head(.ok, [("Connection", "close")], version: .http1_0), body("until close"), .end(nil)])],
        [Exchange(parts: [head(.ok, [("Content-Length", "2")], version: .http1_0), body("ok"), .end(nil)])],
        // Statuses by code, the reason phrase as given (empty too).
        [Exchange(parts: [head(.custom(code: 299, reasonPhrase: "Fine By Us"), [("Content-Length", "0")]), .end(nil)])],
        [Exchange(parts: [head(.custom(code: 599, reasonPhrase: ""), [("Content-Length", "0")]), .end(nil)])],
        [Exchange(parts: [head(.serviceUnavailable, [("Retry-After", "5"), ("Content-Length", "4"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]), body("busy"), .end(nil)])],
        [Exchange(parts: [head(.ok, [("X-Obs", "caf\u{e9}\tx"), ("X-Empty", ""), ("Content-Length", "0")]), .end(nil)])],
        [Exchange(method: .GET, parts: [head(.switchingProtocols, [("Upgrade", "websocket"), ("Connection", "Upgrade")]), .end(nil)])],
        // One connection, one response after another: what the HEAD suppressed is back for the GET.
        [
            Exchange(method: .HEAD, parts: [head(.ok, [("X-A", "1")]), .end(nil)]),
            Exchange(method: .GET, parts: [head(.ok, [("X-A", "2")]), body("second"), .end(nil)]),
            Exchange(method: .DELETE, parts: [head(.noContent, []), .end(nil)]),
            Exchange(method: .GET, parts: [head(.notFound, [("Content-Length", "4")]), body("none"), .end(nil)]),
        ],
    ]

    func testResponsesAreWrittenAsSwiftNIOWroteThem() throws {
        for exchanges in Self.connections {
            XCTAssertEqual(try Self.written(exchanges), try Self.writtenBySwiftNIO(exchanges), "\(exchanges.map(\.parts))")
        }
    }

    /// What SwiftNIO's outbound validation refused: a name that is not a token, a value or a
    /// reason phrase with a control character. Nothing of such a head is written, nor anything
    /// after it, and the connection closes.
    func testAHeadHTTP1CannotCarryIsRefusedAndTheConnectionCloses() throws {
        let refused: [HTTPServerResponsePart] = [
            Self.head(.ok, [("X-Split", "a\r\nSet-Cookie: b=1")]),
            Self.head(.ok, [("X-Nul", "a\u{0}b")]),
            Self.head(.ok, [("Bad Name", "x")]),
            Self.head(.ok, [("X-A:", "x")]),
            Self.head(.ok, [("", "x")]),
            Self.head(.custom(code: 200, reasonPhrase: "OK\r\nX-Injected: 1"), []),
        ]
        for head in refused {
            let (channel, handler, context) = try Self.gatewayConnection()
            let written = channel.eventLoop.makePromise(of: Void.self)
            handler.send(head, answering: .GET, context: context, promise: written)
            handler.send(Self.body("after"), context: context)
            handler.send(.end(nil), context: context)
            channel.flush()
            XCTAssertThrowsError(try written.futureResult.wait(), "\(head)")
            XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "nothing written for \(head)")
            channel.embeddedEventLoop.run()
            XCTAssertFalse(channel.isActive, "the connection closed after \(head)")
            _ = try? channel.finish(acceptAlreadyClosed: true)
        }
    }

    func testAKeepAliveEndCompletesItsPromiseAfterWhatWentBefore() throws {
        let (channel, handler, context) = try Self.gatewayConnection()
        handler.send(Self.head(.ok, [("Content-Length", "2")]), answering: .GET, context: context)
        handler.send(Self.body("ok"), context: context)
        let written = channel.eventLoop.makePromise(of: Void.self)
        handler.send(.end(nil), context: context, promise: written)
        channel.flush()
        XCTAssertNoThrow(try written.futureResult.wait())
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    /// The field value check reads eight bytes at a time: every byte value, at every place of
    /// values up to 40 bytes long, is judged as the byte rule judges it.
    func testTheFieldValueCheckJudgesEveryByteAtEveryPlaceAsTheByteRule() {
        for length in 1...40 {
            for place in 0..<length {
                for byte in UInt8.min...UInt8.max {
                    var value = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    value[place] = byte
                    let judged = value.withUnsafeBufferPointer(HTTP1Reading.isFieldValue)
                    XCTAssertEqual(judged, HTTP1Reading.isFieldValueByte(byte), "byte \(byte) at \(place) of \(length)")
                    if judged != HTTP1Reading.isFieldValueByte(byte) { return }
                }
            }
        }
        XCTAssertTrue([UInt8]().withUnsafeBufferPointer(HTTP1Reading.isFieldValue))
        XCTAssertFalse(Array("0123456789\t\u{7f}".utf8).withUnsafeBufferPointer(HTTP1Reading.isFieldValue))
    }

    // MARK: - The two writers

    static let settings = GatewaySettings(
        listener: .init(address: "127.0.0.1", port: 0, eventLoops: 1),
        limits: .init(maxHeaderBytes: 8192, maxURIBytes: 1024, maxRequestBodyBytes: 1000),
        timeouts: SettingsLoader.defaultTimeouts,
        upstreamPool: SettingsLoader.defaultPool,
        forwarding: SettingsLoader.defaultForwarding,
        cells: [.init(id: "cell-a", kind: .pooled, region: "local", endpoints: [.init(host: "127.0.0.1", port: 1)])],
        defaultCell: "cell-a"
    )

    /// The pipeline `GatewayServer` gives each accepted connection, and its handler.
    static func gatewayConnection() throws -> (EmbeddedChannel, ClientConnectionHandler, ChannelHandlerContext) {
        let channel = EmbeddedChannel()
        let environment = ProxyEnvironment(
            configuration: GatewayConfiguration(settings: Self.settings, tenants: nil, files: []),
            generation: 1,
            pool: UpstreamPool(eventLoop: channel.embeddedEventLoop, settings: Self.settings.upstreamPool),
            logger: .init(label: "client-response-writer-test")
        )
        try GatewayServer.configureClientPipeline(channel.pipeline.syncOperations, environment: environment)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let context = try channel.pipeline.syncOperations.context(handlerType: ClientConnectionHandler.self)
        return (channel, try channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self), context)
    }

    /// The bytes the gateway's handler writes for the exchanges.
    static func written(_ exchanges: [Exchange]) throws -> [UInt8] {
        let (channel, handler, context) = try Self.gatewayConnection()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        for exchange in exchanges {
            for part in exchange.parts {
                if case .head = part {
                    handler.send(part, answering: exchange.method, context: context)
                } else {
                    handler.send(part, context: context)
                }
            }
        }
        channel.flush()
        return try Self.outbound(channel)
    }

    /// The bytes SwiftNIO's server pipeline writes for the exchanges, each request's head read
    /// first so that its encoder knows the method.
    static func writtenBySwiftNIO(_ exchanges: [Exchange]) throws -> [UInt8] {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
        var bytes: [UInt8] = []
        for exchange in exchanges {
            let target = exchange.method == .CONNECT ? "example.test:443" : "/"
            try channel.writeInbound(ByteBuffer(string: "\(exchange.method.rawValue) \(target) HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n"))
            while try channel.readInbound(as: HTTPServerRequestPart.self) != nil {}
            for part in exchange.parts { channel.write(part, promise: nil) }
            channel.flush()
            bytes += try Self.outbound(channel)
        }
        return bytes
    }

    static func outbound(_ channel: EmbeddedChannel) throws -> [UInt8] {
        var bytes: [UInt8] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readBytes(length: buffer.readableBytes) ?? [] }
        return bytes
    }
}
