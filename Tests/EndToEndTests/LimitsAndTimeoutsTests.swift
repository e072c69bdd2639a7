import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Every configured limit and client-side timeout, each answered with its own status and problem.
final class LimitsAndTimeoutsTests: GatewayTestCase {
    func testURITooLong() async throws {
        try await self.startGateway()
        let target = "/" + String(repeating: "a", count: 2100)
        let client = try RawHTTPConnection(port: self.port)
        try client.send(requestText("GET", target))
        try self.assertProblem(client.readResponse(), status: 414, slug: "uri-too-long")
        XCTAssertTrue(client.waitForClose(seconds: 5))
        // Just under the limit passes.
        XCTAssertEqual(try request(port: self.port, "GET", "/" + String(repeating: "a", count: 2000)).status, 200)
        XCTAssertEqual(self.backends[0].statistics.requests, 1)
    }

    func testHeaderFieldsTooLarge() async throws {
        try await self.startGateway()
        let response = try request(port: self.port, "GET", "/", headers: [("X-Big", String(repeating: "h", count: 9000))])
        try self.assertProblem(response, status: 431, slug: "header-fields-too-large")
        // Far beyond the decoder's own bound, too.
        let huge = try request(port: self.port, "GET", "/", headers: (0..<40).map { ("X-Big-\($0)", String(repeating: "h", count: 4000)) })
        try self.assertProblem(huge, status: 431, slug: "header-fields-too-large")
        XCTAssertEqual(try request(port: self.port, "GET", "/", headers: [("X-Fine", String(repeating: "h", count: 4000))]).status, 200)
        XCTAssertEqual(self.backends[0].statistics.requests, 1)
    }

    func testDeclaredBodyTooLarge() async throws {
        try await self.startGateway(backends: 1, ["limits": ["maxRequestBodyBytes": "1KiB"]])
        let client = try RawHTTPConnection(port: self.port)
        try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n")
        try self.assertProblem(client.readResponse(), status: 413, slug: "body-too-large")
        XCTAssertTrue(client.waitForClose(seconds: 5))
        XCTAssertEqual(self.backends[0].statistics.requests, 0)
    }

    func testStreamedChunkedBodyTooLarge() async throws {
        try await self.startGateway(backends: 1, ["limits": ["maxRequestBodyBytes": "1KiB"]])
        let client = try RawHTTPConnection(port: self.port)
        let chunk = String(repeating: "x", count: 600)
        try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n\(chunk)\r\n258\r\n\(chunk)\r\n0\r\n\r\n")
        try self.assertProblem(client.readResponse(), status: 413, slug: "body-too-large")
        XCTAssertTrue(client.waitForClose(seconds: 5))
        XCTAssertEqual(self.backends[0].statistics.requests, 0, "the upstream never sees a complete request")
    }

    func testSlowClientGetsRequestTimeoutAndIsClosed() async throws {
        try await self.startGateway(backends: 1, ["timeouts": ["headerRead": "400ms"]])
        let client = try RawHTTPConnection(port: self.port)
        try client.send("GET /slow HTTP/1.1\r\nHost: x\r\nX-Trickle: ")
        try self.assertProblem(client.readResponse(), status: 408, slug: "request-header-timeout")
        XCTAssertTrue(client.waitForClose(seconds: 5))
        XCTAssertEqual(self.backends[0].statistics.requests, 0)
    }

    func testHeaderReadTimeoutAppliesToLaterRequestsOnAKeepAliveConnection() async throws {
        try await self.startGateway(backends: 1, ["timeouts": ["headerRead": "400ms", "keepAliveIdle": "20s"]])
        let client = try RawHTTPConnection(port: self.port)
        try client.send(requestText("GET", "/first"))
        XCTAssertEqual(try client.readResponse().status, 200)
        try client.send("GET /second HTTP/1.1\r\nHost: x\r\n")
        try self.assertProblem(client.readResponse(), status: 408, slug: "request-header-timeout")
    }

