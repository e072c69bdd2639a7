import LogCapture
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOSSL
import XCTest
@testable import GatewayConfig
@testable import ProxyEngine

/// Whole exchanges — forwarded, retried, timed out — on one `EmbeddedEventLoop`: the client
/// connection is an `EmbeddedChannel` with the pipeline `GatewayServer` builds, and every
/// upstream connection the pool opens is another `EmbeddedChannel` handed out by
/// `EmbeddedUpstreams`. Time moves only when a test advances the loop's clock.
final class ExchangeOnEmbeddedChannelTests: XCTestCase {
    private static let endpointA = GatewaySettings.Endpoint(host: "127.0.0.1", port: 9001)
    private static let endpointB = GatewaySettings.Endpoint(host: "127.0.0.1", port: 9002)

    private static func settings(endpoints: [GatewaySettings.Endpoint], fallback: [GatewaySettings.Endpoint] = [], tls: GatewaySettings.CellTLS? = nil) -> GatewaySettings {
        var timeouts = SettingsLoader.defaultTimeouts
        timeouts.upstreamConnect = .seconds(2)
        timeouts.upstreamResponse = .seconds(30)
        timeouts.requestBodyIdle = .seconds(5)
        return GatewaySettings(
            listener: .init(address: "127.0.0.1", port: 0, eventLoops: 1),
            limits: .init(maxHeaderBytes: 4096, maxURIBytes: 1024, maxRequestBodyBytes: 1 << 20),
            timeouts: timeouts,
            upstreamPool: SettingsLoader.defaultPool,
            forwarding: SettingsLoader.defaultForwarding,
            cells: [.init(id: "cell-a", kind: .pooled, region: "local", endpoints: endpoints, fallback: fallback.isEmpty ? [] : ["cell-b"], tls: tls)]
                + (fallback.isEmpty ? [] : [.init(id: "cell-b", kind: .pooled, region: "local", endpoints: fallback)]),
            defaultCell: "cell-a"
        )
    }

    private var loop: EmbeddedEventLoop!
    private var client: EmbeddedChannel!
    private var upstreams: EmbeddedUpstreams!
    private var logs: CapturedLog!
    private var environment: ProxyEnvironment!

    /// With `tls`, cell A's endpoints are `https` with that context.
    private func start(endpoints: [GatewaySettings.Endpoint] = [endpointA], fallback: [GatewaySettings.Endpoint] = [], tls: UpstreamTLSContext? = nil) throws {
        self.loop = EmbeddedEventLoop()
        self.upstreams = EmbeddedUpstreams(loop: self.loop)
        self.client = EmbeddedChannel(loop: self.loop)
        self.logs = CapturedLog()
        let logs = self.logs!
        let settings = Self.settings(endpoints: endpoints, fallback: fallback, tls: tls?.settings)
        let environment = ProxyEnvironment(
            configuration: GatewayConfiguration(settings: settings, tenants: nil, files: [], upstreamTLS: tls.map { ["cell-a": $0] } ?? [:]),
            generation: 1,
            pool: UpstreamPool(eventLoop: self.loop, settings: settings.upstreamPool, connector: self.upstreams),
            logger: logs.logger("exchange-test")
        )
        self.environment = environment
        try GatewayServer.configureClientPipeline(self.client.pipeline.syncOperations, environment: environment)
        try self.client.connect(to: SocketAddress(ipAddress: "198.51.100.7", port: 40000)).wait()
    }

    override func tearDownWithError() throws {
        _ = try self.client?.finish(acceptAlreadyClosed: true)
        for (_, upstream) in self.upstreams?.opened ?? [] { _ = try? upstream.finish(acceptAlreadyClosed: true) }
        self.client = nil
        self.upstreams = nil
        self.loop = nil
    }

    // MARK: - Forwarding

    func testARequestIsForwardedAndItsResponseRelayed() throws {
        try self.start()
        try self.client.writeInbound(ByteBuffer(string: "GET /ledger/7?x=1 HTTP/1.1\r\nHost: erp.test\r\nX_ERP_Tenant: forged\r\n\r\n"))
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        XCTAssertEqual(upstream.port, 9001)
        let forwarded = try upstream.channel.text()
        XCTAssertTrue(forwarded.hasPrefix("GET /ledger/7?x=1 HTTP/1.1\r\n"), forwarded)
        XCTAssertTrue(forwarded.lowercased().contains("x-forwarded-for: 198.51.100.7"), forwarded)
        XCTAssertFalse(forwarded.contains("X_ERP_Tenant"), forwarded)

        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        let responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [200])
        XCTAssertEqual(responses.first?.body, "ok")
        XCTAssertNotNil(responses.first?.value("x-request-id"))

