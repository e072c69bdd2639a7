import Foundation
import LogCapture
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest
@testable import GatewayConfig
@testable import ProxyEngine

/// The client-connection handler in the pipeline `GatewayServer` builds for every accepted
/// connection, driven byte by byte through an `EmbeddedChannel`; time moves only when a test
/// advances the embedded loop's clock.
///
/// Only the answers the gateway gives on its own are exercised here: every request sent is one the
/// handler must reject before it asks the pool for an upstream connection. Forwarding on the
/// embedded loop, with upstreams that are `EmbeddedChannel`s too, is `ExchangeOnEmbeddedChannelTests`.
final class ClientConnectionHandlerTests: XCTestCase {
    /// Small limits so that requests over them stay readable; the endpoint is never dialled.
    private static let settings = GatewaySettings(
        listener: .init(address: "127.0.0.1", port: 0, eventLoops: 1),
        limits: .init(maxHeaderBytes: 1024, maxURIBytes: 256, maxRequestBodyBytes: 1000),
        timeouts: SettingsLoader.defaultTimeouts,
        upstreamPool: SettingsLoader.defaultPool,
        forwarding: SettingsLoader.defaultForwarding,
        cells: [.init(id: "cell-a", kind: .pooled, region: "local", endpoints: [.init(host: "127.0.0.1", port: 1)])],
        defaultCell: "cell-a"
    )

    private static var headerRead: TimeAmount { .milliseconds(Self.settings.timeouts.headerRead.milliseconds) }

    /// A request that the handler would itself reject (HTTP/1.1 without Host), sent after a bad
    /// request: if it were ever served it would show up as a second answer, never as a lease.
    private static let pipelinedFollowUp = "GET /second HTTP/1.1\r\nAccept: */*\r\n\r\n"

    private var channel: EmbeddedChannel!
    private var logs: CapturedLog!

    override func setUpWithError() throws {
        self.logs = CapturedLog()
        self.channel = EmbeddedChannel()
        let recorder = self.logs!
        let environment = ProxyEnvironment(
            configuration: GatewayConfiguration(settings: Self.settings, tenants: nil, files: []),
            generation: 1,
            pool: UpstreamPool(eventLoop: self.channel.embeddedEventLoop, settings: Self.settings.upstreamPool),
            logger: recorder.logger("client-connection-test")
        )
        // The very pipeline GatewayServer gives each accepted connection.
        try GatewayServer.configureClientPipeline(self.channel.pipeline.syncOperations, environment: environment)
        // Activation is the accept: it arms the header-read timer.
        try self.channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        XCTAssertTrue(self.channel.isActive)
    }

    override func tearDownWithError() throws {
        _ = try self.channel.finish(acceptAlreadyClosed: true)
        self.channel = nil
        self.logs = nil
    }

    // MARK: - Header-read timeout

    func testPartialHeadIsAnswered408OnceTheHeaderReadTimeoutElapses() throws {
        try self.send("GET /orders HTTP/1.1\r\nHost: shop.example\r\nAccept: */*\r\n")

        self.channel.embeddedEventLoop.advanceTime(by: Self.headerRead - .milliseconds(1))
        XCTAssertEqual(try self.responses().count, 0, "nothing is answered before the timeout")
        XCTAssertTrue(self.channel.isActive)

        self.channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        // Exactly one answer and one log line: the decoder's complaint about the unfinished head,
        // raised as the connection closes, is not a second rejection.
        try self.assertOne408AndClosed()
    }

    func testBodyLeftUnreadAfterARejectionIsNotASecondRejection() throws {
        try self.send("POST /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Length: \(Self.settings.limits.maxRequestBodyBytes + 1)\r\n\r\nabc")
        let responses = try self.responses()
        XCTAssertEqual(responses.count, 1)
        let requestID = try self.assertProblem(try XCTUnwrap(responses.first), status: 413, slug: "body-too-large")
        XCTAssertEqual(self.logs.rejections.map(\.requestID), [requestID])
    }

    func testConnectionThatSendsNothingIsAnswered408AndClosed() throws {
        self.channel.embeddedEventLoop.advanceTime(by: Self.headerRead - .milliseconds(1))
        XCTAssertEqual(try self.responses().count, 0)
        XCTAssertTrue(self.channel.isActive)

        self.channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        try self.assertOne408AndClosed()
    }