    func testIdleKeepAliveConnectionIsClosedQuietly() async throws {
        try await self.startGateway(backends: 1, ["timeouts": ["keepAliveIdle": "300ms"]])
        let client = try RawHTTPConnection(port: self.port)
        try client.send(requestText("GET", "/"))
        XCTAssertEqual(try client.readResponse().status, 200)
        XCTAssertTrue(client.waitForClose(seconds: 5), "an idle connection is closed after keepAliveIdle")
    }

    /// A client that declares a body and stops sending it holds nothing shared for long: it gets
    /// 408 and is closed, its upstream connection is dropped, and the endpoint is not blamed.
    func testStalledRequestBodyTimesOutWithoutBlamingTheEndpoint() async throws {
        let cells = """
            cells:
              - id: test-cell
                kind: pooled
                region: test
                endpoints: [ENDPOINT]
            defaultCell: test-cell
            outlierDetection: { consecutiveFailures: 2, baseEjection: 30s, maxEjection: 1m, maxEjectedPercent: 100 }

            """
        try await self.startBackends(1)
        self.gateway = try GatewayProcess(settings: gatewaySettings(
            endpoints: [], ["timeouts": ["requestBodyIdle": "300ms"]],
            cells: cells.replacingOccurrences(of: "ENDPOINT", with: "127.0.0.1:\(self.backends[0].port)")
        ))
        for _ in 0..<3 {
            let client = try RawHTTPConnection(port: self.port, receiveTimeout: 5)
            try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\npay")
            try self.assertProblem(client.readResponse(), status: 408, slug: "request-body-timeout")
            XCTAssertTrue(client.waitForClose(seconds: 5))
        }
        // Three stalls against an endpoint ejected after two failures: it still serves.
        XCTAssertEqual(try request(port: self.port, "GET", "/after").status, 200)
        XCTAssertTrue(self.gateway.waitForLog("request body stalled"), self.gateway.log)
    }

    func testASlowButSteadyBodyIsNotCut() async throws {
        try await self.startGateway(backends: 1, ["timeouts": ["requestBodyIdle": "400ms"]])
        let client = try RawHTTPConnection(port: self.port, receiveTimeout: 5)
        try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
        for piece in ["ab", "cd", "ef"] {
            usleep(250_000)  // each gap shorter than the timeout; together longer
            try client.send(piece)
        }
        XCTAssertEqual(try SeenRequest(client.readResponse()).bodyBytes, 6)
    }

    func testUpstreamResponseTimeout() async throws {
        try await self.startGateway(backends: 1, ["timeouts": ["upstreamResponse": "300ms"]])
        let client = try RawHTTPConnection(port: self.port)
        try client.send(requestText("GET", "/delay/3000"))
        try self.assertProblem(client.readResponse(), status: 504, slug: "upstream-timeout")
        // The client connection stays usable; the timed-out upstream connection is not reused.
        try client.send(requestText("GET", "/after"))
        XCTAssertEqual(try SeenRequest(client.readResponse()).uri, "/after")
    }

    func testUpstreamConnectTimeout() async throws {
        // A listener whose accept queue is full and never drained: the kernel drops further SYNs,
        // so a connect attempt hangs until the gateway's own timeout.
        let blackhole = try Blackhole()
        try await self.startGateway(backends: 0, ["timeouts": ["upstreamConnect": "300ms"]], endpoints: [blackhole.port])
        let response = try request(port: self.port, "GET", "/")
        try self.assertProblem(response, status: 504, slug: "upstream-connect-timeout")
        withExtendedLifetime(blackhole) {}
    }
}

/// A TCP listener with a backlog of one that never accepts, filled so new connects hang.
final class Blackhole {
    let port: Int
    private let listener: Int32
    private var fillers: [Int32] = []

    init() throws {
        self.port = try freePort()
        self.listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(self.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(self.listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        listen(self.listener, 0)
        // Fill the accept queue with non-blocking connects; once it is full the kernel drops
        // further SYNs, so later handshakes never complete.
        for _ in 0..<3 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            self.fillers.append(fd)
        }
        usleep(100_000)
    }

    deinit {
        for fd in self.fillers { close(fd) }
        close(self.listener)
    }
}
