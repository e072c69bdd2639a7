import XCTest

/// Requests whose framing two hops could read differently are refused with 400 and the
/// connection closed, and never reach an upstream.
final class SmugglingTests: GatewayTestCase {
    private func assertRejected(_ raw: String, slug: String = "ambiguous-framing", file: StaticString = #filePath, line: UInt = #line) async throws {
        let before = self.backends[0].statistics.requests
        let client = try RawHTTPConnection(port: self.port)
        try client.send(raw)
        let response = try client.readResponse()
        try self.assertProblem(response, status: 400, slug: slug, file: file, line: line)
        XCTAssertEqual(response.header("connection"), "close", file: file, line: line)
        XCTAssertTrue(client.waitForClose(seconds: 5), "the connection is closed after a framing error", file: file, line: line)
        XCTAssertEqual(self.backends[0].statistics.requests, before, "nothing is forwarded", file: file, line: line)
    }

    func testGarbageAfterAPipelinedRequestIsAnsweredAfterThatRequest() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        // The bad bytes arrive while the first request is still with the upstream.
        try client.send(requestText("GET", "/delay/200") + "NOT HTTP AT ALL\r\n\r\n")
        let first = try client.readResponse()
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(try SeenRequest(first).uri, "/delay/200")
        let second = try client.readResponse()
        try self.assertProblem(second, status: 400, slug: "malformed-request")
        XCTAssertEqual(second.header("connection"), "close")
        XCTAssertTrue(client.waitForClose(seconds: 5))
        XCTAssertEqual(self.backends[0].statistics.requests, 1, "only the valid request was forwarded")
    }

    func testSmuggledFramingAfterAPipelinedRequestIsRefusedAfterIt() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        try client.send(
            requestText("GET", "/delay/200")
                + "POST /second HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"
        )
        XCTAssertEqual(try client.readResponse().status, 200)
        try self.assertProblem(try client.readResponse(), status: 400, slug: "ambiguous-framing")
        XCTAssertTrue(client.waitForClose(seconds: 5))
        XCTAssertEqual(self.backends[0].statistics.requests, 1)
    }

    func testContentLengthWithTransferEncoding() async throws {
        try await self.startGateway()
        try await self.assertRejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", slug: "malformed-request")
    }

    func testConflictingContentLengths() async throws {
        try await self.startGateway()
        try await self.assertRejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
    }

    func testContentLengthThatIsNotADigitString() async throws {
        try await self.startGateway()
        try await self.assertRejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello")
    }

    func testTransferEncodingOtherThanChunked() async throws {
        try await self.startGateway()
        try await self.assertRejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
    }

    func testMalformedChunkSize() async throws {
        try await self.startGateway()
        try await self.assertRejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
    }

    func testChunkWithoutTerminatingCRLF() async throws {
        try await self.startGateway()
        try await self.assertRejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", slug: "malformed-request")
    }

    func testMissingHost() async throws {
        try await self.startGateway()
        try await self.assertRejected("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", slug: "malformed-request")
    }
}

/// A client cannot use `Connection` to strip the framing the gateway validated.
final class FramingRestatementTests: GatewayTestCase {
    func testConnectionNominatingContentLengthCannotDesynchronizeTheUpstream() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        // If Content-Length were dropped upstream, "GET /x" would be read as a second request.
        try client.send("GET /first HTTP/1.1\r\nHost: x\r\nConnection: content-length\r\nContent-Length: 26\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")
        let seen = try SeenRequest(client.readResponse())
        XCTAssertEqual(seen.uri, "/first")
        XCTAssertEqual(seen.bodyBytes, 26)
        try client.send(requestText("GET", "/second"))
        XCTAssertEqual(try SeenRequest(client.readResponse()).uri, "/second")
        XCTAssertEqual(self.backends[0].statistics.requests, 2, "the upstream saw exactly the two requests sent")
    }
}
