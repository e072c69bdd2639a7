import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import XCTest
@testable import GatewayConfig
@testable import ProxyEngine

/// One HTTP/2 stream's pipeline (`GatewayServer.configureHTTP2Stream`: NIOHTTP2's codec, then
/// the client connection handler) on an `EmbeddedChannel`, fed the frames NIOHTTP2's multiplexer
/// would hand it, with upstreams as `EmbeddedChannel`s too and a virtual clock.
final class HTTP2StreamOnEmbeddedChannelTests: XCTestCase {
    private final class Recorder: RequestObserver {
        var records: [RequestRecord] = []
        func requestEnded(_ record: RequestRecord) { self.records.append(record) }
    }

    private static let endpoint = GatewaySettings.Endpoint(host: "127.0.0.1", port: 9001)
    private var loop: EmbeddedEventLoop!
    private var stream: EmbeddedChannel!
    private var upstreams: EmbeddedUpstreams!
    private var recorder: Recorder!
    private var environment: ProxyEnvironment!
    private var connection: HTTP2Connection!

    override func setUpWithError() throws {
        self.loop = EmbeddedEventLoop()
        self.upstreams = EmbeddedUpstreams(loop: self.loop)
        self.stream = EmbeddedChannel(loop: self.loop)
        self.recorder = Recorder()
        var timeouts = SettingsLoader.defaultTimeouts
        timeouts.keepAliveIdle = .seconds(5)
        timeouts.responseBodyIdle = .seconds(20)
        let settings = GatewaySettings(
            listener: .init(address: "127.0.0.1", port: 0, eventLoops: 1),
            limits: .init(maxHeaderBytes: 4096, maxURIBytes: 1024, maxRequestBodyBytes: 1 << 20),
            timeouts: timeouts, upstreamPool: SettingsLoader.defaultPool, forwarding: SettingsLoader.defaultForwarding,
            cells: [.init(id: "cell-a", kind: .pooled, region: "local", endpoints: [Self.endpoint])], defaultCell: "cell-a"
        )
        self.environment = ProxyEnvironment(
            configuration: GatewayConfiguration(settings: settings, tenants: nil, files: []), generation: 1,
            pool: UpstreamPool(eventLoop: self.loop, settings: settings.upstreamPool, connector: self.upstreams),
            logger: Logger(label: "h2-stream-test") { _ in SwiftLogNoOpLogHandler() }, observer: self.recorder
        )
        self.connection = HTTP2Connection()
        self.stream = try self.openStream()
    }

    /// A stream of the test's connection, as NIOHTTP2's multiplexer makes one.
    private func openStream() throws -> EmbeddedChannel {
        let stream = EmbeddedChannel(loop: self.loop)
        try GatewayServer.configureHTTP2Stream(stream.pipeline.syncOperations, environment: self.environment, transport: .tls(acceptedAt: .now()), connection: self.connection)
        try stream.connect(to: SocketAddress(ipAddress: "198.51.100.7", port: 40000)).wait()
        return stream
    }

    override func tearDownWithError() throws {
        _ = try self.stream?.finish(acceptAlreadyClosed: true)
        for (_, upstream) in self.upstreams?.opened ?? [] { _ = try? upstream.finish(acceptAlreadyClosed: true) }
    }

