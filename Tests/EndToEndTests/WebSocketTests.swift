import Foundation
import UpstreamFixtures
import XCTest

/// WebSockets through the running gateway to a backend that echoes: the handshake passes the
/// same phases as any request (token, tenant, route, quotas), then frames are relayed both ways
/// until one end closes, the customer is suspended, or the gateway drains.
final class WebSocketTests: GatewayTestCase {
    var echo: WebSocketEchoBackend!
    var redis: RedisProcess?
    /// The second cell's backend, where a test has two.
    var secondEcho: WebSocketEchoBackend?

    /// `c1` may keep two requests in flight (with Redis); `/v1/live` accepts WebSockets,
    /// `/v1/ledger` does not.
    static func tree(customerStatus: String = "active", placement: String = "") -> String {
        """
        catalog:
          features: [ledger]
          packages: { basic: [ledger] }
          routes:
            - { path: /v1/ledger, feature: ledger }
            - { path: /v1/live, feature: ledger, websocket: true }
        tenants:
          - id: acme
            kind: oem
            placement: { tier: pooled, region: test }
            issuers:
              - iss: https://id.acme.test
                audience: erp-gateway
                keys: [{ kid: acme-1, alg: RS256, pemFile: \(TestIdentity.acmeOld.publicKey) }]
          - { id: p1, kind: partner, parent: acme }
          - { id: c1, kind: customer, parent: p1, package: basic, status: \(customerStatus), limits: { concurrency: 2 }\(placement) }
        """
    }

    override func tearDown() async throws {
        try await super.tearDown()
        await self.echo?.stop()
        await self.secondEcho?.stop()
        self.redis?.stop()
    }

    /// The gateway in front of the echo backend; with `quotas`, on a Redis of its own (quotas
    /// and revocations); with `cells`, instead of the one default cell.
    func startWebSocketGateway(quotas: Bool = false, cells: String? = nil, tree: String = WebSocketTests.tree()) async throws {
        if self.echo == nil { self.echo = try await WebSocketEchoBackend.start(group: Self.upstreamGroup) }
        var extra = "webSockets:\n  closeGrace: 500ms\n"
        if quotas {
            let redis = try RedisProcess()
            self.redis = redis
            extra += redis.settings
        }
        self.gateway = try GatewayProcess(
            settings: gatewaySettings(endpoints: [self.echo.port], tenantTree: "tenants.yaml", cells: cells, extra: extra), files: ["tenants.yaml": tree]
        )
    }

    func token() throws -> String {
        try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1")
    }

    /// A socket on `/v1/live` with the token in its subprotocols, as a browser sends it.
    func openSocket() throws -> WebSocketClient {
        let socket = try WebSocketClient(port: self.port, path: "/v1/live", protocols: ["chat", "erp-gateway.bearer.\(try self.token())"])
        XCTAssertEqual(socket.response.status, 101, socket.response.text)
        XCTAssertEqual(try socket.readFrame().text, "hello", "the backend's greeting, sent right behind its 101")
        return socket
    }

    func testMessagesGoBothWaysAndTheTokenNeverReachesTheBackendsSubprotocols() async throws {
        try await self.startWebSocketGateway()
        let socket = try WebSocketClient(port: self.port, path: "/v1/live", protocols: ["chat", "erp-gateway.bearer.\(try self.token())"])
        XCTAssertEqual(socket.response.status, 101, socket.response.text)
        XCTAssertEqual(socket.response.header("upgrade")?.lowercased(), "websocket")
        XCTAssertEqual(socket.response.header("connection")?.lowercased(), "upgrade")
        XCTAssertEqual(socket.response.header("sec-websocket-protocol"), "chat", "a protocol the client offered, never the bearer entry")
        XCTAssertEqual(socket.response.header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "the backend's answer to the client's key")
        XCTAssertNotNil(socket.response.header("x-request-id"))
        XCTAssertEqual(try socket.readFrame().text, "hello")
        for index in 1...3 { XCTAssertEqual(try socket.echo("message \(index)"), "message \(index)") }
        let large = String(repeating: "x", count: 40_000)
        let echoed = try socket.echo(large)
        XCTAssertTrue(echoed == large, "a frame larger than one read comes back whole (\(echoed.utf8.count) bytes)")

        XCTAssertEqual(self.echo.statistics.lastOfferedProtocols, "chat", "the bearer entry is taken out before forwarding")
        XCTAssertNil(self.echo.statistics.lastAuthorization, "the token stays at the gateway")

        try socket.sendClose(code: 1000)
        let close = try socket.readFrame()
        XCTAssertEqual(close.closeCode, 1000, "the backend's answer to the client's close")
        XCTAssertTrue(socket.connection.waitForClose(seconds: 5))
        XCTAssertTrue(self.gateway.waitForLog("websocket closed"), self.gateway.log)
        XCTAssertFalse(self.gateway.log.contains("erp-gateway.bearer"), "the token is never logged")
    }

