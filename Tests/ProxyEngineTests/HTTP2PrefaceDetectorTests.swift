import Logging
import NIOCore
import NIOEmbedded
import XCTest
@testable import GatewayConfig
@testable import ProxyEngine

/// h2c with prior knowledge: the first bytes decide between HTTP/1.1 and HTTP/2.
final class HTTP2PrefaceDetectorTests: XCTestCase {
    private func verdict(_ text: String) -> HTTP2PrefaceDetector.Verdict {
        HTTP2PrefaceDetector.classify(ByteBuffer(string: text).readableBytesView)
    }

    func testTheFirstBytesDecide() {
        XCTAssertEqual(self.verdict("GET / HTTP/1.1\r\n"), .http1)
        XCTAssertEqual(self.verdict("P"), .undecided)
        XCTAssertEqual(self.verdict("PRI * HTTP/2.0\r\n"), .undecided)
        XCTAssertEqual(self.verdict("PRIX / HTTP/1.1\r\n"), .http1)
        XCTAssertEqual(self.verdict("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), .http2)
        XCTAssertEqual(self.verdict("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\u{4}"), .http2, "frames follow the preface")
    }

    private var loop: EmbeddedEventLoop!
    private var channel: EmbeddedChannel!

    private func start(cleartext: Bool) throws {
        self.loop = EmbeddedEventLoop()
        self.channel = EmbeddedChannel(loop: self.loop)
        var listener = GatewaySettings.Listener(address: "127.0.0.1", port: 0, eventLoops: 1)
        listener.http2.cleartext = cleartext
        let settings = GatewaySettings(
            listener: listener, limits: SettingsLoader.defaultLimits, timeouts: SettingsLoader.defaultTimeouts, upstreamPool: SettingsLoader.defaultPool,
            forwarding: SettingsLoader.defaultForwarding,
            cells: [.init(id: "cell-a", kind: .pooled, region: "local", endpoints: [.init(host: "127.0.0.1", port: 9001)])], defaultCell: "cell-a"
        )
        let environment = ProxyEnvironment(
            configuration: GatewayConfiguration(settings: settings, tenants: nil, files: []), generation: 1,
            pool: UpstreamPool(eventLoop: self.loop, settings: settings.upstreamPool, connector: EmbeddedUpstreams(loop: self.loop)),
            logger: Logger(label: "h2c-test") { _ in SwiftLogNoOpLogHandler() }
        )
        try GatewayServer.configureClientPipeline(self.channel.pipeline.syncOperations, environment: environment)
        try self.channel.connect(to: SocketAddress(ipAddress: "198.51.100.7", port: 40000)).wait()
    }

    override func tearDownWithError() throws {
        _ = try self.channel?.finish(acceptAlreadyClosed: true)
    }

    /// The preface, then the client's SETTINGS: the HTTP/1.1 handlers leave, and the gateway
    /// answers in HTTP/2 — its own SETTINGS, then the acknowledgement of the client's.
    func testThePrefaceTurnsTheConnectionIntoHTTP2() throws {
        try self.start(cleartext: true)
        try self.channel.writeInbound(ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
        try self.channel.writeInbound(ByteBuffer(bytes: [0, 0, 0, 4, 0, 0, 0, 0, 0]))
        self.loop.run()
        XCTAssertThrowsError(try self.channel.pipeline.syncOperations.context(handlerType: HTTP2PrefaceDetector.self), "the detector left")
        XCTAssertThrowsError(try self.channel.pipeline.syncOperations.context(handlerType: ClientConnectionHandler.self), "HTTP/1.1 left")
        var written = ByteBuffer()
        while let chunk = try self.channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(var buffer) = chunk { written.writeBuffer(&buffer) }
        }
        let frameTypes = Self.frameTypes(written)
        XCTAssertEqual(frameTypes.first, 4, "SETTINGS first")
        XCTAssertTrue(frameTypes.dropFirst().contains(4), "and the acknowledgement of the client's")
    }

    func testHTTP1IsServedAsBeforeAndTheDetectorLeaves() throws {
        try self.start(cleartext: true)
        try self.channel.writeInbound(ByteBuffer(string: "PRIX / HTTP/1.1\r\nHost: x\r\n\r\n"))
        self.loop.run()
        XCTAssertThrowsError(try self.channel.pipeline.syncOperations.context(handlerType: HTTP2PrefaceDetector.self))
        XCTAssertTrue(try self.channel.text().hasPrefix("HTTP/1.1 400"), "the HTTP/1.1 handlers answered")
    }

    func testWithoutCleartextThereIsNoDetector() throws {
        try self.start(cleartext: false)
        XCTAssertThrowsError(try self.channel.pipeline.syncOperations.context(handlerType: HTTP2PrefaceDetector.self))
    }

    private static func frameTypes(_ buffer: ByteBuffer) -> [UInt8] {
        var buffer = buffer
        var types: [UInt8] = []
        while buffer.readableBytes >= 9, let header = buffer.readBytes(length: 9) {
            let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
            types.append(header[3])
            guard buffer.readableBytes >= length else { break }
            buffer.moveReaderIndex(forwardBy: length)
        }
        return types
    }
}
