import NIOHTTP1
import XCTest
@testable import ProxyEngine

final class ForwardedHeadersTests: XCTestCase {
    private static let incomingTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    private static let continued = TraceDecision(
        outgoing: TraceParent(traceID: "4bf92f3577b34da6a3ce929d0e0e4736", parentID: "1111111111111111", flags: "01"),
        continuesClientTrace: true
    )
    private static let started = TraceDecision(
        outgoing: TraceParent(traceID: "0af7651916cd43dd8448eb211c80319c", parentID: "2222222222222222", flags: "00"),
        continuesClientTrace: false
    )

    // MARK: - Hop-by-hop headers

    func testHopByHopHeadersAndThoseNamedInConnectionAreStripped() {
        var headers = HTTPHeaders([
            ("Host", "shop.example"),
            ("Connection", "Keep-Alive, X-Custom-Hop ,  x-other-HOP"),
            ("connection", "X-Second"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Trailer", "Expires"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"),
            ("Proxy-Authorization", "Basic YTpi"),
            ("Proxy-Connection", "keep-alive"),
            ("X-Custom-Hop", "1"),
            ("X-OTHER-hop", "2"),
            ("x-second", "3"),
            ("Accept", "*/*"),
            ("X-Keep", "yes"),
            ("Cookie", "a=b"),
        ])
        ForwardedHeaders.stripHopByHop(&headers)

        XCTAssertEqual(headers.map { $0.name }, ["Host", "Accept", "X-Keep", "Cookie"])
        XCTAssertEqual(headers.first(name: "host"), "shop.example")
        XCTAssertEqual(headers.first(name: "cookie"), "a=b")
    }

