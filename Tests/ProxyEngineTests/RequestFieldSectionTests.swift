@testable import GatewayConfig
import NIOCore
import NIOHTTP1
import XCTest

@testable import ProxyEngine

/// A client's request fields kept as the bytes it sent (`ClientRequestParser`'s heads) are read,
/// judged, forwarded and written exactly as the same fields made `HTTPHeaders` (an HTTP/2
/// stream's heads) are: every lookup, every verdict of the phases, the upstream head's fields
/// and its bytes on the wire.
final class RequestFieldSectionTests: XCTestCase {
    /// Names the request rules act on (in any case), look-alikes, and others.
    static let names = [
        "Authorization", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "TE", "Trailer", "Upgrade",
        "Proxy-Authorization", "Expect", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "X-Request-Id",
        "Traceparent", "Tracestate", "X-ERP-Tenant", "X_ERP_Tenant", "x_request_id", "Origin", "Accept", "User-Agent", "Cookie",
        "X-Custom", "X-Request-IDs", "Authorizations", "Hosts", "Accept-Encoding", "Range", "If-Range", "Host",
    ]
    static let connectionTokens = ["close", "keep-alive", "Keep-Alive", "x-custom", "TE", "content-length", "host", "upgrade"]
    static let limits = GatewaySettings.RequestLimits(maxHeaderBytes: 4096, maxURIBytes: 256, maxRequestBodyBytes: 1_000_000)
    static let trace = TraceDecision(
        outgoing: TraceParent(traceID: "0af7651916cd43dd8448eb211c80319c", parentID: "2222222222222222", flags: "00"), continuesClientTrace: false
    )

