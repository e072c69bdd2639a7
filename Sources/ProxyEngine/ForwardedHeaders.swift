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
    /// Runs on every message in both directions. What goes is usually `Connection: keep-alive`
    /// from an upstream: the fixed names are removed by their literal and `Connection` is read
    /// token by token in place, so such a message costs no allocation; only a `Proxy-*` field or
    /// a `Connection` naming another field builds a list.
    static func stripHopByHop<Fields: FieldEditing>(_ headers: inout Fields) {
        var present: HopByHop = []
        var doomed: [String] = []
        headers.forEachField { name, value in
            guard let field = HopByHop(bytes: name) else { return }
            present.insert(field)
            if field == .proxy {
                doomed.append(String(decoding: name, as: UTF8.self))
            } else if field == .connection {
                self.nominated(by: value, into: &doomed)
            }
        }
        guard !present.isEmpty else { return }
        for (field, name) in HopByHop.names where present.contains(field) { headers.remove(name: name) }
        for name in doomed { headers.remove(name: name) }
    }

    /// The fields hop-by-hop by definition, as flags: which of them a message carries.
    struct HopByHop: OptionSet {
        let rawValue: UInt8
        static let connection = HopByHop(rawValue: 1 << 0)
        static let keepAlive = HopByHop(rawValue: 1 << 1)
        static let te = HopByHop(rawValue: 1 << 2)
        static let trailer = HopByHop(rawValue: 1 << 3)
        static let transferEncoding = HopByHop(rawValue: 1 << 4)
        static let upgrade = HopByHop(rawValue: 1 << 5)
        /// Any `Proxy-*` field (removed by its own name).
        static let proxy = HopByHop(rawValue: 1 << 6)

        static let names: [(HopByHop, String)] = [
            (.connection, "connection"), (.keepAlive, "keep-alive"), (.te, "te"), (.trailer, "trailer"),
            (.transferEncoding, "transfer-encoding"), (.upgrade, "upgrade"),
        ]

        init(rawValue: UInt8) { self.rawValue = rawValue }

        init?(bytes name: UnsafeRawBufferPointer) {
            if ForwardedHeaders.matches(bytes: name, "proxy-", prefixOnly: true) { self = .proxy; return }
            switch name.count {
            case 2 where ForwardedHeaders.matches(bytes: name, "te"): self = .te
            case 7 where ForwardedHeaders.matches(bytes: name, "trailer"): self = .trailer
            case 7 where ForwardedHeaders.matches(bytes: name, "upgrade"): self = .upgrade
            case 10 where ForwardedHeaders.matches(bytes: name, "connection"): self = .connection
            case 10 where ForwardedHeaders.matches(bytes: name, "keep-alive"): self = .keepAlive
            case 17 where ForwardedHeaders.matches(bytes: name, "transfer-encoding"): self = .transferEncoding
            default: return nil
            }
        }
    }

    /// The fields a `Connection` value names for removal, beyond the hop-by-hop ones removed
    /// anyway (and `close`, which names none); never `neverNominated` ones.
    private static func nominated(by value: UnsafeRawBufferPointer, into doomed: inout [String]) {
        // Read in place: the usual `Connection: keep-alive` names nothing and builds no string.
        var tokens = FieldListItems(value)
        while let token = tokens.next() {
            guard HopByHop(bytes: token) == nil, !self.matches(bytes: token, "close") else { continue }
            let lowered = String(decoding: token.lazy.map(self.lowercased), as: UTF8.self)
            if !self.neverNominated.contains(lowered) { doomed.append(lowered) }
        }
    }

    /// `HTTPResponseHead.isKeepAlive`, read in place: SwiftNIO's splits every `Connection` value
    /// into an array of strings each time (1.3 % of a proxy-only profile, asked of every upstream
    /// response). The same verdict: a `close` token closes; one `keep-alive` keeps alive, a second
    /// recognized token closes; with neither, HTTP/1.1 keeps alive and HTTP/1.0 closes.
    static func keepsAlive(_ head: HTTPResponseHead) -> Bool {
        self.keepsAlive(head.headers, version: head.version)
    }

    static func keepsAlive(_ fields: some FieldEditing, version: HTTPVersion) -> Bool {
        var keepAlives = 0
        var closes = false
        self.forEachItem(of: fields, named: "connection") { token in
            if self.matches(bytes: token, "keep-alive") { keepAlives += 1 }
            closes = self.matches(bytes: token, "close")
            return !closes
        }
        if closes { return false }
        if keepAlives > 0 { return keepAlives == 1 }
        return version.major == 1 && version.minor >= 1
    }

    /// Whether the head asks for `100 Continue` (an `Expect` item `100-continue`, in any case).
    static func expectsContinue(_ fields: some FieldEditing) -> Bool {
        var expects = false
        self.forEachItem(of: fields, named: "expect") { item in
            expects = self.matches(bytes: item, "100-continue")
            return !expects
        }
        return expects
    }

    /// Calls `body` with each item (`FieldListItems`) of every field of that name, in order,
    /// read in place, until it returns false.
    static func forEachItem(of fields: some FieldEditing, named wanted: StaticString, _ body: (UnsafeRawBufferPointer) -> Bool) {
        var going = true
        fields.forEachField { name, value in
            guard going, self.matches(bytes: name, wanted) else { return }
            var items = FieldListItems(value)
            while going, let item = items.next() { going = body(item) }
        }
    }

    /// Hop-by-hop or `Proxy-*`, compared ASCII case-insensitively without building a string.
    static func isHopByHop(_ name: String) -> Bool {
        self.withBytes(of: name) { HopByHop(bytes: UnsafeRawBufferPointer($0)) } != nil
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
    static func removeUnderscoreTwins<Fields: FieldEditing>(_ fields: inout Fields) {
        fields.removeAll(whereName: self.isUnderscoreTwin(bytes:))
    }

    static func isUnderscoreTwin(bytes name: UnsafeRawBufferPointer) -> Bool {
        guard name.contains(UInt8(ascii: "_")) else { return false }
        let folded = String(decoding: name.map { byte -> UInt8 in
            if byte == UInt8(ascii: "_") { return UInt8(ascii: "-") }
            return self.lowercased(byte)
        }, as: UTF8.self)
        return self.controlledNames.contains(folded) || folded.hasPrefix("x-erp-") || folded.hasPrefix("proxy-")
    }

    /// Whether `name` equals (or with `prefixOnly`, starts with) `lowercase`, ignoring ASCII case.
    static func matches(_ name: String, _ lowercase: StaticString, prefixOnly: Bool = false) -> Bool {
        self.withBytes(of: name) { self.matches(bytes: $0, lowercase, prefixOnly: prefixOnly) }
    }

    /// Runs `body` on the UTF-8 bytes of `text` as they are stored (every native string, small
    /// ones copied to the stack). Read through `String.UTF8View`'s index instead, the field check
    /// of every upstream request was 4 % of a proxy-only profile on its own
    /// (`bench/profile.sh proxy`): each byte paid the view's index arithmetic and bounds check.
    @inline(__always)
    static func withBytes<Result>(of text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        if let result = text.utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = text
        return copy.withUTF8(body)
    }

    /// `matches` for bytes not yet a string (a name or token read in place).
    static func matches(bytes: some Collection<UInt8>, _ lowercase: StaticString, prefixOnly: Bool = false) -> Bool {
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        guard prefixOnly ? bytes.count >= expected.count : bytes.count == expected.count else { return false }
        // (Walked by index instead of `zip`, a debug build allocated 55 more times per request.)
        for (byte, wanted) in zip(bytes, expected) {
            if self.lowercased(byte) != wanted { return false }
        }
        return true
    }

    /// Whether two names are the same, ignoring ASCII case.
    static func equalIgnoringCase(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) -> Bool {
        guard first.count == second.count else { return false }
        for (left, right) in zip(first, second) where left != right {
            if self.lowercased(left) != self.lowercased(right) { return false }
        }
        return true
    }

    /// An ASCII letter in lower case; any other byte as it is. One comparison: a `ClosedRange`
    /// test per byte was a call of its own, 0.4 % of a proxy-only profile's samples
    /// (`bench/profile.sh proxy`).
    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
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
    /// - Parameters:
    ///   - target: the request target sent upstream (the normalized one); the client's when nil.
    ///   - removingAuthorization: the client's `Authorization` does not go upstream (a tenant's
    ///     signed context replaces it). Removed here, before the gateway's fields are added: a
    ///     removal is a pass over every field, and after them it was 0.7 % of a full-pipeline
    ///     request's samples (`bench/profile.sh full`).
    static func upstreamRequestHead(
        from client: RelayedRequestHead,
        target: String? = nil,
        facts: ClientFacts,
        requestID: String,
        trace: TraceDecision,
        framing: RequestHeadValidation.BodyFraming,
        removingAuthorization: Bool = false
    ) -> RelayedRequestHead {
        // The client's fields as received: the ones dropped below are marked removed, the
        // gateway's are added after them, and the received ones are written upstream as they
        // came (`FieldSection`).
        var headers = client.fields
        // Room for what is added below (forwarding, framing, id, trace, and the tenant context
        // after this) in one allocation: the list is not regrown on the way.
        headers.reserveAddedCapacity(16)
        let clientHost = headers.first(name: "host")
        // Each removal below is a pass over every field; most clients send none of these.
        let present = Replaced(in: headers)
        self.stripHopByHop(&headers)
        if present.contains(.underscoreName) { self.removeUnderscoreTwins(&headers) }
        if removingAuthorization { headers.remove(name: "authorization") }
        if present.contains(.expect) { headers.remove(name: "expect") }  // the gateway answers 100-continue itself
        // The upstream frames the body exactly as the gateway validated it, whatever else the
        // client sent.
        if present.contains(.contentLength) { headers.remove(name: "content-length") }
        switch framing {
        case .none: break
        case .contentLength(let length): headers.add(name: "content-length", value: String(length))
        case .chunked: headers.add(name: "transfer-encoding", value: "chunked")
        }

        let trusted = facts.trustClientForwardedHeaders
        let priorFor = trusted && present.contains(.forwardedFor) ? self.joinedItems(of: headers, named: "x-forwarded-for") : ""
        let priorProto = trusted && present.contains(.forwardedProto) ? headers.first(name: "x-forwarded-proto") : nil
        let priorHost = trusted && present.contains(.forwardedHost) ? headers.first(name: "x-forwarded-host") : nil
        if present.contains(.forwardedFor) { headers.remove(name: "x-forwarded-for") }
        if present.contains(.forwardedProto) { headers.remove(name: "x-forwarded-proto") }
        if present.contains(.forwardedHost) { headers.remove(name: "x-forwarded-host") }
        if !trusted, present.contains(.forwarded) {
            headers.remove(name: "forwarded")
        }
        let address = facts.clientAddress ?? "unknown"
        headers.add(name: "x-forwarded-for", value: priorFor.isEmpty ? address : "\(priorFor), \(address)")
        headers.add(name: "x-forwarded-proto", value: priorProto ?? facts.scheme)
        if let host = priorHost ?? clientHost {
            headers.add(name: "x-forwarded-host", value: host)
        }

        if present.contains(.requestID) { headers.remove(name: "x-request-id") }
        headers.add(name: "x-request-id", value: requestID)
        if !trace.continuesClientTrace, present.contains(.traceState) {
            // Trace Context: a tracestate is meaningless without the traceparent it came with.
            headers.remove(name: "tracestate")
        }
        if present.contains(.traceParent) { headers.remove(name: "traceparent") }
        headers.add(name: "traceparent", value: trace.outgoing.header)
        // Only the gateway states a tenant's context (`UpstreamContext`). Client copies are found
        // by the pass above, so a request without any (nearly every one) is not read again.
        if present.contains(.contextCopy) { UpstreamContext.removeClientCopies(from: &headers) }

        return RelayedRequestHead(version: .http1_1, method: client.method, uri: target ?? client.uri, fields: headers)
    }

    /// The items of every field of that name, joined by ", " (`HTTPHeaders[canonicalForm:]`'s
    /// items: empty ones dropped, blanks around each trimmed).
    static func joinedItems(of fields: some FieldEditing, named wanted: StaticString) -> String {
        var joined = ""
        self.forEachItem(of: fields, named: wanted) { item in
            if !joined.isEmpty { joined += ", " }
            joined += String(decoding: item, as: UTF8.self)
            return true
        }
        return joined
    }

    /// The fields of a client's head that `upstreamRequestHead` drops or replaces, found in one
    /// pass. A superset of what is left once hop-by-hop fields are gone: removing a field that is
    /// not there changes nothing.
    struct Replaced: OptionSet {
        let rawValue: UInt16
        static let expect = Replaced(rawValue: 1 << 0)
        static let contentLength = Replaced(rawValue: 1 << 1)
        static let forwardedFor = Replaced(rawValue: 1 << 2)
        static let forwardedProto = Replaced(rawValue: 1 << 3)
        static let forwardedHost = Replaced(rawValue: 1 << 4)
        static let forwarded = Replaced(rawValue: 1 << 5)
        static let requestID = Replaced(rawValue: 1 << 6)
        static let traceState = Replaced(rawValue: 1 << 7)
        static let traceParent = Replaced(rawValue: 1 << 8)
        /// A client's copy of a field of the gateway's signed context (`X-ERP-…`).
        static let contextCopy = Replaced(rawValue: 1 << 9)
        /// A name with `_`, which may be a controlled name's twin (`removeUnderscoreTwins`).
        static let underscoreName = Replaced(rawValue: 1 << 10)

        init(rawValue: UInt16) { self.rawValue = rawValue }

        init(in fields: some FieldEditing) {
            var present: Replaced = []
            fields.forEachField { name, _ in
                switch name.count {
                case 6 where ForwardedHeaders.matches(bytes: name, "expect"): present.insert(.expect)
                case 9 where ForwardedHeaders.matches(bytes: name, "forwarded"): present.insert(.forwarded)
                case 10 where ForwardedHeaders.matches(bytes: name, "tracestate"): present.insert(.traceState)
                case 11 where ForwardedHeaders.matches(bytes: name, "traceparent"): present.insert(.traceParent)
                case 12 where ForwardedHeaders.matches(bytes: name, "x-request-id"): present.insert(.requestID)
                case 14 where ForwardedHeaders.matches(bytes: name, "content-length"): present.insert(.contentLength)
                case 15 where ForwardedHeaders.matches(bytes: name, "x-forwarded-for"): present.insert(.forwardedFor)
                case 16 where ForwardedHeaders.matches(bytes: name, "x-forwarded-host"): present.insert(.forwardedHost)
                case 17 where ForwardedHeaders.matches(bytes: name, "x-forwarded-proto"): present.insert(.forwardedProto)
                case 6... where ForwardedHeaders.matches(bytes: name, UpstreamContext.headerPrefix, prefixOnly: true): present.insert(.contextCopy)
                default: break
                }
                if name.contains(UInt8(ascii: "_")) { present.insert(.underscoreName) }
            }
            self = present
        }
    }

    /// The response head sent to the client: hop-by-hop removed, request id attached.
    static func clientResponseHead(from upstream: HTTPResponseHead, requestID: String, version: HTTPVersion, close: Bool) -> HTTPResponseHead {
        var headers = upstream.headers
        // One copy, with room for the id, `Connection`, RateLimit and CORS fields added after.
        headers.reserveCapacity(headers.count + 8)
        self.clientResponseFields(&headers, requestID: requestID, version: version, close: close)
        return HTTPResponseHead(version: version, status: upstream.status, headers: headers)
    }

    /// An upstream's response fields made the client's: hop-by-hop removed, request id attached,
    /// and `Connection` saying what becomes of the client's connection.
    static func clientResponseFields<Fields: FieldEditing>(_ fields: inout Fields, requestID: String, version: HTTPVersion, close: Bool) {
        self.stripHopByHop(&fields)
        fields.replaceOrAdd(name: "x-request-id", value: requestID)
        if close {
            fields.add(name: "connection", value: "close")
        } else if version == .http1_0 {
            fields.add(name: "connection", value: "keep-alive")
        }
    }
}

/// The non-empty items of a comma-separated field value, without their surrounding blanks, read
/// in place (`headers[canonicalForm:]`'s items, without an array of strings).
struct FieldListItems {
    let value: UnsafeRawBufferPointer
    var start = 0
    /// An item between commas was empty (or blank).
    private(set) var skippedEmpty = false

    init(_ value: UnsafeRawBufferPointer) {
        self.value = value
    }

    mutating func next() -> UnsafeRawBufferPointer? {
        let value = self.value
        while self.start <= value.count {
            var end = self.start
            while end < value.count, value[end] != UInt8(ascii: ",") { end += 1 }
            var first = self.start
            var last = end
            self.start = end + 1
            while first < last, value[first] == UInt8(ascii: " ") || value[first] == UInt8(ascii: "\t") { first += 1 }
            while last > first, value[last - 1] == UInt8(ascii: " ") || value[last - 1] == UInt8(ascii: "\t") { last -= 1 }
            if last > first { return UnsafeRawBufferPointer(rebasing: value[first..<last]) }
            self.skippedEmpty = true
        }
        return nil
    }
}
