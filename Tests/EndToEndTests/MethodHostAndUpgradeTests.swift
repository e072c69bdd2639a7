import XCTest

/// Requests the gateway must not forward as they are: a tunnel (CONNECT), methods nobody
/// declared, a Host that is missing or repeated, a WebSocket handshake on a route not marked for
/// WebSockets, and whatever is pipelined behind a request asking to switch protocols. Each is
/// answered with a framed problem, or the connection closes.
final class MethodHostAndUpgradeTests: GatewayTestCase {
    /// Answered with `slug`, framed by Content-Length, `Connection: close`, the connection
    /// closed, and nothing forwarded.
    private func assertRefusedAndClosed(
        _ raw: String, status: Int, slug: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let before = self.backends[0].statistics.requests
        let client = try RawHTTPConnection(port: self.port, receiveTimeout: 5)
        try client.send(raw)
        let response = try client.readResponse()
        try self.assertProblem(response, status: status, slug: slug, file: file, line: line)
        XCTAssertEqual(response.header("content-length"), String(response.body.count), "framed", file: file, line: line)
        XCTAssertEqual(response.header("connection"), "close", file: file, line: line)
        XCTAssertTrue(client.waitForClose(seconds: 5), "the connection closes at once", file: file, line: line)
        XCTAssertEqual(self.backends[0].statistics.requests, before, "nothing is forwarded", file: file, line: line)
    }

    func testConnectWithABodyIsRefusedAndHoldsNothing() async throws {
        try await self.startGateway()
        for raw in [
            "CONNECT /ledger HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 7\r\n\r\npayload",
            "CONNECT backend.test:443 HTTP/1.1\r\nHost: backend.test:443\r\n\r\n",
        ] {
            try assertConnectRefused(raw, port: self.port)
        }
        XCTAssertEqual(self.backends[0].statistics.requests, 0, "nothing is forwarded")
        XCTAssertEqual(self.backends[0].statistics.connectionsAccepted, 0, "no upstream connection was opened")
        // The endpoint was not blamed: the next request goes through at once.
        XCTAssertEqual(try request(port: self.port, "GET", "/ledger").status, 200)
    }

    func testMethodsNoRouteNamesAreRefused() async throws {
        try await self.startGateway()
        for method in ["PROPFIND", "TRACE", "MKCOL"] {
            try self.assertRefusedAndClosed(requestText(method, "/ledger"), status: 501, slug: "method-not-implemented")
        }
        // Methods the HTTP parser does not know at all are malformed requests.
        try self.assertRefusedAndClosed(requestText("BREW", "/ledger"), status: 400, slug: "malformed-request")
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            XCTAssertEqual(try request(port: self.port, method, "/ledger").status, 200, method)
        }
    }

    func testHTTP10WithoutHostIsRefused() async throws {
        try await self.startGateway()
        try self.assertRefusedAndClosed("GET /ledger HTTP/1.0\r\n\r\n", status: 400, slug: "malformed-request")
        let withHost = try RawHTTPConnection(port: self.port)
        try withHost.send("GET /ledger HTTP/1.0\r\nHost: gateway.test\r\n\r\n")
        let seen = try SeenRequest(try withHost.readResponse())
        XCTAssertEqual(seen.values("host"), ["gateway.test"])
    }

    func testRepeatedHostIsRefusedEmptyOrNot() async throws {
        try await self.startGateway()
        for hosts in [["gateway.test", ""], ["", "gateway.test"], ["gateway.test", "gateway.test"], ["gateway.test, other.test"]] {
            let fields = hosts.map { "Host: \($0)\r\n" }.joined()
            try self.assertRefusedAndClosed("GET /ledger HTTP/1.1\r\n\(fields)\r\n", status: 400, slug: "malformed-request")
        }
    }

    func testARequestPipelinedBehindAnUpgradeRequestIsNotLeftHanging() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port, receiveTimeout: 5)
        try client.send(requestText("GET", "/ledger", headers: [("Connection", "Upgrade"), ("Upgrade", "h2c")]) + requestText("GET", "/second"))
        let first = try client.readResponse()
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.header("connection"), "close", "the connection cannot carry another request")
        XCTAssertTrue(client.waitForClose(seconds: 5), "closed after the answer, not at the idle timeout")
        XCTAssertEqual(self.backends[0].statistics.requests, 1)
    }

    /// Without a route marked `websocket: true` (here: no catalog at all) a WebSocket handshake
    /// is refused — never forwarded as a plain GET with its upgrade headers stripped — and what
    /// is pipelined behind it is not left hanging either.
    func testAWebSocketHandshakeOnARouteNotMarkedForItIsRefusedNotDowngraded() async throws {
        try await self.startGateway()
        let handshake = [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
        try self.assertRefusedAndClosed(requestText("GET", "/ledger", headers: handshake) + requestText("GET", "/second"), status: 400, slug: "websocket-not-allowed")
        // One that is not even a valid handshake is no request to forward either.
        try self.assertRefusedAndClosed(requestText("GET", "/ledger", headers: [("Connection", "Upgrade"), ("Upgrade", "websocket")]), status: 400, slug: "malformed-request")
    }

    func testTheRequestLogNamesTheForwardedPathAndTheClientsSpelling() async throws {
        try await self.startGateway()
        XCTAssertEqual(try request(port: self.port, "GET", "/ledger/./a//b/%7Ex?q=1").status, 200)
        XCTAssertEqual(try request(port: self.port, "GET", "/plain").status, 200)
        XCTAssertTrue(self.gateway.waitForLog("raw-path=/ledger/./a//b/%7Ex"), self.gateway.log)
        XCTAssertTrue(self.gateway.waitForLog("path=/plain "), self.gateway.log)
        let lines = self.gateway.log.split(separator: "\n").filter { $0.contains(" request") && $0.contains("status=200") }
        XCTAssertTrue(lines.contains { $0.contains("path=/ledger/a/b/~x") && $0.contains("raw-path=/ledger/./a//b/%7Ex") }, self.gateway.log)
        XCTAssertTrue(lines.contains { $0.contains("path=/plain") && !$0.contains("raw-path") }, "only when they differ")
    }
}

/// A CONNECT is answered 501 and the connection closed at once. The answer has no body: HTTP/1.1
/// frames every response to CONNECT as ending at its head (NIO's encoder enforces it), so the
/// status, `X-Request-Id` and `Connection: close` are what the client gets.
func assertConnectRefused(_ raw: String, port: Int, file: StaticString = #filePath, line: UInt = #line) throws {
    let client = try RawHTTPConnection(port: port, receiveTimeout: 5)
    try client.send(raw)
    let response = try client.readResponse()
    XCTAssertEqual(response.status, 501, file: file, line: line)
    XCTAssertEqual(response.header("connection"), "close", file: file, line: line)
    XCTAssertNotNil(response.header("x-request-id"), file: file, line: line)
    XCTAssertEqual(response.body, [], file: file, line: line)
    XCTAssertTrue(client.waitForClose(seconds: 5), "the connection closes at once", file: file, line: line)
}
