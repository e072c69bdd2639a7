import NIOHTTP1
import XCTest

@testable import ProxyEngine

/// Reading a WebSocket handshake, and the bearer subprotocol that keeps tokens out of URLs.
final class WebSocketHandshakeTests: XCTestCase {
    func head(method: HTTPMethod = .GET, version: HTTPVersion = .http1_1, _ extra: [(String, String)] = [], key: String = "dGhlIHNhbXBsZSBub25jZQ==") -> RelayedRequestHead {
        var headers = HTTPHeaders([("Host", "gateway.test"), ("Connection", "keep-alive, Upgrade"), ("Upgrade", "WebSocket"), ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")])
        headers.add(contentsOf: extra)
        return .received(HTTPRequestHead(version: version, method: method, uri: "/v1/live", headers: headers))
    }

    func testAnOrdinaryRequestIsNoHandshake() {
        XCTAssertEqual(WebSocketHandshake.read(.received(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Upgrade": "h2c"]))), .notAHandshake)
        XCTAssertEqual(WebSocketHandshake.read(.received(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"))), .notAHandshake)
        let stray = RelayedRequestHead.received(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Upgrade": "websocket", "Connection": "keep-alive"]))
        XCTAssertEqual(WebSocketHandshake.read(stray), .notAHandshake, "an Upgrade that Connection does not name is a stray field")
    }

    func testTheBearerEntryBecomesAuthorizationAndLeavesTheOfferedProtocols() throws {
        guard case .handshake(let handshake) = WebSocketHandshake.read(self.head([("Sec-WebSocket-Protocol", "chat, erp-gateway.bearer.aaa.bbb.ccc, v2")])) else {
            return XCTFail("a handshake")
        }
        XCTAssertEqual(handshake.offeredProtocols, ["chat", "v2"])
        XCTAssertEqual(handshake.bearerToken, "aaa.bbb.ccc")
        let head = handshake.headForPhases(self.head([("Sec-WebSocket-Protocol", "chat, erp-gateway.bearer.aaa.bbb.ccc, v2")]))
        XCTAssertEqual(head.headers["sec-websocket-protocol"], ["chat, v2"])
        XCTAssertEqual(head.headers["authorization"], ["Bearer aaa.bbb.ccc"])
        XCTAssertEqual(TenantAccess.bearerToken(head.fields), .token("aaa.bbb.ccc"))
    }

    func testABearerEntryBesideAnAuthorizationHeaderIsTwoCredentials() throws {
        let raw = self.head([("Sec-WebSocket-Protocol", "erp-gateway.bearer.aaa"), ("Authorization", "Bearer bbb")])
        guard case .handshake(let handshake) = WebSocketHandshake.read(raw) else { return XCTFail("a handshake") }
        let head = handshake.headForPhases(raw)
        XCTAssertNil(head.headers.first(name: "sec-websocket-protocol"), "only the bearer entry was offered")
        XCTAssertEqual(TenantAccess.bearerToken(head.fields), .malformed)
    }

    func testMalformedHandshakes() {
        for head in [
            self.head(method: .POST), self.head(version: .http1_0), self.head(key: "short"),
            self.head([("Sec-WebSocket-Protocol", "erp-gateway.bearer.a, erp-gateway.bearer.b")]),
            .received(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Upgrade": "websocket", "Connection": "upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "8"])),
        ] {
            guard case .malformed = WebSocketHandshake.read(head) else { return XCTFail("\(head)") }
        }
    }

    func testTheBackendsAnswerMayNameOnlyAnOfferedProtocol() {
        let handshake = WebSocketHandshake(offeredProtocols: ["chat"], bearerToken: "t")
        let upgrade: [(String, String)] = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        XCTAssertTrue(handshake.accepts(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: HTTPHeaders(upgrade))))
        XCTAssertTrue(handshake.accepts(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: HTTPHeaders(upgrade + [("Sec-WebSocket-Protocol", "chat")]))))
        XCTAssertFalse(handshake.accepts(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: HTTPHeaders(upgrade + [("Sec-WebSocket-Protocol", "erp-gateway.bearer.t")]))))
        XCTAssertFalse(handshake.accepts(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: ["Upgrade": "h2c"])))
    }
}
