import NIOHTTP1

/// Header rewriting between client and upstream, in both directions. Pure functions over
/// `HTTPHeaders`, so every rule has a test without a socket.
enum ForwardedHeaders {
    /// Hop-by-hop headers (RFC 9110 §7.6.1) never cross the proxy; `Connection` may name more.
    /// Framing headers are also dropped: the gateway re-frames each message itself.
    static let hopByHop = ["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"]

    /// Fields a `Connection` header may not remove: dropping them would change how the next hop
    /// frames or routes the message (`Connection: content-length` is a smuggling vector).
    static let neverNominated: Set<String> = ["host", "content-length"]

    /// Removes hop-by-hop headers, the headers listed in `Connection`, and every `Proxy-*` header.
    /// Runs on every message in both directions. What goes is usually one or two fields
    /// (`Connection: keep-alive` from an upstream), so they are removed in place: rebuilding the
    /// whole list, as a filter would, cost allocations on every response.
    static func stripHopByHop(_ headers: inout HTTPHeaders) {
        var doomed: [String] = []
        for value in headers[canonicalForm: "connection"] {
            let name = value.lowercased()
            if !self.neverNominated.contains(name) { doomed.append(name) }
        }
        for (name, _) in headers where self.isHopByHop(name) { doomed.append(name) }
        for name in doomed { headers.remove(name: name) }
    }

    /// Hop-by-hop or `Proxy-*`, compared ASCII case-insensitively without building a string.
    static func isHopByHop(_ name: String) -> Bool {
        if self.matches(name, "proxy-", prefixOnly: true) { return true }
        switch name.utf8.count {
        case 2: return self.matches(name, "te")
        case 7: return self.matches(name, "trailer") || self.matches(name, "upgrade")
        case 10: return self.matches(name, "connection") || self.matches(name, "keep-alive")
        case 17: return self.matches(name, "transfer-encoding")
        default: return false
        }
    }

    /// Names the gateway sets, frames or strips on the way upstream. A client field spelled like
    /// one of them with `_` for `-` is removed: backends that fold `_` into `-` (CGI and WSGI
    /// style) would read `X_ERP_Tenant` as the signed `X-ERP-Tenant`.
    static let controlledNames: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade", "expect",
        "authorization", "forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id",
        "traceparent", "tracestate",
    ]

    /// Removes every field whose name contains `_` and, with `_` read as `-` and ignoring case,
    /// is a controlled name, an `X-ERP-*` context header or a `Proxy-*` header. Names without `_`
    /// (nearly all) cost one scan of their bytes; twins are removed in place, like hop-by-hop fields.
    static func removeUnderscoreTwins(_ headers: inout HTTPHeaders) {
        var doomed: [String] = []
        for (name, _) in headers where self.isUnderscoreTwin(name) { doomed.append(name) }
        for name in doomed { headers.remove(name: name) }
    }

    static func isUnderscoreTwin(_ name: String) -> Bool {
        guard name.utf8.contains(UInt8(ascii: "_")) else { return false }
        let folded = String(decoding: name.utf8.map { byte -> UInt8 in
            if byte == UInt8(ascii: "_") { return UInt8(ascii: "-") }
            return (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
        }, as: UTF8.self)
        return self.controlledNames.contains(folded) || folded.hasPrefix("x-erp-") || folded.hasPrefix("proxy-")
    }

    /// Whether `name` equals (or with `prefixOnly`, starts with) `lowercase`, ignoring ASCII case.
    private static func matches(_ name: String, _ lowercase: StaticString, prefixOnly: Bool = false) -> Bool {
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        let utf8 = name.utf8
        guard prefixOnly ? utf8.count >= expected.count : utf8.count == expected.count else { return false }
        for (byte, wanted) in zip(utf8, expected) {
            let folded = (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
            if folded != wanted { return false }
        }
        return true
    }

    struct ClientFacts {
        /// The peer's IP address as the gateway saw it.
        var clientAddress: String?
        /// The scheme the client used to reach the gateway.
        var scheme: String
        var trustClientForwardedHeaders: Bool
    }

    /// The request head sent upstream: hop-by-hop removed, framing restated, X-Forwarded-* set,
    /// request id and trace context attached.
    static func upstreamRequestHead(
        from client: HTTPRequestHead,
        facts: ClientFacts,
        requestID: String,
        trace: TraceDecision,
        framing: RequestHeadValidation.BodyFraming
    ) -> HTTPRequestHead {
        var headers = client.headers
        let clientHost = headers.first(name: "host")
        self.stripHopByHop(&headers)
        self.removeUnderscoreTwins(&headers)
        headers.remove(name: "expect")  // the gateway answers 100-continue itself
        // The upstream frames the body exactly as the gateway validated it, whatever else the
        // client sent.
        headers.remove(name: "content-length")
        switch framing {
        case .none: break
        case .contentLength(let length): headers.add(name: "content-length", value: String(length))
        case .chunked: headers.add(name: "transfer-encoding", value: "chunked")
        }

        let priorFor = facts.trustClientForwardedHeaders ? headers[canonicalForm: "x-forwarded-for"].joined(separator: ", ") : ""
        let priorProto = facts.trustClientForwardedHeaders ? headers.first(name: "x-forwarded-proto") : nil
        let priorHost = facts.trustClientForwardedHeaders ? headers.first(name: "x-forwarded-host") : nil
        headers.remove(name: "x-forwarded-for")
        headers.remove(name: "x-forwarded-proto")
        headers.remove(name: "x-forwarded-host")
        if !facts.trustClientForwardedHeaders {
            headers.remove(name: "forwarded")
        }
        let address = facts.clientAddress ?? "unknown"
        headers.add(name: "x-forwarded-for", value: priorFor.isEmpty ? address : "\(priorFor), \(address)")
        headers.add(name: "x-forwarded-proto", value: priorProto ?? facts.scheme)
        if let host = priorHost ?? clientHost {
            headers.add(name: "x-forwarded-host", value: host)
        }

        headers.replaceOrAdd(name: "x-request-id", value: requestID)
        if !trace.continuesClientTrace {
            // Trace Context: a tracestate is meaningless without the traceparent it came with.
            headers.remove(name: "tracestate")
        }
        headers.replaceOrAdd(name: "traceparent", value: trace.outgoing.header)

        return HTTPRequestHead(version: .http1_1, method: client.method, uri: client.uri, headers: headers)
    }

    /// The response head sent to the client: hop-by-hop removed, request id attached.
    static func clientResponseHead(from upstream: HTTPResponseHead, requestID: String, version: HTTPVersion, close: Bool) -> HTTPResponseHead {
        var headers = upstream.headers
        self.stripHopByHop(&headers)
        headers.replaceOrAdd(name: "x-request-id", value: requestID)
        if close {
            headers.add(name: "connection", value: "close")
        } else if version == .http1_0 {
            headers.add(name: "connection", value: "keep-alive")
        }
        return HTTPResponseHead(version: version, status: upstream.status, headers: headers)
    }
}
