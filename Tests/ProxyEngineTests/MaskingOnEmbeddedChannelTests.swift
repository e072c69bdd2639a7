import Foundation
import GatewayConfig
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import TokenAuth
import XCTest
@testable import ProxyEngine

/// Field masking through the real client pipeline on one `EmbeddedEventLoop`: the upstream's
/// response held, masked and sent with its new length for a masked caller, streamed untouched
/// for every other; and each response that cannot be masked refused with its problem.
final class MaskingOnEmbeddedChannelTests: XCTestCase {
    static let epoch: Int64 = 1_800_000_000

    private var gateway: EmbeddedGateway!
    private var loop: EmbeddedEventLoop { self.gateway.loop }
    private var client: EmbeddedChannel { self.gateway.client }
    private var upstreams: EmbeddedUpstreams { self.gateway.upstreams }
    private var records: RecordedRequests { self.gateway.records }

    override func setUpWithError() throws {
        let secret = Data(TenantAccessTests.secret).base64EncodedString()
        self.gateway = try EmbeddedGateway("masking", extraSettings: "masking: { maxBodyBytes: 1KiB }", epoch: Self.epoch, tree: """
            catalog:
              features: [hr, ledger]
              packages: { all: [hr, ledger] }
              routes:
                - path: /v1/employees
                  feature: hr
                  masking:
                    - { fields: [/employees/*/salary, iban], roles: [viewer] }
                - { path: /v1/ledger, feature: ledger }
            tenants:
              - id: acme
                kind: oem
                placement: { tier: pooled, region: eu }
                masking:
                  - { route: /v1/employees, fields: [ssn], roles: [auditor] }
                issuers:
                  - iss: https://id.acme.test
                    audience: erp
                    allowHMAC: true
                    keys: [{ kid: k1, alg: HS256, secret: \(secret) }]
              - { id: north, kind: partner, parent: acme }
              - { id: shop, kind: customer, parent: north, package: all }
            """)
    }

    override func tearDownWithError() throws {
        try self.gateway?.finish()
    }

    private func send(_ method: String = "GET", path: String = "/v1/employees", role: String?) throws -> EmbeddedChannel {
        var claims: [String: ClaimValue] = [
            "iss": "https://id.acme.test", "sub": "u", "aud": "erp", "iat": .integer(Self.epoch), "exp": .integer(Self.epoch + 3600),
            "tenant": "shop",
        ]
        if let role { claims["role"] = .string(role) }
        let token = try TokenMinter.mint(claims: claims, algorithm: .HS256, kid: "k1", secret: TenantAccessTests.secret)
        try self.client.writeInbound(ByteBuffer(string: """
            \(method) \(path) HTTP/1.1\r\nHost: erp.test\r\nAuthorization: Bearer \(token)\r\nAccept-Encoding: gzip, br\r\nRange: bytes=0-10\r\n\r\n
            """))
        return try XCTUnwrap(self.upstreams.opened.last?.channel)
    }

    private static let document = #"{"employees":[{"name":"Ann","salary":5100.50,"ssn":"1-2","bank":{"iban":"DE89"}},{"name":"Bo","salary":4200,"ssn":"3-4"}]}"#