    /// One 408 answer, logged once under the id the client received, and the connection closed.
    private func assertOne408AndClosed(file: StaticString = #filePath, line: UInt = #line) throws {
        let responses = try self.responses()
        XCTAssertEqual(responses.count, 1, file: file, line: line)
        let response = try XCTUnwrap(responses.first, file: file, line: line)
        let requestID = try self.assertProblem(response, status: 408, slug: "request-header-timeout")
        XCTAssertEqual(self.logs.rejections.map(\.requestID), [requestID], file: file, line: line)
        self.assertClosed()
    }

    // MARK: - Rejected heads (each closes the connection; nothing after it is answered)

    func testTooLongURIIsAnswered414() throws {
        let uri = "/" + String(repeating: "a", count: Self.settings.limits.maxURIBytes)
        try self.assertRejected("GET \(uri) HTTP/1.1\r\nHost: shop.example\r\n\r\n", status: 414, slug: "uri-too-long")
    }

    func testHeaderFieldsOverTheConfiguredLimitAreAnswered431() throws {
        let padding = String(repeating: "p", count: Self.settings.limits.maxHeaderBytes)
        try self.assertRejected("GET / HTTP/1.1\r\nHost: shop.example\r\nX-Padding: \(padding)\r\n\r\n", status: 431, slug: "header-fields-too-large")
    }

    func testHeadBeyondTheDecoderLimitIsAnswered431() throws {
        // Rejected by the decoder itself (a parser error), before any head reaches the handler.
        let limit = RequestHeadValidation.decoderLimit(for: Self.settings.limits)
        let padding = String(repeating: "p", count: limit + 1)
        try self.assertRejected("GET / HTTP/1.1\r\nHost: shop.example\r\nX-Padding: \(padding)\r\n\r\n", status: 431, slug: "header-fields-too-large")
    }

    func testDeclaredContentLengthAboveTheBodyLimitIsAnswered413() throws {
        // The whole body is sent, so the pipelined request after it starts at a message boundary.
        let body = String(repeating: "b", count: Self.settings.limits.maxRequestBodyBytes + 1)
        try self.assertRejected(
            "POST /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)",
            status: 413, slug: "body-too-large"
        )
    }

    func testContentLengthTogetherWithTransferEncodingIsAnswered400() throws {
        // The HTTP parser refuses this outright, before validation sees the head; docs/operations.md
        // lists it under malformed-request.
        try self.assertRejected(
            "POST / HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            status: 400, slug: "malformed-request"
        )
    }

    func testConflictingContentLengthsAreAnswered400() throws {
        try self.assertRejected(
            "POST / HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            status: 400, slug: "ambiguous-framing"
        )
    }

    func testHTTP11RequestWithoutHostIsAnswered400() throws {
        try self.assertRejected("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", status: 400, slug: "malformed-request")
    }

    // MARK: - Malformed chunk size

    // A malformed chunk size can only follow a valid head, and a valid head starts an exchange that
    // leases an upstream connection, which the embedded loop cannot dial. The two halves are
    // checked here: the decoder's verdict on the bytes, and the handler's mapping of that verdict.
    // The full path (answered mid-exchange) is SmugglingTests.testMalformedChunkSize.

    func testDecoderReportsAMalformedChunkSizeAsInvalidChunkSize() throws {
        let decoder = EmbeddedChannel(handler: ClientRequestDecoder(maxHeadBytes: 80 * 1024))
        defer { _ = try? decoder.finish(acceptAlreadyClosed: true) }
        let bytes = "POST / HTTP/1.1\r\nHost: shop.example\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
        XCTAssertThrowsError(try decoder.writeInbound(ByteBuffer(string: bytes))) { error in
            XCTAssertEqual(error as? HTTPParserError, .invalidChunkSize)
        }
    }