    func testAnAuthorizationHeaderWorksForClientsThatCanSetOne() async throws {
        try await self.startWebSocketGateway()
        let socket = try WebSocketClient(port: self.port, path: "/v1/live", headers: [("Authorization", "Bearer \(try self.token())")])
        XCTAssertEqual(socket.response.status, 101, socket.response.text)
        XCTAssertNil(socket.response.header("sec-websocket-protocol"))
        XCTAssertEqual(try socket.readFrame().text, "hello")
        XCTAssertEqual(try socket.echo("plain"), "plain")
    }

    func testAHandshakeWithoutAValidTokenIsRefused() async throws {
        try await self.startWebSocketGateway()
        let missing = try WebSocketClient(port: self.port, path: "/v1/live", protocols: ["chat"])
        try self.assertProblem(missing.response, status: 401, slug: "token-missing")
        let bad = try WebSocketClient(port: self.port, path: "/v1/live", protocols: ["chat", "erp-gateway.bearer.not.a-token"])
        XCTAssertEqual(bad.response.status, 401, bad.response.text)
        // Two credentials at once are one too many.
        let both = try WebSocketClient(
            port: self.port, path: "/v1/live", protocols: ["erp-gateway.bearer.\(try self.token())"], headers: [("Authorization", "Bearer \(try self.token())")]
        )
        XCTAssertEqual(both.response.status, 401, both.response.text)
        XCTAssertEqual(self.echo.statistics.handshakes, 0, "nothing reached the backend")
    }

    func testAHandshakeOnARouteNotMarkedForWebSocketsIsRefusedNotDowngraded() async throws {
        try await self.startWebSocketGateway()
        let socket = try WebSocketClient(port: self.port, path: "/v1/ledger", protocols: ["chat", "erp-gateway.bearer.\(try self.token())"])
        try self.assertProblem(socket.response, status: 400, slug: "websocket-not-allowed")
        XCTAssertEqual(socket.response.header("connection"), "close")
        XCTAssertTrue(socket.connection.waitForClose(seconds: 5))
        XCTAssertEqual(self.echo.statistics.plainRequests, 0, "not forwarded as a plain GET")
        XCTAssertEqual(self.echo.statistics.handshakes, 0)
    }

    func testOpenSocketsCountAgainstTheInFlightLimit() async throws {
        try await self.startWebSocketGateway(quotas: true)
        let first = try self.openSocket()
        let second = try self.openSocket()
        let third = try WebSocketClient(port: self.port, path: "/v1/live", protocols: ["chat", "erp-gateway.bearer.\(try self.token())"])
        try self.assertProblem(third.response, status: 429, slug: "quota-exceeded")
        XCTAssertTrue(third.response.header("ratelimit-policy")?.contains("concurrency") ?? false, third.response.header("ratelimit-policy") ?? "none")
        XCTAssertEqual(try first.echo("still open"), "still open")

        // A socket that closes gives its unit back, once: the next one opens, the one after not.
        try second.sendClose(code: 1000)
        XCTAssertEqual(try second.readFrame().closeCode, 1000)
        XCTAssertTrue(second.connection.waitForClose(seconds: 5))
        var reopened: WebSocketClient?
        XCTAssertTrue(try self.eventually(5) {
            let attempt = try WebSocketClient(port: self.port, path: "/v1/live", protocols: ["chat", "erp-gateway.bearer.\(try self.token())"])
            if attempt.switched { reopened = attempt }
            return attempt.switched
        })
        XCTAssertNotNil(reopened)
        let over = try WebSocketClient(port: self.port, path: "/v1/live", protocols: ["chat", "erp-gateway.bearer.\(try self.token())"])
        XCTAssertEqual(over.response.status, 429, "two open again: the closed socket's unit was given back once")
    }

