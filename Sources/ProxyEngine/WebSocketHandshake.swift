import NIOHTTP1

/// A WebSocket opening handshake (RFC 6455 §4.1) as the gateway reads it, and the one way a
/// browser can send it a bearer token.
///
/// Browsers cannot set `Authorization` on a WebSocket, and a token in the URL ends up in access
/// logs, proxies and the browser's history. The browser can set `Sec-WebSocket-Protocol`
/// (Kubernetes authenticates WebSockets the same way): the client offers
/// `erp-gateway.bearer.<token>` beside the subprotocol it really speaks. The gateway takes that
/// entry out before anything else reads the head — the phases see `Authorization: Bearer
/// <token>` as for any request, and the backend sees only the subprotocols the client really
/// offered, so its `101` names one of those.
struct WebSocketHandshake: Equatable {
    /// The subprotocol prefix that carries a bearer token.
    static let bearerProtocolPrefix = "erp-gateway.bearer."

    /// The subprotocols the client offered, without the bearer entry, in its order.
    let offeredProtocols: [String]
    /// The token of a bearer entry, if the client offered one.
    let bearerToken: String?

    enum Reading: Equatable {
        /// No `Upgrade: websocket`: an ordinary request.
        case notAHandshake
        case handshake(WebSocketHandshake)
        /// Asks for a WebSocket but is no valid handshake; `reason` is for the log only.
        case malformed(reason: String)
    }

    /// Whether `head` asks for a WebSocket (`Connection: upgrade` and `Upgrade: websocket`) and,
    /// if so, whether it is a valid handshake: `GET` over HTTP/1.1, one 16-byte
    /// `Sec-WebSocket-Key`, version 13, at most one bearer entry.
    /// An `Upgrade` that `Connection` does not name is no request to switch (RFC 9110 §7.8): it
    /// is a stray hop-by-hop field, stripped like any other.
    static func read(_ head: RelayedRequestHead) -> Reading {
        // Every request passes here: one scan of the names, no allocation, for the many without.
        guard head.fields.contains(name: "upgrade") else { return .notAHandshake }
        // A request to switch: its fields read as strings.
        let headers = head.fields.headers
        guard Self.listContains(headers[canonicalForm: "upgrade"], "websocket"),
            Self.listContains(headers[canonicalForm: "connection"], "upgrade")
        else { return .notAHandshake }
        guard head.method == .GET, head.version == .http1_1 else { return .malformed(reason: "a WebSocket handshake is a GET over HTTP/1.1") }
        let keys = headers["sec-websocket-key"]
        // 16 random bytes in base64: 24 characters ending in "==".
        guard keys.count == 1, keys[0].utf8.count == 24, keys[0].hasSuffix("==") else {
            return .malformed(reason: "a WebSocket handshake needs one Sec-WebSocket-Key of 16 bytes")
        }
        guard headers["sec-websocket-version"] == ["13"] else { return .malformed(reason: "WebSocket version other than 13") }
        var offered: [String] = []
        var token: String?
        for entry in headers[canonicalForm: "sec-websocket-protocol"] where !entry.isEmpty {
            let name = String(entry)
            if name.hasPrefix(Self.bearerProtocolPrefix) {
                guard token == nil else { return .malformed(reason: "more than one bearer subprotocol") }
                token = String(name.dropFirst(Self.bearerProtocolPrefix.utf8.count))
            } else {
                offered.append(name)
            }
        }
        return .handshake(WebSocketHandshake(offeredProtocols: offered, bearerToken: token))
    }

    /// The head the phases and the backend see: the bearer entry taken out of
    /// `Sec-WebSocket-Protocol` and turned into `Authorization` (a client that sent both sends
    /// two credentials, which `authenticate` refuses as malformed).
    func headForPhases(_ head: RelayedRequestHead) -> RelayedRequestHead {
        guard let token = self.bearerToken else { return head }
        var head = head
        head.fields.remove(name: "sec-websocket-protocol")
        if !self.offeredProtocols.isEmpty { head.fields.add(name: "sec-websocket-protocol", value: self.offeredProtocols.joined(separator: ", ")) }
        head.fields.add(name: "authorization", value: "Bearer \(token)")
        return head
    }

    /// Whether the backend's `101` may go to the client: it switches to `websocket` and names
    /// no subprotocol, or one the client offered (never the bearer entry: the backend never
    /// saw it). The key's digest (`Sec-WebSocket-Accept`) is the client's to check.
    func accepts(_ response: HTTPResponseHead) -> Bool {
        guard response.status == .switchingProtocols, Self.listContains(response.headers[canonicalForm: "upgrade"], "websocket") else { return false }
        let chosen = response.headers[canonicalForm: "sec-websocket-protocol"]
        switch chosen.count {
        case 0: return true
        case 1: return self.offeredProtocols.contains(String(chosen[0]))
        default: return false
        }
    }

    /// Whether a comma-separated header's elements include `token`, ignoring ASCII case.
    private static func listContains(_ elements: [Substring], _ token: String) -> Bool {
        elements.contains { $0.utf8.count == token.utf8.count && $0.lowercased() == token }
    }
}