    func testParserErrorsMapToTheirProblems() {
        XCTAssertEqual(ClientConnectionStateMachine.problem(for: .invalidChunkSize), .ambiguousFraming)
        XCTAssertEqual(ClientConnectionStateMachine.problem(for: .unexpectedContentLength), .ambiguousFraming)
        XCTAssertEqual(ClientConnectionStateMachine.problem(for: .invalidContentLength), .ambiguousFraming)
        XCTAssertEqual(ClientConnectionStateMachine.problem(for: .headerOverflow), .headerFieldsTooLarge)
        XCTAssertEqual(ClientConnectionStateMachine.problem(for: .invalidMethod), .malformedRequest)
        XCTAssertEqual(ClientConnectionStateMachine.problem(for: .unknown), .malformedRequest)
    }

    // MARK: - Request ids

    func testValidClientRequestIDIsEchoedInTheRejection() throws {
        let uri = "/" + String(repeating: "a", count: Self.settings.limits.maxURIBytes)
        try self.send("GET \(uri) HTTP/1.1\r\nHost: shop.example\r\nX-Request-Id: client-42_a.b:c\r\n\r\n")
        let response = try XCTUnwrap(try self.responses().first)
        let requestID = try self.assertProblem(response, status: 414, slug: "uri-too-long")
        XCTAssertEqual(requestID, "client-42_a.b:c")
        XCTAssertEqual(self.logs.rejections.map(\.requestID), ["client-42_a.b:c"])
    }

    func testInvalidClientRequestIDIsReplaced() throws {
        let supplied = "<script>alert(1)</script>"
        let uri = "/" + String(repeating: "a", count: Self.settings.limits.maxURIBytes)
        try self.send("GET \(uri) HTTP/1.1\r\nHost: shop.example\r\nX-Request-Id: \(supplied)\r\n\r\n")
        let response = try XCTUnwrap(try self.responses().first)
        let requestID = try self.assertProblem(response, status: 414, slug: "uri-too-long")
        XCTAssertNotEqual(requestID, supplied)
        XCTAssertTrue(Self.isGeneratedRequestID(requestID), "\(requestID) is not a generated id")
        XCTAssertFalse(response.body.contains("script"))
    }

    // MARK: - Shutdown

    func testQuiesceClosesAnIdleConnectionWithoutAnAnswer() throws {
        self.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        self.assertClosed()
        XCTAssertEqual(try self.responses().count, 0)

        // The header-read timer went with the connection.
        self.channel.embeddedEventLoop.advanceTime(by: Self.headerRead)
        XCTAssertEqual(try self.responses().count, 0)
        XCTAssertEqual(self.logs.rejections.count, 0)
    }

    // MARK: - Helpers

    /// Sends `request` followed by a pipelined request, and checks the one answer, the close,
    /// that the rejection was logged once under the id the client received, and that no timer
    /// answers the closed connection later.
    private func assertRejected(_ request: String, status: UInt, slug: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try self.send(request + Self.pipelinedFollowUp)
        let responses = try self.responses()
        XCTAssertEqual(responses.count, 1, "exactly one answer; the pipelined request is not served", file: file, line: line)
        let response = try XCTUnwrap(responses.first, file: file, line: line)
        let requestID = try self.assertProblem(response, status: status, slug: slug, file: file, line: line)
        self.assertClosed(file: file, line: line)
        XCTAssertEqual(self.logs.rejections.map(\.requestID), [requestID], "logged once, with the id the client received", file: file, line: line)
        XCTAssertEqual(self.logs.rejections.map(\.problem), [slug], file: file, line: line)

        self.channel.embeddedEventLoop.advanceTime(by: Self.headerRead)
        XCTAssertEqual(try self.responses().count, 0, "nothing is written after the close", file: file, line: line)
    }

