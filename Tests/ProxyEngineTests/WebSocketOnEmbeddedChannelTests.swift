import Foundation
import GatewayConfig
import Hierarchy
import Logging
import NIOCore
import NIOEmbedded
import Quotas
import TokenAuth
import XCTest
@testable import ProxyEngine

/// A WebSocket through the real client pipeline on one `EmbeddedEventLoop`: the handshake
/// admitted by a scripted quota store, the backend's `101` switching both connections to frames,
/// then the socket's lifetimes and drain on a virtual clock — and the in-flight unit it holds
/// given back once, when it closes.
final class WebSocketOnEmbeddedChannelTests: XCTestCase {
    static let secret = TenantAccessTests.secret
    static let epoch: Int64 = 1_800_000_000

    private var gateway: EmbeddedGateway!
    private var loop: EmbeddedEventLoop { self.gateway.loop }
    private var client: EmbeddedChannel { self.gateway.client }
    private var upstreams: EmbeddedUpstreams { self.gateway.upstreams }
    private var records: RecordedRequests { self.gateway.records }
    private var store: ScriptedQuotaStore!

    override func setUpWithError() throws {
        self.store = ScriptedQuotaStore(reachable: true)
        let secret = Data(Self.secret).base64EncodedString()
        self.gateway = try EmbeddedGateway("websocket", extraSettings: "webSockets: { idleTimeout: 10s, maxLifetime: 1h, closeGrace: 2s }", quotas: self.store, epoch: Self.epoch, tree: """
            catalog:
              features: [ledger]
              packages: { basic: [ledger] }
              routes:
                - { path: /v1/live, feature: ledger, websocket: true }
            tenants:
              - id: acme
                kind: oem
                placement: { tier: pooled, region: eu }
                issuers:
                  - iss: https://id.acme.test
                    audience: erp
                    allowHMAC: true
                    keys: [{ kid: k1, alg: HS256, secret: \(secret) }]
              - { id: north, kind: partner, parent: acme }
              - { id: shop, kind: customer, parent: north, package: basic, limits: { concurrency: 1 } }
            """)
    }

    override func tearDownWithError() throws {
        try? self.gateway?.finish()
    }

    private func token() throws -> String {
        try TokenMinter.mint(
            claims: ["iss": "https://id.acme.test", "sub": "u", "aud": "erp", "iat": .integer(Self.epoch), "exp": .integer(Self.epoch + 3600),
                     "tenant": "shop"],
            algorithm: .HS256, kid: "k1", secret: Self.secret
        )
    }

    private static let admitted = QuotaDecision.admitted([
        LevelRemaining(node: try! NodeID("shop"), kind: .customer, rate: nil, rateResetMilliseconds: nil, day: nil, month: nil, concurrency: 0),
    ])