    func testSuspendingTheCustomerClosesItsOpenSocket() async throws {
        try await self.startWebSocketGateway()
        let socket = try self.openSocket()
        XCTAssertEqual(try socket.echo("before"), "before")
        try self.gateway.replaceFile("tenants.yaml", with: Self.tree(customerStatus: "suspended"))
        self.gateway.signal(SIGHUP)
        let close = try socket.readFrame()
        XCTAssertEqual(close.closeCode, 1008, "closed by policy: the customer is suspended")
        XCTAssertTrue(socket.connection.waitForClose(seconds: 5))
        XCTAssertEqual(self.echo.statistics.closeCodes, [1008], "the backend is told too")
        let again = try WebSocketClient(port: self.port, path: "/v1/live", protocols: ["chat", "erp-gateway.bearer.\(try self.token())"])
        try self.assertProblem(again.response, status: 403, slug: "tenant-suspended")
    }

    func testRevokingTheTokenClosesItsOpenSocket() async throws {
        try await self.startWebSocketGateway(quotas: true)
        let socket = try self.openSocket()
        XCTAssertEqual(try socket.echo("before"), "before")
        let (status, output) = try runCommand(GatewayProcess.binary, ["token", "revoke", "--config", self.gateway.configPath, "--tenant", "c1"])
        XCTAssertEqual(status, 0, output)
        let close = try socket.readFrame()
        XCTAssertEqual(close.closeCode, 1008, "closed by policy: the token is revoked")
        XCTAssertTrue(socket.connection.waitForClose(seconds: 5))
        XCTAssertTrue(self.gateway.waitForLog("reason=token-revoked"), self.gateway.log)
    }

    func testAPlacementChangeMovesNewSocketsAndClosesOpenOnesAfterTheGrace() async throws {
        let second = try await WebSocketEchoBackend.start(group: Self.upstreamGroup)
        self.secondEcho = second
        self.echo = try await WebSocketEchoBackend.start(group: Self.upstreamGroup)
        let cells = """
            cells:
              - id: one
                kind: pooled
                region: test
                endpoints: [127.0.0.1:\(self.echo.port)]
              - id: two
                kind: pooled
                region: test
                endpoints: [127.0.0.1:\(second.port)]
            defaultCell: one

            """
        try await self.startWebSocketGateway(cells: cells, tree: Self.tree(placement: ", placement: { cell: one }"))
        let socket = try self.openSocket()
        XCTAssertEqual(self.echo.statistics.handshakes, 1)

        try self.gateway.replaceFile("tenants.yaml", with: Self.tree(placement: ", placement: { cell: two }"))
        self.gateway.signal(SIGHUP)
        XCTAssertTrue(self.gateway.waitForLog("configuration reloaded"))
        let moved = try self.openSocket()
        XCTAssertEqual(second.statistics.handshakes, 1, "a new socket goes to the new cell")
        // The open socket runs on for `closeGrace` (the state machine's tests time it), then:
        let close = try socket.readFrame()
        XCTAssertEqual(close.closeCode, 1001, "the open socket goes away")
        XCTAssertEqual(try moved.echo("on the new cell"), "on the new cell")
    }

    func testDrainSendsGoingAwayToOpenSockets() async throws {
        try await self.startWebSocketGateway()
        let socket = try self.openSocket()
        self.gateway.signal(SIGTERM)
        let close = try socket.readFrame()
        XCTAssertEqual(close.closeCode, 1001, "going away")
        try? socket.sendClose(code: 1001)  // the gateway may have closed already once the backend answered
        XCTAssertTrue(socket.connection.waitForClose(seconds: 5))
        XCTAssertEqual(self.echo.statistics.closeCodes, [1001])
    }
}
