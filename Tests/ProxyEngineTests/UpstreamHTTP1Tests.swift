import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest

@testable import GatewayConfig
@testable import ProxyEngine

/// The upstream connection's own HTTP/1.1: responses read as SwiftNIO's client decoder read
/// them, split anywhere; requests written byte for byte as its encoder wrote them; and the
/// responses whose framing could be read two ways refused.
final class UpstreamHTTP1Tests: XCTestCase {
    /// A response, with the method of the request it answers.
    struct Exchange {
        var method: HTTPMethod = .GET
        var bytes: String
    }

    /// What a reader made of the bytes: heads, the body bytes between them, ends with trailers.
    enum Read: Equatable {
        case head(version: HTTPVersion, status: UInt, fields: [String], keepAlive: Bool)
        case body(String)
        case end([String]?)
    }

    static let valid: [Exchange] = [
        Exchange(bytes: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"),
        Exchange(bytes: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Exchange(bytes: "HTTP/1.1 404 Whatever The Backend Says\r\nServer: x\r\ncontent-length:   3  \r\nX-Empty:\r\n\r\nnot"),
        Exchange(bytes: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n"),
        Exchange(bytes: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\nA\r\n0123456789\r\n0\r\nX-Sum: 45\r\nX-Other: a b\r\n\r\n"),
        Exchange(bytes: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        Exchange(bytes: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the connection closes"),
        Exchange(bytes: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nclosing"),
        Exchange(bytes: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw until close"),
        Exchange(bytes: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        Exchange(bytes: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"),
        Exchange(bytes: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Keep-Alive, close\r\n\r\nok"),
        Exchange(method: .HEAD, bytes: "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"),
        Exchange(bytes: "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"),
        Exchange(bytes: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"),
        Exchange(bytes: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\n!"),
        Exchange(bytes: "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\n?"),
        Exchange(bytes: "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 4\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nbusy"),
        Exchange(bytes: "HTTP/1.1 200 OK\r\nX-Obs: caf\u{e9}\r\nContent-Length: 0\r\n\r\n"),
    ]

    func testTokenBytesAreExactlyRFC9110sTchar() {
        let tchar = Set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$%&'*+-.^_`|~".utf8)
        for byte in UInt8.min...UInt8.max {
            XCTAssertEqual(HTTP1Reading.isTokenByte(byte), tchar.contains(byte), "byte \(byte)")
        }
    }

    func testResponsesReadAsSwiftNIOReadThemSplitAnywhere() throws {
        for exchange in Self.valid {
            let expected = try Self.readWithSwiftNIO(exchange)
            for split in 0...exchange.bytes.utf8.count {
                XCTAssertEqual(
                    try Self.read(exchange, splitAt: split), expected, "split at \(split) of \(exchange.bytes.debugDescription)"
                )
            }
        }
    }

    func testResponsesFollowEachOtherOnOneKeptAliveConnection() throws {
        // Every response whose end its framing tells, one after another, as a pooled
        // connection carries them: read together, split anywhere, each reads as it did alone.
        let kept = Self.valid.filter { !$0.bytes.contains("until") && !$0.bytes.contains("closing") && !$0.bytes.contains("gzip\r\n") }
        var expected: [Read] = []
        for exchange in kept { expected += try Self.read(exchange, splitAt: 0) }
        let all = kept.map(\.bytes).joined()
        for split in 0...all.utf8.count {
            var parser = UpstreamResponseParser()
            for exchange in kept { parser.requestSent(exchange.method) }
            let bytes = Array(all.utf8)
            var reads: [Read] = []
            var buffer = ByteBuffer()
            for piece in [bytes[..<split], bytes[split...]] {
                buffer.writeBytes(piece)
                while let part = try parser.next(&buffer) { Self.append(part, to: &reads) }
            }
            XCTAssertNil(try parser.endOfInput(unread: buffer.readableBytes))
            XCTAssertEqual(reads, expected, "split at \(split)")
        }
    }

    /// Random responses SwiftNIO reads (seeded: the same every run), cut into random pieces:
    /// read alike. Then each with one byte changed, inserted or removed: whatever SwiftNIO's
    /// decoder refuses is refused here too, and what both read they read alike.
    func testRandomResponsesAndTheirMutationsReadNoLooserThanSwiftNIO() throws {
        var random = SeededRandom(seed: 0x5EED_0001)
        var compared = 0
        var refusedByBoth = 0
        var refusedHereOnly = 0
        for _ in 0..<1000 {
            let exchange = Self.randomResponse(&random)
            let expected = try Self.readWithSwiftNIO(exchange)
            XCTAssertEqual(try Self.read(exchange, cuts: Self.randomCuts(exchange.bytes.utf8.count, &random)), expected, exchange.bytes.debugDescription)
            for _ in 0..<6 {
                let mutated = Exchange(method: exchange.method, bytes: Self.mutate(exchange.bytes, &random))
                let theirs = try? Self.readWithSwiftNIO(mutated, strict: true)
                let ours = try? Self.read(mutated, cuts: Self.randomCuts(mutated.bytes.utf8.count, &random))
                switch (theirs, ours) {
                case (nil, nil): refusedByBoth += 1
                case (nil, .some(let read)):
                    XCTFail("read here, refused by SwiftNIO: \(mutated.bytes.debugDescription) as \(read)")
                case (.some, nil): refusedHereOnly += 1
                case (.some(let theirs), .some(let ours)):
                    compared += 1
                    XCTAssertEqual(ours, theirs, mutated.bytes.debugDescription)
                }
            }
        }
        print("mutated responses: \(compared) read alike, \(refusedByBoth) refused by both, \(refusedHereOnly) refused here only")
        XCTAssertGreaterThan(compared, 100)
        XCTAssertGreaterThan(refusedByBoth, 100)
    }

    static func randomResponse(_ random: inout SeededRandom) -> Exchange {
        let statuses = [200, 201, 202, 204, 206, 301, 304, 400, 404, 409, 500, 502, 503]
        let status = statuses[random.next(below: statuses.count)]
        let method: HTTPMethod = random.next(below: 8) == 0 ? .HEAD : .GET
        var head = "HTTP/1.\(random.next(below: 4) == 0 ? 0 : 1) \(status)"
        if random.next(below: 3) > 0 { head += " " + ["OK", "Fine", "Whatever It Says", ""][random.next(below: 4)] }
        head += "\r\n"
        let names = ["Server", "content-type", "X-Trace", "Set-Cookie", "ETag", "Cache-Control", "X-Empty", "Vary"]
        for _ in 0..<random.next(below: 6) {
            let blanks = [" ", "", "  ", "\t"][random.next(below: 4)]
            let value = ["x", "a b c", "text/plain; charset=utf-8", "\"tag\"", "", "max-age=0, private"][random.next(below: 6)]
            head += "\(names[random.next(below: names.count)]):\(blanks)\(value)\(random.next(below: 5) == 0 ? " " : "")\r\n"
        }
        let body = String((0..<random.next(below: 40)).map { _ in Character(Unicode.Scalar(UInt8(97 + random.next(below: 26)))) })
        let bodiless = method == .HEAD || status == 204 || status == 304
        switch random.next(below: 3) {
        case 0:
            head += "Content-Length: \(bodiless && method != .HEAD ? 0 : body.utf8.count)\r\n\r\n"
            return Exchange(method: method, bytes: head + (bodiless ? "" : body))
        case 1 where !bodiless:
            head += "Transfer-Encoding: chunked\r\n\r\n" + ByteMutations.randomChunks(of: body, &random)
            return Exchange(method: method, bytes: head)
        default:
            head += "Content-Length: \(bodiless && method != .HEAD ? 0 : body.utf8.count)\r\n\r\n"
            return Exchange(method: method, bytes: head + (bodiless ? "" : body))
        }
    }

    /// The bytes a mutation puts in: line ends, blanks, separators, digits, controls, non-ASCII.
    static let specials: [UInt8] = [0x0D, 0x0A, 0x00, 0x20, 0x09, 0x3A, 0x3B, 0x2C, 0x30, 0x61, 0x7F, 0xE9, 0x01, 0x2D]

    static func mutate(_ text: String, _ random: inout SeededRandom) -> String {
        ByteMutations.mutate(text, specials: Self.specials, &random)
    }

    static func randomCuts(_ count: Int, _ random: inout SeededRandom) -> [Int] {
        ByteMutations.randomCuts(count, &random)
    }

    func testABodyTheConnectionEndsSaysSoInItsHead() throws {
        let read = try Self.read(Exchange(bytes: "HTTP/1.1 200 OK\r\n\r\nbody"), splitAt: 0)
        guard case .head(_, _, let fields, let keepAlive) = read.first else { return XCTFail("no head: \(read)") }
        XCTAssertFalse(keepAlive, "the connection cannot carry another response")
        XCTAssertEqual(fields, ["connection: close"])
        XCTAssertEqual(read.dropFirst(), [.body("body"), .end(nil)])
    }

    func testTheBytesBehindASwitchStayUnread() throws {
        var parser = UpstreamResponseParser()
        parser.requestSent(.GET)
        var buffer = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{81}\u{01}x")
        guard case .head(let head) = try parser.next(&buffer) else { return XCTFail("no head") }
        XCTAssertEqual(head.status, .switchingProtocols)
        XCTAssertEqual(try parser.next(&buffer), .end(nil))
        XCTAssertTrue(parser.isUpgraded)
        XCTAssertNil(try parser.next(&buffer))
        XCTAssertEqual(buffer.readableBytes, 4, "the frame behind the 101 is the WebSocket's")
        XCTAssertNil(try parser.endOfInput(unread: buffer.readableBytes))
    }

    func testFramingTwoReadersCouldReadTwoWaysIsRefused() {
        let refused: [(String, UpstreamResponseParser.Failure)] = [
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .ambiguousFraming),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", .ambiguousFraming),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", .ambiguousFraming),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", .ambiguousFraming),
            ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", .ambiguousFraming),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", .ambiguousFraming),
            ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", .ambiguousFraming),
            ("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", .ambiguousFraming),
            ("HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 0\r\n\r\n", .malformedHeader),
            ("HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", .malformedHeader),
            ("HTTP/1.1 200 OK\r\n Content-Length: 0\r\n\r\n", .malformedHeader),
            ("HTTP/1.1 200 OK\r\nX-Null: a\u{0}b\r\n\r\n", .malformedHeader),
            ("HTTP/1.1 200 OK\r\nX-Bare: a\rb\r\n\r\n", .malformedHeader),
            ("HTTP/1.1 200 OK\nContent-Length: 0\n\n", .malformedHeader),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", .malformedHeader),
            ("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", .malformedHeader),
            ("HTTP/2.0 200 OK\r\n\r\n", .malformedStatusLine),
            ("HTTP/1.1 20 OK\r\n\r\n", .malformedStatusLine),
            ("HTTP/1.1 099 Low\r\n\r\n", .malformedStatusLine),
            ("HTTP/1.1  200 OK\r\n\r\n", .malformedStatusLine),
            ("ICY 200 OK\r\n\r\n", .malformedStatusLine),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .malformedChunk),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", .malformedChunk),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", .malformedChunk),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", .malformedChunk),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a\u{1}\r\nabc\r\n", .malformedChunk),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", .malformedChunk),
        ]
        for (bytes, failure) in refused {
            for split in [0, bytes.utf8.count / 2, bytes.utf8.count - 1] {
                XCTAssertThrowsError(try Self.read(Exchange(bytes: bytes), splitAt: split), bytes.debugDescription) { error in
                    XCTAssertEqual(error as? UpstreamResponseParser.Failure, failure, bytes.debugDescription)
                }
            }
        }
    }

    func testAResponseNobodyAskedForIsRefused() {
        var parser = UpstreamResponseParser()
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        XCTAssertThrowsError(try parser.next(&buffer)) { XCTAssertEqual($0 as? UpstreamResponseParser.Failure, .unsolicitedResponse) }

        // One request, answered twice: the second answer is nobody's.
        parser = UpstreamResponseParser()
        parser.requestSent(.GET)
        buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        XCTAssertNoThrow(try parser.next(&buffer))
        XCTAssertEqual(try parser.next(&buffer), .end(nil))
        XCTAssertThrowsError(try parser.next(&buffer)) { XCTAssertEqual($0 as? UpstreamResponseParser.Failure, .unsolicitedResponse) }
    }

    func testAHeadPastTheLimitIsRefusedBeforeItEnds() {
        var parser = UpstreamResponseParser()
        parser.requestSent(.GET)
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\n")
        let field = "X-Long: " + String(repeating: "a", count: 1000) + "\r\n"
        for _ in 0..<(UpstreamResponseParser.maxHeadBytes / field.utf8.count) { buffer.writeString(field) }
        XCTAssertNil(try parser.next(&buffer), "still under the limit")
        buffer.writeString(field)
        XCTAssertThrowsError(try parser.next(&buffer)) { XCTAssertEqual($0 as? UpstreamResponseParser.Failure, .headTooLarge) }
    }

    func testTheConnectionEndingInsideAResponseIsAFailure() throws {
        let cut: [String] = [
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            "HTTP/1.1 200 OK\r\nContent-Le",
        ]
        for bytes in cut {
            var parser = UpstreamResponseParser()
            parser.requestSent(.GET)
            var buffer = ByteBuffer(string: bytes)
            while try parser.next(&buffer) != nil {}
            XCTAssertThrowsError(try parser.endOfInput(unread: buffer.readableBytes), bytes.debugDescription) {
                XCTAssertEqual($0 as? UpstreamResponseParser.Failure, .endedEarly)
            }
        }
        // Between responses the connection may end.
        var parser = UpstreamResponseParser()
        parser.requestSent(.GET)
        var buffer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        while try parser.next(&buffer) != nil {}
        XCTAssertNil(try parser.endOfInput(unread: 0))
    }

    // MARK: - The connection

    /// Takes what the connection relays; may let go of it on the first head.
    final class Recorder: UpstreamExchangeDelegate {
        var parts: [UpstreamResponsePart] = []
        var closed: (any Error)??
        var letGoOnHead = false
        weak var connection: UpstreamConnection?
        var upstreamShouldPauseReading: Bool { false }
        func upstreamReceived(_ part: consuming UpstreamResponsePart) {
            self.parts.append(copy part)
            if case .head = part, self.letGoOnHead { self.connection?.delegate = nil }
        }
        func upstreamReadComplete() {}
        func upstreamWritabilityChanged() {}
        func upstreamClosed(_ connection: UpstreamConnection, error: (any Error)?) { self.closed = .some(error) }
    }

    func connection() throws -> (EmbeddedChannel, UpstreamConnection, Recorder) {
        let connection = UpstreamConnection(id: 1, target: UpstreamTarget(GatewaySettings.Endpoint(host: "127.0.0.1", port: 1)))
        let channel = EmbeddedChannel(handler: connection)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let recorder = Recorder()
        recorder.connection = connection
        connection.delegate = recorder
        connection.write(.head(RelayedRequestHead(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Host": "cell"]))))
        connection.write(.end(nil))
        connection.flush()
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }, "GET / HTTP/1.1\r\nHost: cell\r\n\r\n")
        return (channel, connection, recorder)
    }

    func testAResponseIsRelayedPartByPartAndTheConnectionKept() throws {
        let (channel, connection, recorder) = try self.connection()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no"))
        try channel.writeInbound(ByteBuffer(string: "k"))
        XCTAssertEqual(recorder.parts.count, 4, "head, two body parts, end: \(recorder.parts)")
        XCTAssertTrue(channel.isActive)
        XCTAssertFalse(connection.isClosed)
    }

    func testBytesAnExchangeNoLongerTakesCloseTheConnection() throws {
        let (channel, connection, recorder) = try self.connection()
        recorder.letGoOnHead = true
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        XCTAssertEqual(recorder.parts.count, 1)
        XCTAssertFalse(channel.isActive, "the rest of the response has nowhere to go: the connection cannot serve another")
        XCTAssertTrue(connection.isClosed)
    }

    func testAMalformedResponseFailsTheConnection() throws {
        let (channel, _, recorder) = try self.connection()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"))
        XCTAssertTrue(recorder.parts.isEmpty)
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(recorder.closed.flatMap { $0 } as? UpstreamResponseParser.Failure, .ambiguousFraming)
    }

    func testABodyTheConnectionEndsEndsWithIt() throws {
        let (channel, _, recorder) = try self.connection()
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\nall of it"))
        channel.pipeline.fireChannelInactive()
        XCTAssertEqual(recorder.parts.count, 3, "head, body, end: \(recorder.parts)")
        guard case .end = recorder.parts.last else { return XCTFail("no end: \(recorder.parts)") }
    }

    // MARK: - Requests

    /// Counts the flushes that reach the channel from the handlers behind it.
    final class FlushCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var flushes = 0
        func flush(context: ChannelHandlerContext) {
            self.flushes += 1
            context.flush()
        }
    }

    /// A request without a body is flushed after its head, at its end and at the end of the
    /// client's read: only the flush with bytes behind it reaches the channel.
    func testOnlyAFlushWithBytesToSendReachesTheChannel() throws {
        let connection = UpstreamConnection(id: 1, target: UpstreamTarget(GatewaySettings.Endpoint(host: "127.0.0.1", port: 1)))
        let counter = FlushCounter()
        let channel = EmbeddedChannel(handlers: [counter, connection])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        connection.flush()
        XCTAssertEqual(counter.flushes, 0, "nothing written yet")
        connection.write(.head(RelayedRequestHead(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: ["Host": "cell"]))))
        connection.flush()
        connection.write(.end(nil))
        connection.flush()
        connection.flush()
        XCTAssertEqual(counter.flushes, 1)
        XCTAssertEqual(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }, "GET / HTTP/1.1\r\nHost: cell\r\n\r\n")
        // A body and a chunked end each have bytes to send.
        connection.write(.head(RelayedRequestHead(HTTPRequestHead(version: .http1_1, method: .PUT, uri: "/x", headers: ["Host": "cell", "Transfer-Encoding": "chunked"]))))
        connection.flush()
        connection.write(.body(.byteBuffer(ByteBuffer(string: "abc"))))
        connection.flush()
        connection.write(.end(nil))
        connection.flush()
        connection.flush()
        XCTAssertEqual(counter.flushes, 4)
        var written = ""
        while let part = try channel.readOutbound(as: ByteBuffer.self) { written += String(buffer: part) }
        XCTAssertEqual(written, "PUT /x HTTP/1.1\r\nHost: cell\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    }

    func testRequestsAreWrittenAsSwiftNIOWroteThem() throws {
        let cases: [(HTTPRequestHead, [String], HTTPHeaders?)] = [
            (HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/ledger?x=1", headers: ["Host": "cell", "X-Request-ID": "abc"]), [], nil),
            (HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/orders", headers: ["Host": "cell", "Content-Length": "5"]), ["hel", "lo"], nil),
            (HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/orders", headers: ["Host": "cell"]), [], nil),
            (HTTPRequestHead(version: .http1_1, method: .PUT, uri: "/v1/x", headers: ["Host": "cell", "Transfer-Encoding": "chunked"]), ["abc", "", "defgh"], ["X-Sum": "1"]),
            (HTTPRequestHead(version: .http1_1, method: .PATCH, uri: "/v1/x", headers: ["Host": "cell", "Content-Length": "2", "Transfer-Encoding": "chunked"]), ["ab"], nil),
            (HTTPRequestHead(version: .http1_1, method: .DELETE, uri: "/v1/x", headers: ["Host": "cell", "Transfer-Encoding": "chunked"]), ["z"], nil),
            (HTTPRequestHead(version: .http1_1, method: .TRACE, uri: "/", headers: ["Host": "cell", "Content-Length": "0", "Transfer-Encoding": "chunked"]), [], nil),
            (HTTPRequestHead(version: .http1_1, method: .RAW(value: "PROPFIND"), uri: "/dav", headers: ["Host": "cell", "Depth": "1", "Empty": ""]), [], nil),
        ]
        for (head, body, trailers) in cases {
            XCTAssertEqual(try Self.writtenByUs(head, body, trailers), try Self.writtenBySwiftNIO(head, body, trailers), "\(head.method) \(head.headers)")
        }
    }

    func testAFieldThatWouldSplitTheHeadIsNotWritten() {
        var writer = UpstreamRequestWriter()
        for (name, value) in [("X-Context", "a\r\nX-Injected: 1"), ("X-Context", "a\nb"), ("X-Context", "a\u{0}"), ("Bad Name", "v"), ("", "v")] {
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/", headers: HTTPHeaders([(name, value)]))
            // Fields the gateway made (all of an HTTP/2 stream's) are checked as they are written.
            XCTAssertThrowsError(try writer.head(RelayedRequestHead(head), allocator: ByteBufferAllocator()), "\(name): \(value.debugDescription)")
        }
    }

    /// A head is written into the buffer of the one before once the channel has let go of that
    /// one, and never into a buffer the channel still holds.
    func testTheNextHeadReusesTheLastOnesBufferOnlyOnceItIsWrittenOut() throws {
        let allocator = ByteBufferAllocator()
        let first = RelayedRequestHead.received(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/first", headers: ["host": "cell", "x-request-id": "1"]))
        let second = RelayedRequestHead(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/second", headers: ["host": "cell", "x-request-id": "2"]))
        var writer = UpstreamRequestWriter()
        // The channel still holds the first head (a write waiting for the socket).
        let held = try writer.head(first, allocator: allocator)
        let heldBytes = Array(held.readableBytesView)
        let next = try writer.head(second, allocator: allocator)
        XCTAssertEqual(Array(held.readableBytesView), heldBytes, "a head the channel holds is never written over")
        XCTAssertNotEqual(Self.address(of: held), Self.address(of: next))
        XCTAssertEqual(String(buffer: next), "GET /second HTTP/1.1\r\nhost: cell\r\nx-request-id: 2\r\n\r\n")
        // Written out: the channel let go of it, and the next head is written into its memory.
        let address = Self.address(of: next)
        let capacity = next.capacity
        _ = consume next
        // Memory freed here would go to the next allocation of its size: this one.
        let other = allocator.buffer(capacity: capacity)
        let reused = try writer.head(first, allocator: allocator)
        XCTAssertNotEqual(Self.address(of: other), address)
        XCTAssertEqual(Self.address(of: reused), address)
        XCTAssertEqual(String(buffer: reused), "GET /first HTTP/1.1\r\nhost: cell\r\nx-request-id: 1\r\n\r\n")
        _ = consume held
        // The client side's writer keeps its buffer the same way.
        var responses = ClientResponseWriter()
        let ok = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-length": "0"])
        let answered = try responses.head(ok, answering: .GET, allocator: allocator)
        let answeredAt = Self.address(of: answered)
        let answeredCapacity = answered.capacity
        _ = consume answered
        let another = allocator.buffer(capacity: answeredCapacity)
        XCTAssertEqual(Self.address(of: try responses.head(ok, answering: .GET, allocator: allocator)), answeredAt)
        XCTAssertNotEqual(Self.address(of: another), answeredAt)
    }

    private static func address(of buffer: ByteBuffer) -> UInt {
        buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
    }

    // MARK: - Readers

    static func read(_ exchange: Exchange, splitAt split: Int) throws -> [Read] {
        try self.read(exchange, cuts: [split])
    }

    static func read(_ exchange: Exchange, cuts: [Int]) throws -> [Read] {
        var parser = UpstreamResponseParser()
        parser.requestSent(exchange.method)
        let bytes = Array(exchange.bytes.utf8)
        var reads: [Read] = []
        var buffer = ByteBuffer()
        let bounds = [0] + cuts + [bytes.count]
        for piece in zip(bounds, bounds.dropFirst()).map({ bytes[$0..<$1] }) {
            buffer.writeBytes(piece)
            while let part = try parser.next(&buffer) { Self.append(part, to: &reads) }
        }
        if let last = try parser.endOfInput(unread: buffer.readableBytes) { Self.append(last, to: &reads) }
        return reads
    }

    static func append(_ part: UpstreamResponsePart, to reads: inout [Read]) {
        switch part {
        case .head(let head):
            reads.append(.head(version: head.version, status: head.status.code, fields: head.headers.map { "\($0.name.lowercased()): \($0.value)" }, keepAlive: head.isKeepAlive))
        case .body(let buffer):
            if case .body(let before) = reads.last {
                reads[reads.count - 1] = .body(before + String(buffer: buffer))
            } else {
                reads.append(.body(String(buffer: buffer)))
            }
        case .end(let trailers):
            reads.append(.end(trailers.map { $0.map { "\($0.name.lowercased()): \($0.value)" } }))
        }
    }

    /// SwiftNIO's client decoder, behind its encoder (which tells it the request's method), then
    /// the connection's end.
    /// `strict`: an error SwiftNIO's decoder reports (it fires it down the pipeline and reads on)
    /// fails the read, as it fails the connection in the gateway.
    static func readWithSwiftNIO(_ exchange: Exchange, strict: Bool = false) throws -> [Read] {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHTTPClientHandlers()
        try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: exchange.method, uri: "/")))
        try channel.writeOutbound(HTTPClientRequestPart.end(nil))
        try channel.writeInbound(ByteBuffer(string: exchange.bytes))
        channel.pipeline.fireChannelInactive()
        if strict { try channel.throwIfErrorCaught() }
        var reads: [Read] = []
        while let part = try channel.readInbound(as: HTTPClientResponsePart.self) {
            switch part {
            case .head(let head):
                // A body the connection's end delimits: the head says so with our reader.
                var fields = head.headers.map { "\($0.name.lowercased()): \($0.value)" }
                if !head.isKeepAlive, !fields.contains(where: { $0.hasPrefix("connection:") }), head.version == .http1_1 || fields.contains("connection: keep-alive") {
                    fields.append("connection: close")
                }
                reads.append(.head(version: head.version, status: head.status.code, fields: fields, keepAlive: head.isKeepAlive))
            case .body(let buffer): Self.append(.body(buffer), to: &reads)
            case .end(let trailers): Self.append(.end(trailers), to: &reads)
            }
        }
        _ = try? channel.finish()
        return reads
    }

    /// The bytes the writer makes of `head`, its fields as received and as strings alike.
    static func writtenByUs(_ head: HTTPRequestHead, _ body: [String], _ trailers: HTTPHeaders?) throws -> [UInt8] {
        let received = try self.writtenByUs(.received(head), body, trailers)
        XCTAssertEqual(received, try self.writtenByUs(RelayedRequestHead(head), body, trailers), "\(head.headers)")
        return received
    }

    static func writtenByUs(_ head: RelayedRequestHead, _ body: [String], _ trailers: HTTPHeaders?) throws -> [UInt8] {
        var writer = UpstreamRequestWriter()
        let allocator = ByteBufferAllocator()
        var bytes = try writer.head(head, allocator: allocator)
        for part in body {
            let buffer = ByteBuffer(string: part)
            if var prefix = HTTP1Writing.chunkPrefix(for: buffer.readableBytes, chunked: writer.isChunked, allocator: allocator) { bytes.writeBuffer(&prefix) }
            bytes.writeImmutableBuffer(buffer)
            if let suffix = HTTP1Writing.chunkSuffix(for: buffer.readableBytes, chunked: writer.isChunked) { bytes.writeImmutableBuffer(suffix) }
        }
        if let end = try writer.end(trailers, allocator: allocator) { bytes.writeImmutableBuffer(end) }
        return Array(bytes.readableBytesView)
    }

    static func writtenBySwiftNIO(_ head: HTTPRequestHead, _ body: [String], _ trailers: HTTPHeaders?) throws -> [UInt8] {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTPRequestEncoder())
        try channel.writeOutbound(HTTPClientRequestPart.head(head))
        for part in body { try channel.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: part)))) }
        try channel.writeOutbound(HTTPClientRequestPart.end(trailers))
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        _ = try channel.finish()
        return bytes
    }
}