        // Keep-alive both ways: the next request reuses the pooled upstream connection.
        try self.client.writeInbound(ByteBuffer(string: "GET /next HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        XCTAssertEqual(self.upstreams.opened.count, 1)
        XCTAssertTrue(try upstream.channel.text().hasPrefix("GET /next HTTP/1.1\r\n"))
    }

    /// A response read whole goes to the client as one write; a large body goes as it came; a
    /// head whose body comes with a later read is not held back for it.
    func testASmallBodyLeavesWithItsHeadInOneWriteAndAHeadIsNeverHeldForALaterRead() throws {
        try self.start()
        func writes() throws -> [String] {
            var writes: [String] = []
            while let write = try self.client.readOutbound(as: ByteBuffer.self) { writes.append(String(buffer: write)) }
            return writes
        }
        try self.client.writeInbound(ByteBuffer(string: "GET /small HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        _ = try upstream.channel.text()
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        var written = try writes()
        XCTAssertEqual(written.count, 1, "head and body in one write: \(written)")
        XCTAssertTrue(written.first?.hasPrefix("HTTP/1.1 200 OK\r\n") == true && written.first?.hasSuffix("\r\n\r\nok") == true, "\(written)")

        // A body past the limit is not copied: the head, then the body as read.
        let large = String(repeating: "x", count: ClientConnectionHandler.bodyBehindHeadLimit + 1)
        try self.client.writeInbound(ByteBuffer(string: "GET /large HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        _ = try upstream.channel.text()
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: \(large.utf8.count)\r\n\r\n\(large)"))
        written = try writes()
        XCTAssertEqual(written.count, 2, "\(written.map(\.count))")
        XCTAssertEqual(written.last, large)

        // The head's read ends before its body: the head goes out at the end of that read.
        try self.client.writeInbound(ByteBuffer(string: "GET /later HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        _ = try upstream.channel.text()
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"))
        written = try writes()
        XCTAssertEqual(written.count, 1, "\(written)")
        XCTAssertTrue(written.first?.hasSuffix("\r\n\r\n") == true, "\(written)")
        try upstream.channel.writeInbound(ByteBuffer(string: "hello"))
        XCTAssertEqual(try writes(), ["hello"])

        // A chunked body is written as before: the head alone, then each chunk with its framing.
        try self.client.writeInbound(ByteBuffer(string: "GET /chunked HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        _ = try upstream.channel.text()
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"))
        written = try writes()
        XCTAssertTrue(written.first?.hasSuffix("transfer-encoding: chunked\r\n\r\n") == true, "\(written)")
        XCTAssertEqual(written.dropFirst().joined(), "2\r\nok\r\n0\r\n\r\n")
        XCTAssertTrue(self.client.isActive)
    }

    func testAnUpstreamThatDoesNotAnswerIs504AfterTheResponseTimeout() throws {
        try self.start()
        try self.client.writeInbound(ByteBuffer(string: "GET /slow HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        self.loop.advanceTime(by: .seconds(30) - .milliseconds(1))
        XCTAssertEqual(try self.client.responses().count, 0)
        self.loop.advanceTime(by: .milliseconds(1))
        XCTAssertEqual(try self.client.responses().map(\.status), [504])
        XCTAssertFalse(upstream.channel.isActive, "the upstream may still be working on it: not reused")
        XCTAssertTrue(self.client.isActive, "the client connection stays usable")
    }

    func testARefusedConnectionIsRetriedOnTheOtherEndpoint() throws {
        try self.start(endpoints: [Self.endpointA, Self.endpointB])
        self.upstreams.refuse = [9001]
        // Whichever endpoint power of two choices picks first, the request ends on 9002.
        try self.assertAGetIsServed(byPort: 9002)
    }

    func testAConnectionAttemptThatHangsIs504AfterTheConnectTimeout() throws {
        try self.start()
        self.upstreams.hang = [9001]
        try self.client.writeInbound(ByteBuffer(string: "GET /ledger HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        self.loop.advanceTime(by: .seconds(2) - .milliseconds(1))
        XCTAssertEqual(try self.client.responses().count, 0)
        self.loop.advanceTime(by: .milliseconds(1))
        let responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [504])
        XCTAssertTrue(responses.first?.body.contains("upstream-connect-timeout") == true)
    }

    func testAStalledRequestBodyIs408AndTheUpstreamConnectionDropped() throws {
        try self.start()
        try self.client.writeInbound(ByteBuffer(string: "POST /upload HTTP/1.1\r\nHost: erp.test\r\nContent-Length: 10\r\n\r\nabc"))
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        self.loop.advanceTime(by: .seconds(3))
        try self.client.writeInbound(ByteBuffer(string: "de"))  // progress moves the deadline on
        self.loop.advanceTime(by: .seconds(4))
        XCTAssertEqual(try self.client.responses().count, 0, "4 s since the last byte, within 5 s")
        self.loop.advanceTime(by: .seconds(1))
        let responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [408])
        XCTAssertTrue(responses.first?.body.contains("request-body-timeout") == true)
        XCTAssertFalse(upstream.channel.isActive, "the half-sent request is not left on a pooled connection")
        XCTAssertFalse(self.client.isActive)
    }

    func testAnIdempotentRequestWhoseUpstreamClosesUnansweredIsRetriedElsewhere() throws {
        try self.start(endpoints: [Self.endpointA, Self.endpointB])
        try self.client.writeInbound(ByteBuffer(string: "GET /ledger HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        let first = try XCTUnwrap(self.upstreams.opened.first)
        try first.channel.close().wait()
        let second = try XCTUnwrap(self.upstreams.opened.last)
        XCTAssertNotEqual(second.port, first.port, "the retry goes to the other endpoint")
        XCTAssertTrue(try second.channel.text().hasPrefix("GET /ledger HTTP/1.1\r\n"))
        try second.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        XCTAssertEqual(try self.client.responses().map(\.status), [200])
    }

    func testARequestWithABodyWhoseUpstreamClosesUnansweredIsNotRetried() throws {
        try self.start(endpoints: [Self.endpointA, Self.endpointB])
        try self.client.writeInbound(ByteBuffer(string: "POST /ledger HTTP/1.1\r\nHost: erp.test\r\nContent-Length: 2\r\n\r\nhi"))
        let first = try XCTUnwrap(self.upstreams.opened.first)
        try first.channel.close().wait()
        XCTAssertEqual(self.upstreams.opened.count, 1, "the body may have been processed: no second attempt")
        let responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [502])
        XCTAssertTrue(responses.first?.body.contains("upstream-failed") == true)
    }

    func testWhenEveryEndpointOfTheCellRefusesTheFallbackCellServes() throws {
        try self.start(endpoints: [Self.endpointA], fallback: [Self.endpointB])
        self.upstreams.refuse = [9001]
        try self.assertAGetIsServed(byPort: 9002)
    }

    func testAnUpstreamFailingMidResponseClosesTheClientConnection() throws {
        try self.start()
        try self.client.writeInbound(ByteBuffer(string: "GET /big HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"))
        XCTAssertTrue(self.client.isActive)
        try upstream.channel.close().wait()
        XCTAssertFalse(self.client.isActive, "HTTP/1.1 has no other way to say the body is cut")
    }

    func testAnUpstreamConnectionIdleForTheIdleTimeoutIsClosedAndReuseMovesItsDeadline() throws {
        try self.start()
        let idle = TimeAmount.milliseconds(SettingsLoader.defaultPool.idleTimeout.milliseconds)
        try self.assertAGetIsServed(byPort: 9001)
        let upstream = try XCTUnwrap(self.upstreams.opened.first).channel
        self.loop.advanceTime(by: idle - .seconds(1))
        XCTAssertTrue(upstream.isActive)
        // Reused just before its time ran out: idle again from now.
        try self.client.writeInbound(ByteBuffer(string: "GET /again HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        XCTAssertEqual(self.upstreams.opened.count, 1)
        _ = try upstream.text()
        try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        XCTAssertEqual(try self.client.responses().map(\.status), [200])
        self.loop.advanceTime(by: idle - .milliseconds(1))
        XCTAssertTrue(upstream.isActive, "idle for less than the idle timeout since its last use")
        self.loop.advanceTime(by: .milliseconds(1))
        XCTAssertFalse(upstream.isActive, "idle for the idle timeout: closed")
        // The next request opens a new connection.
        try self.client.writeInbound(ByteBuffer(string: "GET /later HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        XCTAssertEqual(self.upstreams.opened.count, 2)
    }

    // MARK: - TLS upstreams

    func testConnectionsToAnHTTPSCellAreOpenedWithItsContextAndReused() throws {
        let tls = try UpstreamTLSContext(settings: .init(serverName: "cell-a.internal"))
        try self.start(tls: tls)
        try self.assertAGetIsServed(byPort: 9001)
        try self.client.writeInbound(ByteBuffer(string: "GET /again HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        XCTAssertEqual(self.upstreams.opened.count, 1, "keep-alive over TLS: the pooled connection is reused")
        XCTAssertTrue(self.upstreams.contexts.first! === tls)
    }

    func testAReloadThatChangesTheCellsTLSConnectsAnewAndOneThatKeepsItReuses() throws {
        let before = try UpstreamTLSContext(settings: .init(serverName: "cell-a.internal"))
        let after = try UpstreamTLSContext(settings: .init(serverName: "cell-a.internal", minimumVersion: .tls13))
        try self.start(tls: before)
        func install(_ context: UpstreamTLSContext) {
            let settings = Self.settings(endpoints: [Self.endpointA], tls: context.settings)
            self.environment.configuration = GatewayConfiguration(settings: settings, tenants: nil, files: [], upstreamTLS: ["cell-a": context])
        }
        func get() throws {
            try self.client.writeInbound(ByteBuffer(string: "GET /ledger HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
            let upstream = try XCTUnwrap(self.upstreams.opened.last).channel
            _ = try upstream.text()
            try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
            XCTAssertEqual(try self.client.responses().map(\.status), [200])
        }
        try get()
        install(after)
        try get()
        XCTAssertEqual(self.upstreams.opened.count, 2, "the idle connection made under the old settings is not reused")
        XCTAssertTrue(self.upstreams.contexts[1] === after)
        install(after)
        try get()
        XCTAssertEqual(self.upstreams.opened.count, 2, "settings as they were: the pooled connection is reused")

        // The connection made under the old settings closes at its idle timeout, and its pool
        // (which holds the old context) goes with it.
        XCTAssertEqual(self.environment.pool.targets.count, 2)
        let idle = TimeAmount.milliseconds(SettingsLoader.defaultPool.idleTimeout.milliseconds)
        self.loop.advanceTime(by: idle - .seconds(1))
        try get()  // keeps the new connection in use
        self.loop.advanceTime(by: .seconds(1))
        XCTAssertFalse(self.upstreams.opened[0].channel.isActive)
        XCTAssertTrue(self.upstreams.opened[1].channel.isActive)
        XCTAssertEqual(self.environment.pool.targets, [UpstreamTarget(Self.endpointA, tls: after)])
    }

    func testAFailedHandshakeIsRetriedElsewhereLikeARefusedConnection() throws {
        try self.start(endpoints: [Self.endpointA], fallback: [Self.endpointB], tls: try UpstreamTLSContext(settings: .init()))
        self.upstreams.handshakeFails = [9001: "certificate verify failed"]
        // A POST with a body: the endpoint never saw it, so even this is retried.
        try self.client.writeInbound(ByteBuffer(string: "POST /ledger HTTP/1.1\r\nHost: erp.test\r\nContent-Length: 2\r\n\r\nhi"))
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        XCTAssertEqual(upstream.port, 9002)
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        XCTAssertEqual(try self.client.responses().map(\.status), [200])
    }

    func testAFailedHandshakeWithNoRetryLeftIs502WithoutTheReasonWhichIsLogged() throws {
        try self.start(tls: try UpstreamTLSContext(settings: .init(serverName: "cell-a.internal")))
        self.upstreams.handshakeFails = [9001: "handshakeFailed(sslError([Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED]))"]
        try self.client.writeInbound(ByteBuffer(string: "GET /ledger HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        let response = try XCTUnwrap(try self.client.responses().first)
        XCTAssertEqual(response.status, 502)
        XCTAssertTrue(response.body.contains("urn:erp-gateway:problem:upstream-tls-failed"), response.body)
        for secret in ["CERTIFICATE_VERIFY_FAILED", "cell-a.internal", "127.0.0.1", "SSL"] {
            XCTAssertFalse(response.body.contains(secret), "the answer says nothing of \(secret): \(response.body)")
        }
        XCTAssertTrue(self.client.isActive, "the client connection stays usable")
        let warning = try XCTUnwrap(self.logs.lines.first { $0.hasPrefix("TLS with upstream https://127.0.0.1:9001 of cell cell-a failed") }, "\(self.logs.lines)")
        XCTAssertTrue(warning.contains("CERTIFICATE_VERIFY_FAILED") && warning.contains("server-name=cell-a.internal"), warning)
    }

    func testATLSRefusalAfterTheHandshakeIs502AndRetriedOnlyLikeAConnectionLostBeforeTheAnswer() throws {
        // TLS 1.3: a missing client certificate is refused after the client's side of the
        // handshake, as an alert on the first read.
        try self.start(endpoints: [Self.endpointA, Self.endpointB], tls: try UpstreamTLSContext(settings: .init()))
        try self.client.writeInbound(ByteBuffer(string: "POST /ledger HTTP/1.1\r\nHost: erp.test\r\nContent-Length: 2\r\n\r\nhi"))
        let first = try XCTUnwrap(self.upstreams.opened.first)
        first.channel.pipeline.fireErrorCaught(BoringSSLError.sslError([]))
        XCTAssertEqual(self.upstreams.opened.count, 1, "the request may have reached the backend's TLS layer: a POST is not sent again")
        let responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [502])
        XCTAssertTrue(responses.first?.body.contains("upstream-tls-failed") == true, responses.first?.body ?? "")
        XCTAssertTrue(self.logs.lines.contains { $0.hasPrefix("TLS with upstream") }, "\(self.logs.lines)")

        // A GET is retried on the other endpoint.
        try self.client.writeInbound(ByteBuffer(string: "GET /ledger HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        let second = try XCTUnwrap(self.upstreams.opened.last)
        second.channel.pipeline.fireErrorCaught(BoringSSLError.sslError([]))
        let third = try XCTUnwrap(self.upstreams.opened.last)
        XCTAssertNotEqual(third.port, second.port)
        try third.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        XCTAssertEqual(try self.client.responses().map(\.status), [200])
    }

    func testAnUpstreamGoingAwayWithoutTLSClosingIsNotATLSFailure() throws {
        try self.start(tls: try UpstreamTLSContext(settings: .init()))
        try self.client.writeInbound(ByteBuffer(string: "POST /ledger HTTP/1.1\r\nHost: erp.test\r\nContent-Length: 2\r\n\r\nhi"))
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        upstream.channel.pipeline.fireErrorCaught(NIOSSLError.uncleanShutdown)
        let responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [502])
        XCTAssertTrue(responses.first?.body.contains("upstream-failed") == true, responses.first?.body ?? "")
    }

    // MARK: - Helpers

    /// A GET reaches the first upstream connection opened, on `port`, and its 200 is relayed.
    private func assertAGetIsServed(byPort port: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        try self.client.writeInbound(ByteBuffer(string: "GET /ledger HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        let upstream = try XCTUnwrap(self.upstreams.opened.first, file: file, line: line)
        XCTAssertEqual(upstream.port, port, file: file, line: line)
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
        XCTAssertEqual(try self.client.responses().map(\.status), [200], file: file, line: line)
    }
}

/// Upstream connections as `EmbeddedChannel`s on the test's loop: accepted (the test reads what
/// the gateway wrote and writes the upstream's answer), refused, or left hanging until the
/// connect timeout.
final class EmbeddedUpstreams: UpstreamConnector {
    let loop: EmbeddedEventLoop
    /// Ports whose connection attempts are refused.
    var refuse: Set<Int> = []
    /// Ports whose connection attempts never complete.
    var hang: Set<Int> = []
    /// Ports whose TLS handshake fails, with this reason.
    var handshakeFails: [Int: String] = [:]
    /// The connections opened, in order.
    private(set) var opened: [(port: Int, channel: EmbeddedChannel)] = []
    /// The TLS context each connection was opened with, in order.
    private(set) var contexts: [UpstreamTLSContext?] = []

    init(loop: EmbeddedEventLoop) {
        self.loop = loop
    }

    func connect(
        to target: UpstreamTarget, timeout: TimeAmount, on eventLoop: any EventLoop,
        initialize: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        let endpoint = target.endpoint
        if self.refuse.contains(endpoint.port) {
            return eventLoop.makeFailedFuture(IOError(errnoCode: ECONNREFUSED, reason: "connect"))
        }
        if let reason = self.handshakeFails[endpoint.port] {
            return eventLoop.makeFailedFuture(UpstreamTLSHandshakeError(HandshakeRefused(reason: reason)))
        }
        if self.hang.contains(endpoint.port) {
            let promise = eventLoop.makePromise(of: (any Channel).self)
            eventLoop.scheduleTask(in: timeout) { promise.fail(ChannelError.connectTimeout(timeout)) }
            return promise.futureResult
        }
        let channel = EmbeddedChannel(loop: self.loop)
        do {
            try initialize(channel)
            try channel.connect(to: SocketAddress(ipAddress: endpoint.host, port: endpoint.port)).wait()
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        self.opened.append((endpoint.port, channel))
        self.contexts.append(target.tls)
        return eventLoop.makeSucceededFuture(channel)
    }

    struct HandshakeRefused: Error, CustomStringConvertible {
        let reason: String
        var description: String { self.reason }
    }
}
