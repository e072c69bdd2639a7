import BrowserHarness
import Foundation
import UpstreamFixtures
import XCTest

/// An OEM web app in headless Chromium opening a WebSocket through the gateway to a backend
/// that echoes, the token offered as an `erp-gateway.bearer.<token>` subprotocol (a browser
/// cannot set `Authorization` on a WebSocket).
final class BrowserWebSocketTests: BrowserTestCase {
    var echo: WebSocketEchoBackend!

    /// Opens `/v1/live` offering `chat` and, with a `token` parameter, the bearer entry; reports
    /// what it saw. `mode=exchange` sends two messages and closes; `mode=wait` sends one, then
    /// waits for the gateway to close the socket.
    static let socketPage = BrowserTestCase.page(
        """
        const params = new URLSearchParams(location.search);
        const protocols = ['chat'];
        if (params.get('token')) protocols.push('erp-gateway.bearer.' + params.get('token'));
        const socket = new WebSocket(gateway.replace(/^http/, 'ws') + '/v1/live', protocols);
        const received = [];
        let opened = false;
        const closed = new Promise((resolve) => socket.addEventListener('close', (event) => resolve(event.code)));
        const next = () => new Promise((resolve) => socket.addEventListener('message', (event) => resolve(event.data), { once: true }));
        const ready = await new Promise((resolve) => {
          socket.addEventListener('open', () => { opened = true; resolve(true); }, { once: true });
          socket.addEventListener('close', () => resolve(false), { once: true });
        });
        if (!ready) return { opened, code: await closed };
        received.push(await next());
        const messages = params.get('mode') === 'wait' ? ['only'] : ['one', 'two'];
        for (const message of messages) { socket.send(message); received.push(await next()); }
        if (params.get('mode') !== 'wait') socket.close(1000);
        return { opened, protocol: socket.protocol, received, code: await closed };
        """
    )

    static func tree(origin: String, customerStatus: String = "active") -> String {
        """
        catalog:
          features: [ledger]
          packages: { basic: [ledger] }
          routes:
            - { path: /v1/live, feature: ledger, websocket: true }
        tenants:
          - id: acme
            kind: oem
            placement: { tier: pooled, region: test }
            origins: [\(origin)]
            issuers:
              - iss: https://id.acme.test
                audience: erp-gateway
                keys: [{ kid: acme-1, alg: RS256, pemFile: \(TestIdentity.acmeOld.publicKey) }]
          - { id: p1, kind: partner, parent: acme }
          - { id: c1, kind: customer, parent: p1, package: basic, status: \(customerStatus) }
        """
    }

    override func setUp() async throws {
        try await super.setUp()
        try await self.startPages(["/socket.html": Self.socketPage])
        self.echo = try await WebSocketEchoBackend.start(group: Self.upstreamGroup)
        self.gateway = try GatewayProcess(
            settings: gatewaySettings(endpoints: [self.echo.port], tenantTree: "tenants.yaml"), files: ["tenants.yaml": Self.tree(origin: self.pages.origin)]
        )
    }

    override func tearDown() async throws {
        try await super.tearDown()
        await self.echo?.stop()
    }

    func socketQuery(token: String?, mode: String = "exchange") -> String {
        var components = URLComponents()
        components.queryItems = [URLQueryItem(name: "gateway", value: "http://127.0.0.1:\(self.port)"), URLQueryItem(name: "mode", value: mode)]
        if let token { components.queryItems?.append(URLQueryItem(name: "token", value: token)) }
        return "/socket.html?\(components.percentEncodedQuery ?? "")"
    }

    func token() throws -> String {
        try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1")
    }

    func testAPageExchangesMessagesOverAWebSocketAndIsRefusedWithoutAValidToken() async throws {
        let result = try await self.open(self.socketQuery(token: try self.token()))
        XCTAssertEqual(result["opened"] as? Bool, true, "\(result)")
        XCTAssertEqual(result["protocol"] as? String, "chat", "the protocol the page speaks, never the bearer entry")
        XCTAssertEqual(result["received"] as? [String], ["hello", "one", "two"], "\(result)")
        XCTAssertEqual(result["code"] as? Int, 1000)
        XCTAssertEqual(self.echo.statistics.lastOfferedProtocols, "chat")

        for token in [nil, "not.a-token"] {
            let refused = try await self.open(self.socketQuery(token: token))
            XCTAssertEqual(refused["opened"] as? Bool, false, "\(refused)")
            XCTAssertEqual(refused["code"] as? Int, 1006, "the browser only learns the socket failed")
        }
        XCTAssertEqual(self.echo.statistics.handshakes, 1, "the refused handshakes never reached the backend")
    }

    func testAPagesSocketIsClosedWhenItsCustomerIsSuspended() async throws {
        let url = self.pages.origin + self.socketQuery(token: try self.token(), mode: "wait")
        let (browser, pages) = (self.browser!, self.pages!)
        let page = Task { try await browser.open(url, resultFrom: pages) }
        var exchanged = false
        for _ in 0..<400 where !exchanged {
            exchanged = self.echo.statistics.echoed >= 1
            if !exchanged { try await Task.sleep(nanoseconds: 50_000_000) }
        }
        XCTAssertTrue(exchanged, "the page's socket is open and exchanged a message")
        try self.gateway.replaceFile("tenants.yaml", with: Self.tree(origin: self.pages.origin, customerStatus: "suspended"))
        self.gateway.signal(SIGHUP)
        let text = try await page.value
        let result = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
        XCTAssertEqual(result["received"] as? [String], ["hello", "only"], "\(result)")
        XCTAssertEqual(result["code"] as? Int, 1008, "closed by the gateway: the customer is suspended")
    }
}