    static func randomValue(for name: String, _ random: inout SeededRandom) -> String {
        switch name.lowercased() {
        case "connection":
            return (0..<Int.random(in: 1...3, using: &random)).map { _ in connectionTokens.randomElement(using: &random)! }.joined(separator: ", ")
        case "content-length": return String(Int.random(in: 0...99_999, using: &random))
        case "transfer-encoding": return "chunked"
        case "authorization": return ["Bearer a.b.c", "bearer  x-y_z.1.2", "Basic abc", "Bearer a+b", "Bearer "].randomElement(using: &random)!
        case "expect": return ["100-continue", "100-Continue, x", "", "100"].randomElement(using: &random)!
        default:
            let alphabet = Array("abcXYZ019 \t-_=;,\"/:()~!#.")
            var value = String((0..<Int.random(in: 0...30, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
            while value.first == " " || value.first == "\t" { value.removeFirst() }
            return value
        }
    }

    /// A request head as a client might send it, and the head `ClientRequestParser` reads of it.
    static func randomHead(_ random: inout SeededRandom) throws -> RelayedRequestHead {
        let method = ["GET", "POST", "PUT", "DELETE", "OPTIONS"].randomElement(using: &random)!
        var text = "\(method) /v1/orders?x=\(Int.random(in: 0...9, using: &random)) HTTP/1.\(Int.random(in: 0...1, using: &random))\r\n"
        var sawFraming = false
        // One `Host` in most heads (validation refuses a head without one, or with two).
        if Int.random(in: 0..<10, using: &random) > 0 { text += "\(FieldSectionTests.randomCase("Host", &random)): shop.example\r\n" }
        for _ in 0..<Int.random(in: 0...12, using: &random) {
            var name = FieldSectionTests.randomCase(self.names.randomElement(using: &random)!, &random)
            // One framing field at most: the parser refuses more before any of this runs.
            if ["content-length", "transfer-encoding"].contains(name.lowercased()) {
                if sawFraming { name = "X-Other" }
                sawFraming = true
            }
            let blanks = ["", " ", "  ", "\t"].randomElement(using: &random)!
            text += "\(name):\(blanks)\(self.randomValue(for: name, &random))\r\n"
        }
        var parser = ClientRequestParser(maxHeadBytes: 64 * 1024)
        var buffer = ByteBuffer(string: text + "\r\n")
        guard case .head(let head) = try parser.next(&buffer) else { throw ParseFailure(text: text) }
        return head
    }

    struct ParseFailure: Error {
        let text: String
    }

    func testReceivedFieldsAreReadAsTheirStringsAre() throws {
        var random = SeededRandom(seed: 41)
        for _ in 0..<400 {
            let received = try Self.randomHead(&random)
            let strings = received.fields.headers
            XCTAssertEqual(received.isKeepAlive, received.nioHead.isKeepAlive, "\(strings)")
            for name in Self.names + ["host", "AUTHORIZATION", "x-erp-tenant", "absent"] {
                XCTAssertEqual(received.fields.first(name: name), strings.first(name: name), "\(name) in \(strings)")
                XCTAssertEqual(received.fields.contains(name: name), strings.contains(name: name), "\(name) in \(strings)")
            }
        }
    }

    /// Every phase's verdict on the fields, and the head and bytes sent upstream.
    func testReceivedFieldsAreJudgedForwardedAndWrittenAsTheirStringsAre() throws {
        var random = SeededRandom(seed: 42)
        var forwarded = 0
        for _ in 0..<400 {
            let received = try Self.randomHead(&random)
            let strings = RelayedRequestHead(received.nioHead)
            let context = "\(received.nioHead)"
            let validated = RequestHeadValidation.validate(received, limits: Self.limits)
            XCTAssertEqual(validated, RequestHeadValidation.validate(strings, limits: Self.limits), context)
            XCTAssertEqual(TenantAccess.bearerToken(received.fields), TenantAccess.bearerToken(strings.fields), context)
            XCTAssertEqual(ForwardedHeaders.expectsContinue(received.fields), ForwardedHeaders.expectsContinue(strings.fields), context)
            XCTAssertEqual(ForwardedHeaders.Replaced(in: received.fields), ForwardedHeaders.Replaced(in: strings.fields), context)
            guard case .success(let framing) = validated else { continue }
            let facts = ForwardedHeaders.ClientFacts(clientAddress: "203.0.113.7", scheme: "https", trustClientForwardedHeaders: Bool.random(using: &random))
            let removingAuthorization = Bool.random(using: &random)
            func upstream(_ head: RelayedRequestHead) -> RelayedRequestHead {
                ForwardedHeaders.upstreamRequestHead(
                    from: head, target: "/v1/orders", facts: facts, requestID: "req-1", trace: Self.trace, framing: framing,
                    removingAuthorization: removingAuthorization
                )
            }
            var fromReceived = upstream(received)
            var fromStrings = upstream(strings)
            XCTAssertEqual(fromReceived.headers, fromStrings.headers, context)
            if Bool.random(using: &random) {
                // What a masked response asks of the upstream, edited into both forms.
                ResponseMasking.prepareUpstreamRequest(&fromReceived.fields)
                ResponseMasking.prepareUpstreamRequest(&fromStrings.fields)
            }
            var writer = UpstreamRequestWriter()
            let bytes = try writer.head(fromReceived, allocator: ByteBufferAllocator())
            let receivedChunked = writer.isChunked
            XCTAssertEqual(String(buffer: bytes), String(buffer: try writer.head(fromStrings, allocator: ByteBufferAllocator())), context)
            XCTAssertEqual(receivedChunked, writer.isChunked, context)
            forwarded += 1
        }
        XCTAssertGreaterThan(forwarded, 100, "most heads are valid")
    }

    /// The fields a client sent go upstream as it sent them — its spelling of each name, its
    /// blanks after a value — and what the gateway removed does not.
    func testTheClientsBytesGoUpstreamAsSentAndRemovedFieldsDoNot() throws {
        var parser = ClientRequestParser(maxHeadBytes: 4096)
        var buffer = ByteBuffer(string: "GET /a HTTP/1.1\r\nhOsT:shop.example\r\nX-Custom:\tv  \r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nAccept: */*\r\n\r\n")
        guard case .head(let client) = try parser.next(&buffer) else { return XCTFail("no head") }
        let head = ForwardedHeaders.upstreamRequestHead(
            from: client, facts: .init(clientAddress: "203.0.113.7", scheme: "http", trustClientForwardedHeaders: false), requestID: "req-1",
            trace: Self.trace, framing: .none
        )
        var writer = UpstreamRequestWriter()
        XCTAssertEqual(
            String(buffer: try writer.head(head, allocator: ByteBufferAllocator())),
            "GET /a HTTP/1.1\r\nhOsT: shop.example\r\nX-Custom: v  \r\nAccept: */*\r\nx-forwarded-for: 203.0.113.7\r\nx-forwarded-proto: http\r\n"
                + "x-forwarded-host: shop.example\r\nx-request-id: req-1\r\ntraceparent: \(Self.trace.outgoing.header)\r\n\r\n"
        )
    }

    /// A head keeps the read it came in only when that read's buffer is small: a large one (a
    /// connection that sent much grows its reads to 64 KiB) is not held while the exchange lasts.
    func testAHeadHoldsASmallReadAndIsCopiedOutOfALargeOne() throws {
        let request = "GET /a HTTP/1.1\r\nHost: h\r\nX-Custom: v\r\n\r\n"
        for capacity in [512, ClientRequestParser.heldReadCapacity, 64 * 1024] {
            var buffer = ByteBufferAllocator().buffer(capacity: capacity)
            buffer.writeString(request)
            let storage = buffer.withVeryUnsafeBytes { $0.baseAddress }
            var parser = ClientRequestParser(maxHeadBytes: 4096)
            guard case .head(let head) = try parser.next(&buffer) else { return XCTFail("no head") }
            // Writing into the read's buffer copies it first only if the head still holds it.
            buffer.setInteger(UInt8(ascii: "x"), at: 0)
            let held = buffer.withVeryUnsafeBytes { $0.baseAddress } != storage
            XCTAssertEqual(held, capacity <= ClientRequestParser.heldReadCapacity, "a read of \(capacity) bytes")
            XCTAssertEqual(head.fields.first(name: "x-custom"), "v")
        }
    }
}