    /// Checks the problem+json answer and returns its request id.
    @discardableResult
    private func assertProblem(
        _ response: WireResponse, status: UInt, slug: String, file: StaticString = #filePath, line: UInt = #line
    ) throws -> String {
        XCTAssertEqual(response.status, status, file: file, line: line)
        XCTAssertEqual(response.value("content-type"), "application/problem+json", file: file, line: line)
        XCTAssertEqual(response.value("content-length"), String(response.body.utf8.count), file: file, line: line)
        XCTAssertEqual(response.value("cache-control"), "no-store", file: file, line: line)
        XCTAssertEqual(response.value("connection"), "close", file: file, line: line)
        XCTAssertFalse(response.body.contains("127.0.0.1"), "no address in the problem body: \(response.body)", file: file, line: line)

        let json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any], "not a JSON object: \(response.body)",
            file: file, line: line
        )
        XCTAssertEqual(json["type"] as? String, "urn:erp-gateway:problem:\(slug)", file: file, line: line)
        XCTAssertEqual((json["status"] as? NSNumber)?.uintValue, status, file: file, line: line)
        XCTAssertNotNil(json["title"] as? String, file: file, line: line)
        let requestID = try XCTUnwrap(json["requestId"] as? String, file: file, line: line)
        XCTAssertEqual(response.values("x-request-id"), [requestID], "the header and the body carry the same id", file: file, line: line)
        return requestID
    }

    private func assertClosed(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(self.channel.isActive, "the connection is closed", file: file, line: line)
        // EmbeddedChannel completes its close future on the next turn of the loop.
        self.channel.embeddedEventLoop.run()
        let closed = Flag()
        self.channel.closeFuture.assumeIsolated().whenSuccess { closed.value = true }
        XCTAssertTrue(closed.value, "the close future has completed", file: file, line: line)
    }

    private func send(_ text: String) throws {
        try self.channel.writeInbound(ByteBuffer(string: text))
    }

    /// Everything written to the client so far, split into responses.
    private func responses() throws -> [WireResponse] {
        var wire = ByteBuffer()
        while let chunk = try self.channel.readOutbound(as: ByteBuffer.self) {
            wire.writeImmutableBuffer(chunk)
        }
        return try WireResponse.parseAll(Array(wire.readableBytesView))
    }

    private static func isGeneratedRequestID(_ id: String) -> Bool {
        id.utf8.count == 32 && id.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }
}

/// One HTTP/1.1 response as read off the wire: just enough parsing for problem documents, which
/// always carry a Content-Length.
struct WireResponse {
    var status: UInt
    var headers: [(name: String, value: String)]
    var body: String

    func values(_ name: String) -> [String] {
        self.headers.filter { $0.name.lowercased() == name }.map(\.value)
    }

    func value(_ name: String) -> String? {
        let values = self.values(name)
        return values.count == 1 ? values[0] : nil
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    static func parseAll(_ bytes: [UInt8]) throws -> [WireResponse] {
        var responses: [WireResponse] = []
        var rest = bytes[...]
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        while !rest.isEmpty {
            guard let headEnd = rest.firstRange(of: separator) else {
                throw Malformed(description: "incomplete head: \(String(decoding: rest, as: UTF8.self))")
            }
            let head = String(decoding: rest[..<headEnd.lowerBound], as: UTF8.self)
            var lines = head.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
            guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = UInt(statusLine[1]) else {
                throw Malformed(description: "bad status line in \(head)")
            }
            let headers = try lines.map { line -> (name: String, value: String) in
                guard let colon = line.firstIndex(of: ":") else { throw Malformed(description: "bad header line \(line)") }
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            }
            let lengths = headers.filter { $0.name.lowercased() == "content-length" }.map(\.value)
            guard lengths.count == 1, let length = Int(lengths[0]) else {
                throw Malformed(description: "no single content-length in \(head)")
            }
            let bodyStart = headEnd.upperBound
            guard rest.distance(from: bodyStart, to: rest.endIndex) >= length else {
                throw Malformed(description: "body shorter than its content-length in \(head)")
            }
            let bodyEnd = rest.index(bodyStart, offsetBy: length)
            responses.append(WireResponse(status: status, headers: headers, body: String(decoding: rest[bodyStart..<bodyEnd], as: UTF8.self)))
            rest = rest[bodyEnd...]
        }
        return responses
    }
}

private final class Flag {
    var value = false
}

/// The "request rejected" lines: answers given without an exchange, with the request id and
/// problem each was logged with.
extension CapturedLog {
    struct Rejection {
        var requestID: String?
        var problem: String?
    }

    var rejections: [Rejection] {
        self.all.filter { $0.message == "request rejected" }.map { entry in
            Rejection(requestID: entry.metadata["request-id"].map { "\($0)" }, problem: entry.metadata["problem"].map { "\($0)" })
        }
    }
}
