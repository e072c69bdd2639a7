import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/2 connection's life through the real binary: h2c told from HTTP/1.1 on one port, the
/// preface deadline, GOAWAY when idle, draining on shutdown, and what its streams' answers carry.
final class HTTP2ConnectionTests: HTTP2TestCase {
    typealias Code = RawHTTP2Connection.ErrorCode

    func testHTTP2AndHTTP1ShareThePlainListener() async throws {
        try await self.startHTTP2Gateway()
        let http2 = try self.connect()
        try self.assertServed(on: http2, "/over-h2")
        // HTTP/1.1 on the same port, keep-alive and all.
        let http1 = try RawHTTPConnection(port: self.port)
        for index in 0..<2 {
            try http1.send(requestText("GET", "/over-h1/\(index)"))
            XCTAssertEqual(try SeenRequest(http1.readResponse()).uri, "/over-h1/\(index)")
        }
        // A request line that starts like the preface is still HTTP/1.1 once it differs.
        let lookalike = try request(port: self.port, "PRIX", "/x")
        try self.assertProblem(lookalike, status: 400, slug: "malformed-request")
    }

    func testWithoutCleartextThePrefaceIsNotHTTP2() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        try client.send(RawHTTP2Connection.preface + RawHTTP2Connection.settingsFrame([]))
        try self.assertProblem(try client.readResponse(), status: 400, slug: "malformed-request")
    }

    func testAClientThatSendsNoSettingsIsClosed() async throws {
        try await self.startHTTP2Gateway(["timeouts": ["headerRead": "300ms"]])
        let silent = try RawHTTP2Connection(port: self.port)
        silent.answersSettings = false
        try silent.send(RawHTTP2Connection.preface)
        let (frames, closed) = silent.readUntilClosed(seconds: 5)
        XCTAssertTrue(closed, "closed after timeouts.headerRead")
        XCTAssertEqual(frames.first?.kind, .settings, "the gateway spoke first, as HTTP/2 servers do")
        XCTAssertTrue(self.gateway.waitForLog("no preface and SETTINGS within timeouts.headerRead"), self.gateway.log)
    }

    /// Idle for `timeouts.keepAliveIdle`: GOAWAY naming every stream and a PING; once the client
    /// acknowledges, GOAWAY naming the last stream it opened, and the close.
    func testAnIdleConnectionIsClosedWithGoAway() async throws {
        try await self.startHTTP2Gateway(["timeouts": ["keepAliveIdle": "500ms"]])
        let client = try self.connect()
        try self.assertServed(on: client)
        var goAways: [(last: UInt32, code: UInt32)] = []
        let (frames, closed) = client.readUntilClosed(seconds: 5)
        for frame in frames where frame.kind == .goAway {
            goAways.append((RawHTTP2Connection.Frame.uint32(frame.payload, at: 0), frame.errorCode ?? 99))
        }
        XCTAssertTrue(closed)
        XCTAssertEqual(goAways.map(\.last), [0x7fff_ffff, 1], "first every stream, then up to the last one opened")
        XCTAssertEqual(goAways.map(\.code), [Code.noError, Code.noError])
    }

    /// A client that never acknowledges the closing PING is closed `timeouts.headerRead` later.
    func testAnIdleClientThatIgnoresTheClosingPingIsClosedAllTheSame() async throws {
        try await self.startHTTP2Gateway(["timeouts": ["keepAliveIdle": "300ms", "headerRead": "500ms"]])
        let client = try self.connect()
        client.answersPings = false
        let (frames, closed) = client.readUntilClosed(seconds: 5)
        XCTAssertTrue(closed)
        XCTAssertEqual(frames.filter { $0.kind == .goAway }.count, 1)
        XCTAssertTrue(self.gateway.waitForLog("was not acknowledged"), self.gateway.log)
    }

    /// SIGTERM while a stream is in flight: GOAWAY, the stream's answer completes, the connection
    /// closes and the process exits cleanly.
    func testShutdownLetsOpenStreamsFinish() async throws {
        try await self.startHTTP2Gateway()
        let client = try self.connect()
        let stream = try client.sendRequest("GET", "/delay/1000")
        XCTAssertTrue(self.eventually(5) { self.backends[0].openConnections == 1 }, "the request reached the backend")
        self.gateway.signal(SIGTERM)
        let response = try client.readResponse(stream)
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(client.goAway?.code, Code.noError, "GOAWAY came first")
        XCTAssertTrue(client.readUntilClosed(seconds: 10).closed)
        XCTAssertEqual(self.gateway.stop(), 0)
    }

    /// HTTP/2 answers carry no connection-specific fields, even when the upstream's do.
    /// WebSockets are not offered over HTTP/2 (tokens.md, "WebSockets"): the SETTINGS carry no
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL, an extended CONNECT (RFC 8441) has its stream reset
    /// (PROTOCOL_ERROR), a plain CONNECT too (no tunnels), and the connection serves on. The
    /// plain CONNECT stopped a debug build on NIOHTTP2's assertion before its stream's close
    /// was put off by a tick.
    func testWebSocketsOverHTTP2AreNotOfferedAndAnAttemptIsRefusedClearly() async throws {
        try await self.startHTTP2Gateway()
        let client = try self.connect()
        XCTAssertNil(client.serverSettings[0x8], "SETTINGS_ENABLE_CONNECT_PROTOCOL is not advertised")

        let extended = client.newStream()
        try client.send(RawHTTP2Connection.frame(
            .headers, flags: RawHTTP2Connection.Flag.endHeaders, stream: extended,
            RawHTTP2Connection.headerBlock([
                (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"), (":authority", "gateway.test"), (":path", "/v1/live"),
                ("sec-websocket-version", "13"),
            ])
        ))
        XCTAssertThrowsError(try client.readResponse(extended)) { error in
            guard case RawHTTP2Connection.Failure.reset(_, let code) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(code, Code.protocolError)
        }

        let plain = client.newStream()
        try client.send(RawHTTP2Connection.frame(
            .headers, flags: RawHTTP2Connection.Flag.endHeaders | RawHTTP2Connection.Flag.endStream, stream: plain,
            RawHTTP2Connection.headerBlock([(":method", "CONNECT"), (":authority", "backend.test:443")])
        ))
        XCTAssertThrowsError(try client.readResponse(plain)) { error in
            guard case RawHTTP2Connection.Failure.reset = error else { return XCTFail("\(error)") }
        }
        try self.assertServed(on: client)
        XCTAssertFalse(self.gateway.log.contains("Assertion failed"), self.gateway.log)
    }

    func testAnswersCarryNoConnectionSpecificFields() async throws {
        try await self.startHTTP2Gateway()
        let client = try self.connect()
        let stream = try client.sendRequest("GET", "/close")
        let response = try client.readResponse(stream)
        XCTAssertEqual(response.status, 200)
        for field in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"] {
            XCTAssertNil(response.header(field), "\(field) in an HTTP/2 answer")
        }
        XCTAssertNotNil(response.header("x-request-id"))
        // The upstream closed its connection after answering; the client's connection goes on.
        try self.assertServed(on: client)
    }
}
