import XCTest

/// Headers, identity and connection handling of ordinary proxied requests.
final class ForwardingTests: GatewayTestCase {
    func testStripsHopByHopHeadersAndSetsForwardingHeaders() async throws {
        try await self.startGateway()
        let response = try request(port: self.port, "GET", "/orders?page=2", headers: [
            ("Host", "erp.example.com"),
            ("Connection", "keep-alive, X-Internal-Hop"),
            ("X-Internal-Hop", "secret"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Upgrade", "websocket"),
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
            ("Proxy-Connection", "keep-alive"),
            ("X-Forwarded-For", "203.0.113.9"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.example"),
            ("Forwarded", "for=203.0.113.9"),
            ("Accept", "application/json"),
        ])
        XCTAssertEqual(response.status, 200)
        let seen = try SeenRequest(response)
        XCTAssertEqual(seen.uri, "/orders?page=2")
        XCTAssertEqual(seen.value("host"), "erp.example.com", "Host is kept")
        XCTAssertEqual(seen.value("accept"), "application/json")
        for name in ["connection", "x-internal-hop", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-connection", "forwarded"] {
            XCTAssertTrue(seen.values(name).isEmpty, "\(name) must not reach the upstream")
        }
        XCTAssertEqual(seen.values("x-forwarded-for"), ["127.0.0.1"], "a client's own X-Forwarded-For is not trusted")
        XCTAssertEqual(seen.values("x-forwarded-proto"), ["http"])
        XCTAssertEqual(seen.values("x-forwarded-host"), ["erp.example.com"])
        XCTAssertNil(response.header("x-backend-hop"))
    }

    func testTrustedForwardedHeadersAreAppended() async throws {
        try await self.startGateway(backends: 1, ["forwarding": ["trustClientForwardedHeaders": "true"]])
        let response = try request(port: self.port, "GET", "/", headers: [
            ("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "portal.example"),
        ])
        let seen = try SeenRequest(response)
        XCTAssertEqual(seen.values("x-forwarded-for"), ["203.0.113.9, 127.0.0.1"])
        XCTAssertEqual(seen.values("x-forwarded-proto"), ["https"])
        XCTAssertEqual(seen.values("x-forwarded-host"), ["portal.example"])
    }

    func testRequestIDIsPropagatedWhenValidAndGeneratedOtherwise() async throws {
        try await self.startGateway()
        let kept = try request(port: self.port, "GET", "/", headers: [("X-Request-Id", "client-abc.123")])
        XCTAssertEqual(kept.header("x-request-id"), "client-abc.123")
        XCTAssertEqual(try SeenRequest(kept).values("x-request-id"), ["client-abc.123"])

        let invalid = try request(port: self.port, "GET", "/", headers: [("X-Request-Id", "bad id with spaces <script>")])
        let replaced = try XCTUnwrap(invalid.header("x-request-id"))
        XCTAssertNotEqual(replaced, "bad id with spaces <script>")
        XCTAssertEqual(try SeenRequest(invalid).values("x-request-id"), [replaced])

        let generated = try XCTUnwrap(try request(port: self.port, "GET", "/").header("x-request-id"))
        XCTAssertEqual(generated.count, 32)
        XCTAssertNotEqual(generated, replaced)
    }

    func testTraceContextIsContinuedOrStarted() async throws {
        try await self.startGateway()
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let continued = try SeenRequest(request(port: self.port, "GET", "/", headers: [("traceparent", incoming), ("tracestate", "vendor=abc")]))
        let forwarded = try XCTUnwrap(continued.value("traceparent"))
        XCTAssertTrue(forwarded.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "the client's trace id is kept")
        XCTAssertTrue(forwarded.hasSuffix("-01"), "the sampling flag is kept")
        XCTAssertFalse(forwarded.contains("00f067aa0ba902b7"), "the gateway forwards its own span id")
        XCTAssertEqual(continued.values("tracestate"), ["vendor=abc"])

        let started = try SeenRequest(request(port: self.port, "GET", "/", headers: [("traceparent", "garbage"), ("tracestate", "vendor=abc")]))
        let fresh = try XCTUnwrap(started.value("traceparent"))
        XCTAssertEqual(fresh.count, 55)
        XCTAssertTrue(fresh.hasPrefix("00-"))
        XCTAssertTrue(started.values("tracestate").isEmpty, "tracestate without a valid traceparent is dropped")
    }

    func testUpstreamConnectionsAreReusedAcrossRequestsAndClients() async throws {
        try await self.startGateway()
        // One keep-alive client: 1,000 requests in sequence.
        let client = try RawHTTPConnection(port: self.port)
        for index in 0..<1000 {
            try client.send(requestText("GET", "/item/\(index)"))
            let response = try client.readResponse()
            XCTAssertEqual(response.status, 200)
        }
        // Then 20 short-lived clients: the pool outlives them.
        for index in 0..<20 {
            XCTAssertEqual(try request(port: self.port, "GET", "/short/\(index)").status, 200)
        }
        let stats = self.backends[0].statistics
        XCTAssertEqual(stats.requests, 1020)
        // At most maxConnectionsPerEndpoint (8) per event loop (2); in practice one or two.
        XCTAssertLessThanOrEqual(stats.connectionsAccepted, 16)
        XCTAssertLessThanOrEqual(stats.connectionsAccepted, 4, "sequential requests should reuse one connection per loop")
    }

    func testRequestsAreSpreadOverTheCellsEndpoints() async throws {
        try await self.startGateway(backends: 2)
        let client = try RawHTTPConnection(port: self.port)
        var seen: [String: Int] = [:]
        // Sequential requests leave both endpoints idle, so each choice is a fair coin: 40 of
        // them all landing on one endpoint has a chance of 2 in 2^40.
        for _ in 0..<40 {
            try client.send(requestText("GET", "/"))
            seen[try SeenRequest(client.readResponse()).backend, default: 0] += 1
        }
        XCTAssertEqual(Set(seen.keys), ["backend-0", "backend-1"], "\(seen)")
        XCTAssertEqual(seen.values.reduce(0, +), 40)
    }

    func testAClientThatHalfClosesAfterItsRequestGetsTheAnswer() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        try client.send(requestText("GET", "/delay/200"))
        client.shutdownWrite()
        let response = try client.readResponse()
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(try SeenRequest(response).uri, "/delay/200")
        XCTAssertEqual(response.header("connection"), "close")
        XCTAssertTrue(client.waitForClose(seconds: 5))
    }

    func testAHalfClosedIdleConnectionIsClosed() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        try client.send(requestText("GET", "/first"))
        XCTAssertEqual(try client.readResponse().status, 200)
        client.shutdownWrite()
        XCTAssertTrue(client.waitForClose(seconds: 5))
    }

    func testPipelinedRequestsAreAnsweredInOrder() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        // The first request is the slowest: answers must still come back in request order.
        let targets = ["/delay/300", "/delay/10", "/first-fast", "/delay/100", "/last"]
        try client.send(targets.map { requestText("GET", $0) }.joined())
        for target in targets {
            let response = try client.readResponse()
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(try SeenRequest(response).uri, target)
        }
    }

    func testPipelinedRequestsWithBodiesKeepTheirBodies() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        let bodies = ["alpha", String(repeating: "b", count: 70_000), "", "gamma"]
        try client.send(bodies.map { requestText("POST", "/echo", body: $0) }.joined())
        for body in bodies {
            XCTAssertEqual(try SeenRequest(client.readResponse()).bodyBytes, body.utf8.count)
        }
    }

    func testHeadAndConnectionClose() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        try client.send(requestText("HEAD", "/bytes/5000"))
        let head = try client.readResponse(forHEAD: true)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.header("content-length"), "5000")
        try client.send(requestText("GET", "/bytes/10", headers: [("Connection", "close")]))
        let last = try client.readResponse()
        XCTAssertEqual(last.body.count, 10)
        XCTAssertEqual(last.header("connection"), "close")
        XCTAssertTrue(client.waitForClose(seconds: 5))
    }

    func testChunkedRequestBodyIsForwarded() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        try client.send("POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        let seen = try SeenRequest(client.readResponse())
        XCTAssertEqual(seen.bodyBytes, 11)
        XCTAssertEqual(seen.values("transfer-encoding"), ["chunked"])
    }
}