    /// The handshake, admitted, answered `101` by the backend with a `hello` frame in the same
    /// read. Returns the upstream connection.
    private func openSocket() throws -> EmbeddedChannel {
        try self.client.writeInbound(ByteBuffer(string:
            "GET /v1/live HTTP/1.1\r\nHost: erp.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, erp-gateway.bearer.\(try self.token())\r\n\r\n"))
        self.store.answer(0, with: .success(Self.admitted))
        let upstream = try XCTUnwrap(self.upstreams.opened.first).channel
        let forwarded = try upstream.text().lowercased()
        XCTAssertTrue(forwarded.contains("connection: upgrade\r\n") && forwarded.contains("upgrade: websocket\r\n"), forwarded)
        XCTAssertTrue(forwarded.contains("sec-websocket-protocol: chat\r\n"), forwarded)
        XCTAssertFalse(forwarded.contains("erp-gateway.bearer") || forwarded.contains("authorization"), "the token stays at the gateway")
        var answer = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n")
        answer.writeBytes(Frame(opcode: 0x1, payload: Array("hello".utf8)).bytes(masked: false))
        try upstream.writeInbound(answer)
        self.loop.run()
        let wire = try self.client.bytes()
        let text = String(decoding: wire, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"), text)
        XCTAssertTrue(text.lowercased().contains("sec-websocket-protocol: chat\r\n"), text)
        let headEnd = try XCTUnwrap(text.range(of: "\r\n\r\n")).upperBound
        XCTAssertEqual(Frame.parseAll(Array(wire[text.utf8.distance(from: text.startIndex, to: headEnd)...])), [Frame(opcode: 0x1, payload: Array("hello".utf8))])
        return upstream
    }

    func testFramesAreRelayedBothWaysMaskedOnlyTowardsTheBackend() throws {
        let upstream = try self.openSocket()
        try self.client.writeInbound(ByteBuffer(bytes: Frame(opcode: 0x1, payload: Array("hi".utf8)).bytes(masked: true)))
        let sent = try upstream.bytes()
        XCTAssertEqual(sent[1] & 0x80, 0x80, "masked, as a client's frame must be")
        XCTAssertEqual(Frame.parseAll(sent), [Frame(opcode: 0x1, payload: Array("hi".utf8))])
        try upstream.writeInbound(ByteBuffer(bytes: Frame(opcode: 0x2, payload: [1, 2, 3]).bytes(masked: false)))
        let received = try self.client.bytes()
        XCTAssertEqual(received[1] & 0x80, 0, "unmasked towards the client")
        XCTAssertEqual(Frame.parseAll(received), [Frame(opcode: 0x2, payload: [1, 2, 3])])
        XCTAssertTrue(self.store.released.isEmpty, "the open socket holds its in-flight unit")
    }

    func testAnIdleSocketIsClosedWith1001ThenCutAndItsUnitGivenBackOnce() throws {
        let upstream = try self.openSocket()
        self.loop.advanceTime(by: .seconds(9))
        try self.client.writeInbound(ByteBuffer(bytes: Frame(opcode: 0x9, payload: []).bytes(masked: true)))  // a ping keeps it
        _ = try upstream.bytes()
        self.loop.advanceTime(by: .seconds(9))
        XCTAssertEqual(try self.client.bytes(), [], "not idle yet: the ping was activity")
        self.loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(Frame.parseAll(try self.client.bytes()).map(\.closeCode), [1001])
        XCTAssertEqual(Frame.parseAll(try upstream.bytes()).map(\.closeCode), [1001], "the backend is told too")
        XCTAssertTrue(self.store.released.isEmpty, "held until the socket is closed")
        XCTAssertTrue(self.client.isActive)

        self.loop.advanceTime(by: .seconds(2))
        XCTAssertFalse(self.client.isActive, "nobody answered the close within the grace: cut")
        XCTAssertFalse(upstream.isActive)
        XCTAssertEqual(self.store.released.count, 1, "the in-flight unit goes back when the socket closes")
        XCTAssertEqual(self.records.records.count, 1, "one record per socket")
        let record = try XCTUnwrap(self.records.records.first)
        XCTAssertEqual(record.status, 101)
        XCTAssertEqual(record.webSocketLifetime, .seconds(21))
        XCTAssertLessThan(record.total, .seconds(1), "its timings are the handshake's")
        self.loop.advanceTime(by: .seconds(60))
        XCTAssertEqual(self.store.released.count, 1, "given back once")
    }

    func testTheClosingHandshakeFinishesTheSocket() throws {
        let upstream = try self.openSocket()
        try self.client.writeInbound(ByteBuffer(bytes: Frame(opcode: 0x8, payload: [0x03, 0xe8]).bytes(masked: true)))
        XCTAssertEqual(Frame.parseAll(try upstream.bytes()).map(\.closeCode), [1000])
        try upstream.writeInbound(ByteBuffer(bytes: Frame(opcode: 0x8, payload: [0x03, 0xe8]).bytes(masked: false)))
        XCTAssertEqual(Frame.parseAll(try self.client.bytes()).map(\.closeCode), [1000])
        self.loop.run()
        XCTAssertFalse(self.client.isActive)
        XCTAssertFalse(upstream.isActive)
        XCTAssertEqual(self.store.released.count, 1)
    }

    func testDrainClosesOpenSocketsWith1001AfterTheGrace() throws {
        let upstream = try self.openSocket()
        self.client.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        self.loop.advanceTime(by: .seconds(1))
        try self.client.writeInbound(ByteBuffer(bytes: Frame(opcode: 0x1, payload: Array("x".utf8)).bytes(masked: true)))
        XCTAssertEqual(Frame.parseAll(try upstream.bytes()).map(\.opcode), [0x1], "runs on through the grace")
        self.loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(Frame.parseAll(try self.client.bytes()).map(\.closeCode), [1001])
        XCTAssertEqual(Frame.parseAll(try upstream.bytes()).map(\.closeCode), [1001])
    }

    func testTheUpstreamGoingAwayClosesTheClientAndGivesTheUnitBack() throws {
        let upstream = try self.openSocket()
        upstream.pipeline.fireChannelInactive()
        upstream.close(promise: nil)
        self.loop.run()
        XCTAssertFalse(self.client.isActive)
        XCTAssertEqual(self.store.released.count, 1)
        XCTAssertEqual(self.records.records.count, 1)
    }
}

/// A WebSocket frame on the wire, for tests: single-frame messages with short payloads.
struct Frame: Equatable {
    var opcode: UInt8
    var payload: [UInt8]

    var closeCode: UInt16? {
        guard self.opcode == 0x8, self.payload.count >= 2 else { return nil }
        return UInt16(self.payload[0]) << 8 | UInt16(self.payload[1])
    }

    func bytes(masked: Bool) -> [UInt8] {
        precondition(self.payload.count < 126)
        let bytes: [UInt8] = [0x80 | self.opcode, (masked ? 0x80 : 0) | UInt8(self.payload.count)]
        guard masked else { return bytes + self.payload }
        let key: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        return bytes + key + self.payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
    }

    /// Every whole frame in `wire`, unmasked.
    static func parseAll(_ wire: [UInt8]) -> [Frame] {
        var frames: [Frame] = []
        var index = 0
        while index + 2 <= wire.count {
            let length = Int(wire[index + 1] & 0x7f)
            precondition(length < 126, "short frames only")
            let masked = wire[index + 1] & 0x80 != 0
            let start = index + 2 + (masked ? 4 : 0)
            guard start + length <= wire.count else { break }
            var payload = Array(wire[start..<start + length])
            if masked {
                let key = Array(wire[index + 2..<index + 6])
                payload = payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
            }
            frames.append(Frame(opcode: wire[index] & 0x0f, payload: payload))
            index = start + length
        }
        return frames
    }
}

extension EmbeddedChannel {
    /// Everything the channel wrote so far, as bytes.
    func bytes() throws -> [UInt8] {
        var wire: [UInt8] = []
        while let chunk = try self.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = chunk { wire += buffer.readableBytesView }
        }
        return wire
    }
}
