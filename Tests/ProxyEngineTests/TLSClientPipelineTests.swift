import Logging
import NIOCore
import NIOEmbedded
import NIOTLS
import XCTest
@testable import GatewayConfig
@testable import ProxyEngine

/// What a TLS connection adds around the client connection handler, on an `EmbeddedChannel`
/// with a virtual clock: the handshake's deadline, the header-read time counted from the
/// accept, and the choice of handlers by the negotiated protocol. The handshake itself is the
/// real binary's (`TLSListenerTests`).
final class TLSClientPipelineTests: XCTestCase {
    private static let settings = GatewaySettings(
        listener: .init(address: "127.0.0.1", port: 0, eventLoops: 1),
        limits: SettingsLoader.defaultLimits,
        timeouts: SettingsLoader.defaultTimeouts,
        upstreamPool: SettingsLoader.defaultPool,
        forwarding: SettingsLoader.defaultForwarding,
        cells: [.init(id: "cell-a", kind: .pooled, region: "local", endpoints: [.init(host: "127.0.0.1", port: 1)])],
        defaultCell: "cell-a"
    )
    private static var headerRead: TimeAmount { .milliseconds(Self.settings.timeouts.headerRead.milliseconds) }

    private var channel: EmbeddedChannel!

    override func setUp() {
        self.channel = EmbeddedChannel()
    }

    override func tearDownWithError() throws {
        _ = try self.channel.finish(acceptAlreadyClosed: true)
    }

    private func environment() -> ProxyEnvironment {
        ProxyEnvironment(
            configuration: GatewayConfiguration(settings: Self.settings, tenants: nil, files: []), generation: 1,
            pool: UpstreamPool(eventLoop: self.channel.embeddedEventLoop, settings: Self.settings.upstreamPool),
            logger: Logger(label: "tls-pipeline-test") { _ in SwiftLogNoOpLogHandler() }
        )
    }

    private func connect() throws {
        try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    private func answered() throws -> String {
        var text = ""
        while let buffer = try self.channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    // MARK: - The handshake's deadline

    func testAHandshakeThatDoesNotFinishInTimeIsClosed() throws {
        let loop = self.channel.embeddedEventLoop
        try self.channel.pipeline.syncOperations.addHandler(TLSHandshakeDeadline(deadline: loop.now + Self.headerRead))
        try self.connect()
        loop.advanceTime(by: Self.headerRead - .milliseconds(1))
        XCTAssertTrue(self.channel.isActive)
        loop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(self.channel.isActive, "closed at the deadline, without a word: there is no TLS to speak it in")
        XCTAssertEqual(try self.answered(), "")
    }

    func testAConnectionStillInItsHandshakeClosesAtOnceWhenTheServerDrains() throws {
        let loop = self.channel.embeddedEventLoop
        try self.channel.pipeline.syncOperations.addHandler(TLSHandshakeDeadline(deadline: loop.now + Self.headerRead))
        try self.connect()
        self.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        XCTAssertFalse(self.channel.isActive)
    }

    func testTheDeadlineGoesWithItsHandler() throws {
        let loop = self.channel.embeddedEventLoop
        let deadline = TLSHandshakeDeadline(deadline: loop.now + Self.headerRead)
        try self.channel.pipeline.syncOperations.addHandler(deadline)
        try self.connect()
        try self.channel.pipeline.syncOperations.removeHandler(deadline).wait()
        loop.advanceTime(by: Self.headerRead + Self.headerRead)
        XCTAssertTrue(self.channel.isActive)
    }

    // MARK: - After the handshake

    func testTheFirstRequestsHeaderReadTimeCountsFromTheAccept() throws {
        let loop = self.channel.embeddedEventLoop
        try self.connect()
        let acceptedAt = loop.now
        // The handshake took 40 % of the header-read time.
        loop.advanceTime(by: .nanoseconds(Self.headerRead.nanoseconds * 2 / 5))
        try GatewayServer.configureNegotiatedProtocol(.negotiated("http/1.1"), channel: self.channel, environment: self.environment(), acceptedAt: acceptedAt).wait()
        try self.channel.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: erp.example\r\n"))
        loop.advanceTime(by: .nanoseconds(Self.headerRead.nanoseconds * 3 / 5) - .milliseconds(1))
        XCTAssertEqual(try self.answered(), "")
        loop.advanceTime(by: .milliseconds(1))
        XCTAssertTrue(try self.answered().hasPrefix("HTTP/1.1 408 "), "408 at accept + headerRead, not headerRead after the handshake")
    }

    func testHTTP11OrNoNegotiationGetsTheHTTP11Handlers() throws {
        for result in [ALPNResult.negotiated("http/1.1"), .fallback] {
            let channel = EmbeddedChannel()
            self.channel = channel
            try self.connect()
            try GatewayServer.configureNegotiatedProtocol(result, channel: channel, environment: self.environment(), acceptedAt: channel.embeddedEventLoop.now).wait()
            XCTAssertNoThrow(try channel.pipeline.syncOperations.handler(type: ClientConnectionHandler.self), "\(result)")
            try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"))
            XCTAssertTrue(try self.answered().hasPrefix("HTTP/1.1 400 "), "answered as HTTP/1.1 (no Host)")
            _ = try channel.finish(acceptAlreadyClosed: true)
        }
    }

    func testAProtocolThatWasNotOfferedClosesTheConnection() throws {
        try self.connect()
        _ = GatewayServer.configureNegotiatedProtocol(.negotiated("spdy/3"), channel: self.channel, environment: self.environment(), acceptedAt: self.channel.embeddedEventLoop.now)
        XCTAssertFalse(self.channel.isActive)
    }
}
