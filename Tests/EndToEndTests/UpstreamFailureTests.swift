import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// What the client sees when the upstream is not there or misbehaves.
final class UpstreamFailureTests: GatewayTestCase {
    func testRefusedConnectionIsBadGateway() async throws {
        let nobody = try freePort()
        try await self.startGateway(backends: 0, endpoints: [nobody])
        let response = try request(port: self.port, "GET", "/")
        try self.assertProblem(response, status: 502, slug: "upstream-unreachable")
        XCTAssertFalse(response.text.contains("\(nobody)"))
    }

    func testResetBeforeAnswerIsBadGateway() async throws {
        let rude = try RudeUpstream()
        try await self.startGateway(backends: 0, endpoints: [rude.port])
        // POST is not replayable, so the reset surfaces as 502 rather than a retry.
        try self.assertProblem(request(port: self.port, "POST", "/", body: "x"), status: 502, slug: "upstream-failed")
        withExtendedLifetime(rude) {}
    }

    func testStaleKeepAliveConnectionIsRetriedForIdempotentRequests() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        try client.send(requestText("GET", "/warm"))
        XCTAssertEqual(try client.readResponse().status, 200)
        // The upstream restarts on the same port: the pooled connection is now dead.
        let port = self.backends[0].port
        await self.backends[0].stop()
        self.backends[0] = try await .start(name: "backend-restarted", port: port, group: Self.upstreamGroup)
        try client.send(requestText("GET", "/after-restart"))
        let response = try client.readResponse()
        XCTAssertEqual(response.status, 200, "a GET is retried on a fresh connection, not lost")
        XCTAssertEqual(try SeenRequest(response).backend, "backend-restarted")
    }

    func testUpstreamClosingAfterItsResponseIsNotReused() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        for _ in 0..<3 {
            try client.send(requestText("GET", "/close"))
            XCTAssertEqual(try client.readResponse().status, 200)
            try client.send(requestText("GET", "/next"))
            XCTAssertEqual(try client.readResponse().status, 200)
        }
    }
}

/// Accepts connections, reads a little, and resets them without answering.
final class RudeUpstream {
    let port: Int
    private let listener: Int32
    private let thread: Thread

    init() throws {
        self.port = try freePort()
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(self.port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        listen(listener, 16)
        self.listener = listener
        self.thread = Thread {
            while true {
                let fd = accept(listener, nil, nil)
                if fd < 0 { return }
                var buffer = [UInt8](repeating: 0, count: 4096)
                _ = recv(fd, &buffer, buffer.count, 0)
                var lingerOption = linger(l_onoff: 1, l_linger: 0)  // RST instead of FIN
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &lingerOption, socklen_t(MemoryLayout<linger>.size))
                close(fd)
            }
        }
        self.thread.start()
    }

    deinit {
        shutdown(self.listener, Int32(SHUT_RDWR))
        close(self.listener)
    }
}