    /// The upstream answers `body` chunked, in two pieces, with an ETag.
    private func answerChunked(_ upstream: EmbeddedChannel, _ body: String, contentType: String = "application/json; charset=utf-8") throws {
        let cut = body.index(body.startIndex, offsetBy: body.count / 2)
        let first = String(body[..<cut]), second = String(body[cut...])
        try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: \(contentType)\r\nETag: \"v1\"\r\nTransfer-Encoding: chunked\r\n\r\n"))
        try upstream.writeInbound(ByteBuffer(string: "\(String(first.utf8.count, radix: 16))\r\n\(first)\r\n"))
        try upstream.writeInbound(ByteBuffer(string: "\(String(second.utf8.count, radix: 16))\r\n\(second)\r\n0\r\n\r\n"))
    }

    func testAMaskedRolesResponseIsMaskedWithItsNewLengthAndTheRequestAsksForTheWholeUnencodedBody() throws {
        let upstream = try self.send(role: "viewer")
        let forwarded = try upstream.text().lowercased()
        XCTAssertTrue(forwarded.contains("accept-encoding: identity"), forwarded)
        XCTAssertFalse(forwarded.contains("gzip"), forwarded)
        XCTAssertFalse(forwarded.contains("range:"), "a range of a document cannot be masked")

        try self.answerChunked(upstream, Self.document)
        let responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [200])
        let masked = #"{"employees":[{"name":"Ann","salary":null,"ssn":"1-2","bank":{"iban":"***"}},{"name":"Bo","salary":null,"ssn":"3-4"}]}"#
        XCTAssertEqual(responses.first?.body, masked)
        XCTAssertEqual(responses.first?.value("content-length"), String(masked.utf8.count))
        XCTAssertNil(responses.first?.value("transfer-encoding"))
        XCTAssertNil(responses.first?.value("etag"), "the upstream's validator described bytes the client does not get")
        XCTAssertEqual(self.records.records.last?.outcome, .relayed)
        XCTAssertEqual(self.records.records.last?.bytesOut, masked.utf8.count)
    }

    func testASupportSessionIsMaskedByEveryRuleWhateverItsRoles() throws {
        let upstream = try self.send(role: "support")
        try self.answerChunked(upstream, Self.document)
        XCTAssertEqual(
            try self.client.responses().first?.body,
            #"{"employees":[{"name":"Ann","salary":null,"ssn":"***","bank":{"iban":"***"}},{"name":"Bo","salary":null,"ssn":"***"}]}"#
        )
    }

    func testAnUnmaskedRoleStreamsTheResponseUntouched() throws {
        for role in ["editor", nil] {
            let upstream = try self.send(role: role)
            try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"))
            try upstream.writeInbound(ByteBuffer(string: "6\r\n{\"a\":1\r\n"))
            let early = try self.client.text()
            XCTAssertTrue(early.hasPrefix("HTTP/1.1 200 OK"), "the head and first piece go out before the upstream's end: \(early)")
            XCTAssertTrue(early.contains("{\"a\":1"), early)
            try upstream.writeInbound(ByteBuffer(string: "1\r\n}\r\n0\r\n\r\n"))
            XCTAssertTrue(try self.client.text().hasSuffix("0\r\n\r\n"))
        }
        // On a route without masks even a support session streams.
        let upstream = try self.send(path: "/v1/ledger", role: "support")
        XCTAssertTrue(try upstream.text().lowercased().contains("gzip"), "the client's Accept-Encoding goes upstream unchanged")
    }

    func testAResponseAboveTheBoundIsRefusedNeverPassedOnUnmasked() throws {
        let big = #"{"employees":[""# + String(repeating: "x", count: 1100) + #""]}"#
        var upstream = try self.send(role: "viewer")
        try self.answerChunked(upstream, big)
        var responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [502])
        XCTAssertTrue(responses.first?.body.contains("masked-response-too-large") == true)
        XCTAssertFalse(responses.first?.body.contains("xxx") == true)
        XCTAssertFalse(upstream.isActive, "the upstream connection, mid-response, is closed")
        XCTAssertEqual(self.records.records.last?.problem, .maskedResponseTooLarge)
        XCTAssertEqual(self.records.records.last?.outcome, .failed)

        // Declared too large: refused on the head.
        upstream = try self.send(role: "viewer")
        try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"))
        responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [502])
        XCTAssertTrue(responses.first?.body.contains("masked-response-too-large") == true)
    }

    func testResponsesThatCannotBeMaskedAreRefused() throws {
        let cases: [(head: String, body: String)] = [
            ("Content-Type: text/html", "<p>salary</p>"),
            ("Content-Type: application/json\r\nContent-Encoding: gzip", "\u{1f}"),
            ("Content-Type: application/json", #"{"salary":1"#),
            ("", #"{"salary":1}"#),
        ]
        for (head, body) in cases {
            let upstream = try self.send(role: "viewer")
            try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\n\(head.isEmpty ? "" : head + "\r\n")Content-Length: \(body.utf8.count)\r\n\r\n\(body)"))
            let responses = try self.client.responses()
            XCTAssertEqual(responses.map(\.status), [502], head)
            XCTAssertTrue(responses.first?.body.contains("unmaskable-response") == true, head)
            XCTAssertEqual(self.records.records.last?.problem, .unmaskableResponse, head)
        }
    }

    func testAnUpstreamThatBreaksOffAHeldResponseIsAnsweredUpstreamFailed() throws {
        let upstream = try self.send(role: "viewer")
        try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"employees\":"))
        XCTAssertTrue(try self.client.text().isEmpty, "nothing of a held response reaches the client")
        upstream.pipeline.fireChannelInactive()
        let responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [502])
        XCTAssertTrue(responses.first?.body.contains("upstream-failed") == true)
    }

    /// The upstream's answer to a HEAD: the fields its GET would carry, for a document of
    /// `Self.document`'s length.
    private static let headAnswer = """
        HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(document.utf8.count)\r\nETag: "v1"\r\n\
        Content-Digest: sha-256=:AAAA:\r\nRepr-Digest: sha-256=:AAAA:\r\nDigest: SHA-256=AAAA\r\nCache-Control: private\r\n\r\n
        """

    func testAHeadOnAMaskedRouteTellsNeitherTheLengthNorTheValidatorOfTheUnmaskedBody() throws {
        for role in ["viewer", "support"] {
            let upstream = try self.send("HEAD", role: role)
            XCTAssertTrue(try upstream.text().hasPrefix("HEAD /v1/employees"))
            try upstream.writeInbound(ByteBuffer(string: Self.headAnswer))
            let text = try self.client.text()
            let fields = text.lowercased()
            XCTAssertTrue(text.hasPrefix("HTTP/1.1 200 OK\r\n"), text)
            XCTAssertTrue(text.hasSuffix("\r\n\r\n"), "a HEAD's answer has no body: \(text)")
            XCTAssertFalse(fields.contains("content-length"), "the unmasked body's length would tell how long the masked values are: \(text)")
            for name in ["etag:", "content-digest:", "repr-digest:", "digest:"] {
                XCTAssertFalse(fields.contains(name), "\(name) described bytes the client does not get: \(text)")
            }
            XCTAssertTrue(fields.contains("content-type: application/json"), text)
            XCTAssertTrue(fields.contains("cache-control: private"), text)
            XCTAssertTrue(fields.contains("transfer-encoding: chunked"), "HTTP/1.1 framing without a length: \(text)")
            XCTAssertEqual(self.records.records.last?.outcome, .relayed)
        }
    }

    func testAHeadIsRefusedWhereItsGetWouldBe() throws {
        let upstream = try self.send("HEAD", role: "viewer")
        try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 12\r\n\r\n"))
        let text = try self.client.text()
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 502"), text)
        XCTAssertEqual(self.records.records.last?.problem, .unmaskableResponse)
    }

    func testAHeadOfAnUnmaskedRoleOrRouteIsRelayedUnchanged() throws {
        for (path, role) in [("/v1/employees", "editor"), ("/v1/ledger", "support")] {
            let upstream = try self.send("HEAD", path: path, role: role)
            try upstream.writeInbound(ByteBuffer(string: Self.headAnswer))
            let fields = try self.client.text().lowercased()
            XCTAssertTrue(fields.contains("content-length: \(Self.document.utf8.count)\r\n"), fields)
            XCTAssertTrue(fields.contains("etag: \"v1\""), fields)
            XCTAssertTrue(fields.contains("content-digest: sha-256=:aaaa:"), fields)
        }
    }

    func testResponsesWithoutABodyPassAsTheyAre() throws {
        let upstream = try self.send(role: "viewer")
        try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 204 No Content\r\nETag: \"v2\"\r\n\r\n"))
        let text = try self.client.text()
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 204"), text)
        XCTAssertTrue(text.lowercased().contains("etag: \"v2\""), text)
    }
}