    /// The one pass that tells which replaced fields a client sent: each of them in any case,
    /// and none of their look-alikes (same length, or a name they begin).
    func testTheFieldsToReplaceAreFoundInAnyCaseAndNoLookAlike() {
        let all = HTTPHeaders([
            ("EXPECT", "100-continue"), ("Content-Length", "3"), ("x-forwarded-FOR", "a"), ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "h"), ("Forwarded", "for=a"), ("X-Request-Id", "r"), ("TraceState", "k=v"), ("traceparent", Self.incomingTrace),
        ])
        XCTAssertEqual(
            ForwardedHeaders.Replaced(in: all),
            [.expect, .contentLength, .forwardedFor, .forwardedProto, .forwardedHost, .forwarded, .requestID, .traceState, .traceParent]
        )
        let lookAlikes = HTTPHeaders([
            ("Expects", "x"), ("Content-Lengths", "3"), ("Content-Type", "x"), ("X-Forwarded-Fox", "a"), ("X-Forwarded-Prot", "h"),
            ("Forwarder", "x"), ("X-Request-Ip", "r"), ("TraceStat", "k"), ("traceparents", "t"), ("Host", "h"), ("Authorization", "Bearer t"),
        ])
        XCTAssertEqual(ForwardedHeaders.Replaced(in: lookAlikes), [])
    }

    /// Whether an upstream keeps its connection open, read in place, is SwiftNIO's verdict.
    func testAnUpstreamKeepsItsConnectionAsSwiftNIOReadsIt() {
        let values: [[String]] = [
            [], ["close"], ["keep-alive"], ["Keep-Alive"], ["CLOSE"], ["keep-alive, close"], ["close, keep-alive"], ["keep-alive", "keep-alive"],
            ["keep-alive, keep-alive"], ["upgrade"], ["Upgrade, keep-alive"], [" close "], ["\tkeep-alive\t"], [",,close,"], ["closed"],
            ["keep-alive-ish"], [""], [","], ["x-hop, close"], ["te", "Close"], ["keep-alive", "upgrade"], ["clos"], ["keep alive"],
        ]
        for version in [HTTPVersion.http1_1, .http1_0] {
            for connection in values {
                for name in ["Connection", "connection"] {
                    var headers = HTTPHeaders([("Content-Length", "0")])
                    for value in connection { headers.add(name: name, value: value) }
                    headers.add(name: "X-After", value: "1")
                    let head = HTTPResponseHead(version: version, status: .ok, headers: headers)
                    XCTAssertEqual(ForwardedHeaders.keepsAlive(head), head.isKeepAlive, "\(version) \(name): \(connection)")
                }
            }
        }
    }

    /// `Expect: 100-continue` is found as the handler looked for it before: an item of any
    /// `Expect` field, blanks around it trimmed, in any case.
    func testAHeadExpectsContinueAsItsCanonicalItemsSay() {
        let values: [[String]] = [
            [], ["100-continue"], ["100-Continue"], [" 100-continue "], ["x, 100-continue"], ["100-continue-ish"], ["100"], [""],
            ["foo", "100-CONTINUE"], ["\t100-continue"], ["100-continue,"],
        ]
        for expect in values {
            for name in ["Expect", "expect", "EXPECT"] {
                var headers = HTTPHeaders([("Host", "h")])
                for value in expect { headers.add(name: name, value: value) }
                XCTAssertEqual(
                    ForwardedHeaders.expectsContinue(headers), headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }),
                    "\(name): \(expect)"
                )
            }
        }
    }

    func testOrdinaryHeadersKeepTheirOrderAndRepetitions() {
        let original = HTTPHeaders([("Accept", "text/html"), ("Accept", "application/json"), ("Authorization", "Bearer t"), ("Host", "h")])
        var headers = original
        ForwardedHeaders.stripHopByHop(&headers)
        XCTAssertEqual(headers.map { "\($0.name): \($0.value)" }, original.map { "\($0.name): \($0.value)" })
    }

    func testUpstreamRequestCarriesNoHopByHopHeaders() {
        let head = Self.request(headers: [
            ("Host", "shop.example"), ("Connection", "close, X-Hop"), ("X-Hop", "1"), ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"), ("Upgrade", "h2c"), ("Proxy-Connection", "keep-alive"), ("Proxy-Authorization", "Basic x"),
            ("Trailer", "Expires"), ("Accept", "*/*"),
        ])
        let forwarded = Self.forward(head)

        for name in ["connection", "x-hop", "keep-alive", "te", "upgrade", "proxy-connection", "proxy-authorization", "trailer", "transfer-encoding"] {
            XCTAssertFalse(forwarded.headers.contains(name: name), "\(name) was forwarded")
        }
        XCTAssertEqual(forwarded.headers["host"], ["shop.example"])
        XCTAssertEqual(forwarded.headers["accept"], ["*/*"])
    }

    func testUpstreamRequestKeepsMethodAndTargetAndSpeaksHTTP11() {
        let head = HTTPRequestHead(version: .http1_0, method: .PATCH, uri: "/orders/7?expand=lines", headers: ["Host": "h"])
        let forwarded = Self.forward(head)
        XCTAssertEqual(forwarded.method, .PATCH)
        XCTAssertEqual(forwarded.uri, "/orders/7?expand=lines")
        XCTAssertEqual(forwarded.version, .http1_1)
    }

    // MARK: - X-Forwarded-* and Forwarded

    func testUntrustedXForwardedForIsReplacedByTheClientAddress() {
        let head = Self.request(headers: [("Host", "h"), ("X-Forwarded-For", "6.6.6.6"), ("x-forwarded-for", "7.7.7.7, 8.8.8.8")])
        let forwarded = Self.forward(head, trusted: false)
        XCTAssertEqual(forwarded.headers["x-forwarded-for"], ["203.0.113.7"])
    }

    func testTrustedXForwardedForIsAppendedTo() {
        let head = Self.request(headers: [("Host", "h"), ("X-Forwarded-For", "198.51.100.1"), ("x-forwarded-for", "198.51.100.2,198.51.100.3")])
        let forwarded = Self.forward(head, trusted: true)
        XCTAssertEqual(forwarded.headers["x-forwarded-for"], ["198.51.100.1, 198.51.100.2, 198.51.100.3, 203.0.113.7"])
    }

    func testTrustedWithoutAPriorXForwardedForStartsTheList() {
        let forwarded = Self.forward(Self.request(headers: [("Host", "h")]), trusted: true)
        XCTAssertEqual(forwarded.headers["x-forwarded-for"], ["203.0.113.7"])
    }

    func testUnknownClientAddress() {
        let forwarded = Self.forward(Self.request(headers: [("Host", "h")]), clientAddress: nil)
        XCTAssertEqual(forwarded.headers["x-forwarded-for"], ["unknown"])
    }

    func testXForwardedProtoAndHostComeFromTheConnectionWhenUntrusted() {
        let head = Self.request(headers: [("Host", "shop.example:8080"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.example")])
        let forwarded = Self.forward(head, trusted: false, scheme: "http")
        XCTAssertEqual(forwarded.headers["x-forwarded-proto"], ["http"])
        XCTAssertEqual(forwarded.headers["x-forwarded-host"], ["shop.example:8080"])
    }

    func testXForwardedProtoAndHostAreKeptWhenTrusted() {
        let head = Self.request(headers: [("Host", "internal:8080"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "shop.example")])
        let forwarded = Self.forward(head, trusted: true, scheme: "http")
        XCTAssertEqual(forwarded.headers["x-forwarded-proto"], ["https"])
        XCTAssertEqual(forwarded.headers["x-forwarded-host"], ["shop.example"])
    }

    func testTrustedWithoutPriorProtoOrHostUsesTheConnection() {
        let forwarded = Self.forward(Self.request(headers: [("Host", "shop.example")]), trusted: true, scheme: "https")
        XCTAssertEqual(forwarded.headers["x-forwarded-proto"], ["https"])
        XCTAssertEqual(forwarded.headers["x-forwarded-host"], ["shop.example"])
    }

    func testNoHostMeansNoXForwardedHost() {
        let head = HTTPRequestHead(version: .http1_0, method: .GET, uri: "/", headers: [:])
        XCTAssertFalse(Self.forward(head).headers.contains(name: "x-forwarded-host"))
    }

    func testForwardedHeaderIsRemovedWhenUntrustedAndKeptWhenTrusted() {
        let head = Self.request(headers: [("Host", "h"), ("Forwarded", "for=6.6.6.6;proto=https")])
        XCTAssertFalse(Self.forward(head, trusted: false).headers.contains(name: "forwarded"))
        XCTAssertEqual(Self.forward(head, trusted: true).headers["forwarded"], ["for=6.6.6.6;proto=https"])
    }

    // MARK: - Framing, Expect, request id, trace context

    func testExpectIsRemoved() {
        let head = Self.request(headers: [("Host", "h"), ("Expect", "100-continue"), ("Content-Length", "5")])
        let forwarded = Self.forward(head, framing: .contentLength(5))
        XCTAssertFalse(forwarded.headers.contains(name: "expect"))
        XCTAssertEqual(forwarded.headers["content-length"], ["5"])
    }

    func testChunkedIsRestatedOnceWhenTheBodyIsChunked() {
        let head = Self.request(headers: [("Host", "h"), ("Transfer-Encoding", "Chunked")])
        XCTAssertEqual(Self.forward(head, framing: .chunked).headers["transfer-encoding"], ["chunked"])
        XCTAssertFalse(Self.forward(Self.request(headers: [("Host", "h")]), framing: .none).headers.contains(name: "transfer-encoding"))
    }

    func testRequestIDReplacesAnyClientValue() {
        let head = Self.request(headers: [("Host", "h"), ("X-Request-ID", "from-client"), ("x-request-id", "second")])
        XCTAssertEqual(Self.forward(head, requestID: "gw-123").headers["x-request-id"], ["gw-123"])
        XCTAssertEqual(Self.forward(Self.request(headers: [("Host", "h")]), requestID: "gw-456").headers["x-request-id"], ["gw-456"])
    }

    func testTraceparentIsTheGatewaysOwnAndTracestateFollowsTheTrace() {
        let head = Self.request(headers: [("Host", "h"), ("traceparent", Self.incomingTrace), ("tracestate", "vendor=abc")])

        let continued = Self.forward(head, trace: Self.continued)
        XCTAssertEqual(continued.headers["traceparent"], ["00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"])
        XCTAssertEqual(continued.headers["tracestate"], ["vendor=abc"])

        let started = Self.forward(head, trace: Self.started)
        XCTAssertEqual(started.headers["traceparent"], ["00-0af7651916cd43dd8448eb211c80319c-2222222222222222-00"])
        XCTAssertFalse(started.headers.contains(name: "tracestate"))
    }

    func testOrdinaryHeadersPassThroughUnchanged() {
        let head = Self.request(headers: [
            ("Host", "h"), ("Authorization", "Bearer abc"), ("Content-Type", "application/json"), ("Accept-Language", "de, en;q=0.5"),
        ])
        let forwarded = Self.forward(head)
        XCTAssertEqual(forwarded.headers["authorization"], ["Bearer abc"])
        XCTAssertEqual(forwarded.headers["content-type"], ["application/json"])
        XCTAssertEqual(forwarded.headers["accept-language"], ["de, en;q=0.5"])
    }

    // MARK: - Response to the client

    func testClientResponseStripsHopByHopAndSetsTheRequestID() {
        let upstream = HTTPResponseHead(version: .http1_1, status: .created, headers: HTTPHeaders([
            ("Connection", "keep-alive, X-Backend-Hop"), ("Keep-Alive", "timeout=30"), ("Transfer-Encoding", "chunked"),
            ("Proxy-Connection", "keep-alive"), ("Upgrade", "h2"), ("X-Backend-Hop", "1"), ("Content-Type", "text/plain"),
            ("X-Request-ID", "upstream-id"), ("Set-Cookie", "a=b, c"),
        ]))
        let head = ForwardedHeaders.clientResponseHead(from: upstream, requestID: "gw-1", version: .http1_1, close: false)

        XCTAssertEqual(head.status, .created)
        XCTAssertEqual(head.version, .http1_1)
        XCTAssertEqual(head.headers.map { $0.name }.map { $0.lowercased() }, ["content-type", "set-cookie", "x-request-id"])
        XCTAssertEqual(head.headers["x-request-id"], ["gw-1"])
        XCTAssertEqual(head.headers["set-cookie"], ["a=b, c"])
        XCTAssertFalse(head.headers.contains(name: "connection"))
    }

    func testClientResponseSaysConnectionCloseWhenClosing() {
        let upstream = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Connection": "keep-alive"])
        for version in [HTTPVersion.http1_1, .http1_0] {
            let head = ForwardedHeaders.clientResponseHead(from: upstream, requestID: "r", version: version, close: true)
            XCTAssertEqual(head.headers["connection"], ["close"])
            XCTAssertEqual(head.version, version)
        }
    }

    func testClientResponseToHTTP10KeepsAliveExplicitly() {
        let upstream = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Connection": "close"])
        let head = ForwardedHeaders.clientResponseHead(from: upstream, requestID: "r", version: .http1_0, close: false)
        XCTAssertEqual(head.headers["connection"], ["keep-alive"])
    }

    // MARK: - Framing cannot be removed by the client

    func testConnectionCannotNominateContentLengthOrHost() {
        let head = Self.request(headers: [("Host", "erp.example"), ("Content-Length", "5"), ("Connection", "content-length, host, x-drop")])
        let forwarded = Self.forward(head, framing: .contentLength(5))
        XCTAssertEqual(forwarded.headers["content-length"], ["5"], "the validated length is restated upstream")
        XCTAssertEqual(forwarded.headers["host"], ["erp.example"])
        XCTAssertFalse(forwarded.headers.contains(name: "connection"))
    }

    func testFramingIsRestatedFromTheValidatedValue() {
        let head = Self.request(headers: [("Host", "h"), ("Content-Length", "5")])
        XCTAssertEqual(Self.forward(head, framing: .contentLength(5)).headers["content-length"], ["5"])
        XCTAssertEqual(Self.forward(head, framing: .contentLength(0)).headers["content-length"], ["0"])
        let chunked = Self.forward(head, framing: .chunked).headers
        XCTAssertEqual(chunked["transfer-encoding"], ["chunked"])
        XCTAssertFalse(chunked.contains(name: "content-length"))
    }

    // MARK: - Helpers

    private static func request(headers: [(String, String)]) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders(headers))
    }

    private static func forward(
        _ head: HTTPRequestHead,
        trusted: Bool = false,
        clientAddress: String? = "203.0.113.7",
        scheme: String = "http",
        requestID: String = "req-1",
        trace: TraceDecision = started,
        framing: RequestHeadValidation.BodyFraming = .none,
        file: StaticString = #filePath, line: UInt = #line
    ) -> RelayedRequestHead {
        func forward(_ client: RelayedRequestHead) -> RelayedRequestHead {
            ForwardedHeaders.upstreamRequestHead(
                from: client,
                facts: .init(clientAddress: clientAddress, scheme: scheme, trustClientForwardedHeaders: trusted),
                requestID: requestID,
                trace: trace,
                framing: framing
            )
        }
        // An HTTP/1.1 client's fields, kept as received, and an HTTP/2 stream's, as strings:
        // the same fields go upstream, in the same order.
        let received = forward(.received(head))
        XCTAssertEqual(received.headers, forward(RelayedRequestHead(head)).headers, file: file, line: line)
        return received
    }

    /// A tenant's signed context replaces the client's credentials: every `Authorization` field,
    /// in any case, is removed with the client's other fields kept in their order.
    func testAuthorizationIsRemovedWhenTheContextReplacesIt() {
        let head = Self.request(headers: [("Host", "h"), ("Authorization", "Bearer a.b.c"), ("X-Kept", "1"), ("authorization", "Basic x")])
        let facts = ForwardedHeaders.ClientFacts(clientAddress: "203.0.113.7", scheme: "http", trustClientForwardedHeaders: false)
        let removed = ForwardedHeaders.upstreamRequestHead(from: .received(head), facts: facts, requestID: "req-1", trace: Self.started, framing: .none, removingAuthorization: true)
        XCTAssertFalse(removed.headers.contains(name: "authorization"))
        XCTAssertEqual(removed.headers.map(\.name).prefix(2), ["Host", "X-Kept"])
        let kept = ForwardedHeaders.upstreamRequestHead(from: .received(head), facts: facts, requestID: "req-1", trace: Self.started, framing: .none)
        XCTAssertEqual(kept.headers[canonicalForm: "authorization"], ["Bearer a.b.c", "Basic x"])
    }

    func testUnderscoreTwinsOfControlledNamesAreRemoved() {
        let head = Self.request(headers: [
            ("Host", "h"), ("X_ERP_Tenant", "other-customer"), ("x_erp_features", "all"), ("X_Forwarded_For", "198.51.100.1"),
            ("x_request_id", "forged"), ("Content_Length", "5"), ("Transfer_Encoding", "chunked"), ("Proxy_Authorization", "x"),
            ("traceparent_", "not a twin"), ("X_Custom", "kept"), ("x-erp_note", "twin"), ("Authorization_", "kept"),
        ])
        let names = Self.forward(head).headers.map(\.name)
        for twin in ["X_ERP_Tenant", "x_erp_features", "X_Forwarded_For", "x_request_id", "Content_Length", "Transfer_Encoding", "Proxy_Authorization", "x-erp_note"] {
            XCTAssertFalse(names.contains(twin), twin)
        }
        for kept in ["traceparent_", "X_Custom", "Authorization_"] {
            XCTAssertTrue(names.contains(kept), kept)
        }
    }

    func testClientCopiesOfTheContextFieldsAreRemovedWithoutATenant() {
        let head = Self.request(headers: [
            ("Host", "h"), ("X-ERP-Tenant", "other-customer"), ("x-erp-features", "all"), ("X-Erp-Context-Signature", "v1;key=ctx;sig=forged"),
            ("X-ERP-", "empty rest"), ("x-erpx", "kept"), ("x-er", "kept"), ("X-Custom", "kept"),
        ])
        let names = Self.forward(head).headers.map(\.name)
        for copy in ["X-ERP-Tenant", "x-erp-features", "X-Erp-Context-Signature", "X-ERP-"] {
            XCTAssertFalse(names.contains(copy), copy)
        }
        for kept in ["x-erpx", "x-er", "X-Custom"] {
            XCTAssertTrue(names.contains(kept), kept)
        }
    }

    func testNamesMatchWhateverTheCaseOfTheirLetters() {
        XCTAssertTrue(ForwardedHeaders.matches("Content-Length", "content-length"))
        XCTAssertTrue(ForwardedHeaders.matches("X-ERP-Tenant", "x-erp-", prefixOnly: true))
        // Only A–Z fold: the bytes just outside them ('@', '[') and 'a'–'z' themselves stay.
        XCTAssertFalse(ForwardedHeaders.matches("@", "`"))
        XCTAssertFalse(ForwardedHeaders.matches("[", "{"))
        XCTAssertFalse(ForwardedHeaders.matches("x-erp", "x-erp-", prefixOnly: true))
        XCTAssertFalse(ForwardedHeaders.matches("content-lengthx", "content-length"))
        XCTAssertTrue(ForwardedHeaders.matches(bytes: Array("TE".utf8), "te"))
        XCTAssertFalse(ForwardedHeaders.matches(bytes: Array("TF".utf8), "te"))
    }

    func testNamesWithoutUnderscoresAreNeverTwins() {
        for name in ["X-ERP-Tenant", "x-forwarded-for", "Content-Length", "x-custom"] {
            XCTAssertFalse(Array(name.utf8).withUnsafeBytes { ForwardedHeaders.isUnderscoreTwin(bytes: $0) }, name)
        }
    }

    func testHopByHopNamesMatchWhateverTheirCase() {
        for name in ForwardedHeaders.hopByHop {
            XCTAssertTrue(ForwardedHeaders.isHopByHop(name), name)
            XCTAssertTrue(ForwardedHeaders.isHopByHop(name.uppercased()), name)
            XCTAssertTrue(ForwardedHeaders.isHopByHop(name.capitalized), name)
        }
        for name in ["Proxy-Authorization", "proxy-connection", "PROXY-X"] {
            XCTAssertTrue(ForwardedHeaders.isHopByHop(name), name)
        }
        for name in ["trailers", "tes", "t", "proxy", "proxyx-a", "x-proxy-a", "content-length", "host", "connections", "upgrade-insecure-requests", "tE\u{301}"] {
            XCTAssertFalse(ForwardedHeaders.isHopByHop(name), name)
        }
    }
}