    private func headers(_ method: String, _ path: String, _ extra: [(String, String)] = [], endStream: Bool) throws {
        let block = HPACKHeaders([(":method", method), (":scheme", "https"), (":authority", "erp.test"), (":path", path)] + extra)
        try self.stream.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: block, endStream: endStream)))
    }

    private func data(_ text: String, endStream: Bool) throws {
        try self.stream.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(string: text)), endStream: endStream)))
    }

    /// What the stream wrote: the answer's header blocks and its body, and whether it ended.
    private func answer() throws -> (headers: [HPACKHeaders], body: String, ended: Bool) {
        var headers: [HPACKHeaders] = []
        var body = ""
        var ended = false
        while let payload = try self.stream.readOutbound(as: HTTP2Frame.FramePayload.self) {
            switch payload {
            case .headers(let block):
                headers.append(block.headers)
                ended = ended || block.endStream
            case .data(let data):
                if case .byteBuffer(let buffer) = data.data { body += String(buffer: buffer) }
                ended = ended || data.endStream
            default:
                break
            }
        }
        return (headers, body, ended)
    }

    func testAStreamsOneRequestIsForwardedAndItsAnswerEndsTheStream() throws {
        try self.headers("GET", "/ledger/7", endStream: true)
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        let forwarded = try upstream.channel.text()
        XCTAssertTrue(forwarded.hasPrefix("GET /ledger/7 HTTP/1.1\r\n"), "HTTP/1.1 upstream: \(forwarded)")
        XCTAssertTrue(forwarded.lowercased().contains("x-forwarded-proto: https"), "the connection's scheme")
        XCTAssertFalse(forwarded.lowercased().contains("transfer-encoding"), "no body, no framing")
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nok"))
        let answer = try self.answer()
        XCTAssertEqual(answer.headers.first?.first(name: ":status"), "200")
        XCTAssertEqual(answer.body, "ok")
        XCTAssertTrue(answer.ended, "END_STREAM")
        for field in ["connection", "keep-alive"] { XCTAssertNil(answer.headers.first?.first(name: field), field) }
        XCTAssertEqual(self.recorder.records.map(\.outcome), [.relayed])
        XCTAssertTrue(upstream.channel.isActive, "the upstream connection goes back to the pool")

        // Nothing more is asked of a stream: no keep-alive wait closes it, only its last frames
        // are waited for, up to timeouts.responseBodyIdle.
        self.loop.advanceTime(by: .seconds(10))
        XCTAssertTrue(self.stream.isActive)
        self.loop.advanceTime(by: .seconds(10))
        XCTAssertFalse(self.stream.isActive)
        XCTAssertEqual(self.recorder.records.count, 1)
    }

    func testAGetWithDataFramesIsForwardedChunked() throws {
        try self.headers("GET", "/search", endStream: false)
        try self.data("{\"q\":1}", endStream: true)
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        let forwarded = try upstream.channel.text().lowercased()
        XCTAssertTrue(forwarded.contains("transfer-encoding: chunked\r\n"), forwarded)
        XCTAssertTrue(forwarded.contains("7\r\n{\"q\":1}\r\n0\r\n\r\n"), "the body framed: \(forwarded)")
    }

    func testAHeadAloneInItsReadWaitsNoLongerThanTheRead() throws {
        // HEADERS without END_STREAM and nothing else in the read: a body follows. (Fired by
        // hand: `writeInbound` would end the read at once.)
        let block = HPACKHeaders([(":method", "DELETE"), (":scheme", "https"), (":authority", "erp.test"), (":path", "/ledger/7")])
        self.stream.pipeline.fireChannelRead(HTTP2Frame.FramePayload.headers(.init(headers: block, endStream: false)))
        XCTAssertTrue(self.upstreams.opened.isEmpty, "the head waits for the end of the read")
        self.stream.pipeline.fireChannelReadComplete()
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        XCTAssertTrue(try upstream.channel.text().lowercased().contains("transfer-encoding: chunked"))
    }

    /// The client takes none of the response (its window stays shut, so the stream is not
    /// writable): cut after timeouts.responseBodyIdle, the upstream connection dropped.
    func testAStalledResponseIsCutAndItsUpstreamDropped() throws {
        try self.headers("GET", "/bytes", endStream: true)
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        _ = try upstream.channel.text()
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + String(repeating: "x", count: 1000)))
        self.stream.isWritable = false
        self.stream.pipeline.fireChannelWritabilityChanged()
        self.loop.advanceTime(by: .seconds(19))
        XCTAssertTrue(self.stream.isActive)
        self.loop.advanceTime(by: .seconds(1))
        XCTAssertFalse(self.stream.isActive, "the stream is reset")
        XCTAssertFalse(upstream.channel.isActive, "the upstream connection, mid-response, is closed")
        XCTAssertEqual(self.recorder.records.map(\.outcome), [.clientClosed])
    }

    func testAStreamThatCatchesUpIsNotCut() throws {
        try self.headers("GET", "/bytes", endStream: true)
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"))
        self.stream.isWritable = false
        self.stream.pipeline.fireChannelWritabilityChanged()
        self.loop.advanceTime(by: .seconds(15))
        self.stream.isWritable = true
        self.stream.pipeline.fireChannelWritabilityChanged()
        self.loop.advanceTime(by: .seconds(15))
        XCTAssertTrue(self.stream.isActive)
        try upstream.channel.writeInbound(ByteBuffer(string: "cd"))
        XCTAssertEqual(try self.answer().body, "abcd")
        XCTAssertEqual(self.recorder.records.map(\.outcome), [.relayed])
    }

    /// Shutdown reaches every stream; each finishes its request as if nothing happened (the
    /// connection's GOAWAY does the draining) and its answer asks for no close.
    func testShutdownLetsAStreamFinish() throws {
        try self.headers("GET", "/ledger", endStream: true)
        self.stream.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        XCTAssertTrue(self.stream.isActive)
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        let answer = try self.answer()
        XCTAssertEqual(answer.body, "ok")
        XCTAssertTrue(answer.ended)
        XCTAssertTrue(upstream.channel.isActive, "the upstream connection is kept")
    }

    /// Streams opened while their connection pauses after quota refusals in a row wait for the
    /// pause (AdmissionOnEmbeddedChannelTests makes the refusals).
    func testAStreamOpenedWhileItsConnectionPausesWaits() throws {
        self.connection.pausedUntil = self.loop.now + .milliseconds(500)
        self.stream = try self.openStream()
        try self.headers("GET", "/ledger", endStream: true)
        self.loop.advanceTime(by: .milliseconds(499))
        XCTAssertTrue(self.upstreams.opened.isEmpty, "held for the pause")
        self.loop.advanceTime(by: .milliseconds(1))
        XCTAssertEqual(self.upstreams.opened.count, 1, "served when it is over")
    }

    func testARefusalIsAProblemOnTheStream() throws {
        try self.headers("CONNECT", "/", endStream: true)
        let answer = try self.answer()
        XCTAssertEqual(answer.headers.first?.first(name: ":status"), "501")
        XCTAssertEqual(answer.headers.first?.first(name: "content-type"), "application/problem+json")
        XCTAssertNil(answer.headers.first?.first(name: "connection"))
        XCTAssertTrue(answer.ended)
        XCTAssertTrue(self.upstreams.opened.isEmpty)
    }
}
